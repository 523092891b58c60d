// The GitHub Action runs from its committed bundle, so the bundle must be what the sources build;
// the lean client's bundle must need nothing but Node.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildBundle, ROOT } from '../../scripts/bundles.ts';

describe('bundles', () => {
  it('action/dist is what src/action builds (run npm run build:action after changing the sources)', async () => {
    const built = await buildBundle('action');
    expect([...built.keys()].sort()).toEqual(['action/dist/main.mjs', 'action/dist/post.mjs']);
    for (const [path, text] of built) {
      expect(await readFile(join(ROOT, path), 'utf8'), `${path} is stale`).toBe(text);
    }
  });

  it("action.yml runs those files on GitHub's current Node runtime, post always", async () => {
    const manifest = parse(await readFile(join(ROOT, 'action/action.yml'), 'utf8'));
    expect(manifest.runs).toEqual({
      using: 'node24',
      main: 'dist/main.mjs',
      post: 'dist/post.mjs',
      'post-if': 'always()',
    });
    expect(Object.keys(manifest.inputs)).toEqual(
      expect.arrayContaining(['provider', 'repository', 'ttl', 'url', 'audience']),
    );
  });

  it('each bundle imports nothing but Node built-ins', async () => {
    for (const name of ['action', 'client'] as const) {
      for (const [path, text] of await buildBundle(name)) {
        const imports = [...text.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
        expect(imports.length, path).toBeGreaterThan(0);
        expect(
          imports.filter((spec) => !spec!.startsWith('node:')),
          path,
        ).toEqual([]);
        expect(text, path).not.toMatch(/\brequire\(|await import\(/);
      }
    }
  });
});
