// Builds the two single-file bundles CI jobs run: the GitHub Action (committed under action/dist,
// because GitHub runs an action from the repository as it is) and the lean client
// (client/dist/deploykey.mjs, packed by `npm pack client`). Both need nothing but Node.
//   node --import tsx scripts/bundles.ts action|client
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export type BundleName = 'action' | 'client';

const BUNDLES: Record<BundleName, { entries: Record<string, string>; outDir: string; banner: string }> = {
  action: {
    entries: { main: 'src/action/main.ts', post: 'src/action/post.ts' },
    outDir: 'action/dist',
    banner:
      '// Built from src/action by `npm run build:action`; do not edit. CI checks it matches the sources.',
  },
  client: {
    entries: { deploykey: 'src/cli/client/main.ts' },
    outDir: 'client/dist',
    banner:
      '#!/usr/bin/env node\n// The deploykey client, built from src/cli/client by `npm run build:client`.',
  },
};

/** The bundle's files (path from the project root → text), built in memory. */
export async function buildBundle(name: BundleName): Promise<Map<string, string>> {
  const { entries, outDir, banner } = BUNDLES[name];
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: Object.entries(entries).map(([out, input]) => ({ in: input, out })),
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The machine's Node and GitHub's runner's both run it; nothing newer than Node 20 is used.
    target: 'node20',
    banner: { js: banner },
    legalComments: 'none',
    charset: 'utf8',
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  const packages = Object.keys(result.metafile.inputs).filter((input) => input.includes('node_modules'));
  if (packages.length > 0)
    throw new Error(`the ${name} bundle must need only Node, but takes in ${packages.join(', ')}`);
  return new Map(result.outputFiles.map((file) => [relative(ROOT, file.path), file.text]));
}

async function main([name]: string[]): Promise<void> {
  if (name !== 'action' && name !== 'client') throw new Error('usage: bundles.ts action|client');
  const files = await buildBundle(name);
  for (const [path, text] of files) {
    const target = join(ROOT, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text, { mode: name === 'client' ? 0o755 : 0o644 });
    console.error(`wrote ${path} (${Buffer.byteLength(text)} bytes)`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: Error) => {
    console.error(error.message);
    process.exit(1);
  });
}
