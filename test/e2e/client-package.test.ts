// The lean client: packed with `npm pack`, installed with `npm install ./<tarball>` in an empty
// folder (no dependencies come with it), it issues a key, clones with it and completes the job.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ClientTarball, installClient, packClient } from '../support/client-package.ts';
import { runProcess } from '../support/process.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

vi.setConfig({ testTimeout: 120_000 });

let harness: Harness;
let tarball: ClientTarball;
let folder: string;

beforeAll(async () => {
  [harness, tarball] = await Promise.all([startHarness(), packClient()]);
  folder = await installClient(tarball.path);
}, 180_000);
afterAll(async () => {
  await harness?.close();
  if (folder) await rm(folder, { recursive: true, force: true });
  if (tarball) await rm(join(tarball.path, '..'), { recursive: true, force: true });
});

/** A CI job's shell: the installed client on PATH, nothing of this checkout. */
const sh = (script: string, env: Record<string, string>) =>
  runProcess('bash', ['-c', script], {
    cwd: folder,
    env: {
      PATH: `${join(folder, 'node_modules/.bin')}:${process.env.PATH}`,
      HOME: folder,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      ...env,
    },
  });

describe('the lean client package', () => {
  it('installs from its tarball with nothing but itself', async () => {
    expect((await readdir(join(folder, 'node_modules'))).filter((n) => !n.startsWith('.'))).toEqual([
      'deploykey-client',
    ]);
    const manifest = JSON.parse(
      await readFile(join(folder, 'node_modules/deploykey-client/package.json'), 'utf8'),
    );
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(await readdir(join(folder, 'node_modules/deploykey-client/dist'))).toEqual(['deploykey.mjs']);
  });

  it('issues a key, clones with it, and completing the job revokes it', async () => {
    const env = { DEPLOYKEY_URL: harness.service.url, DEPLOYKEY_TOKEN: harness.token, CI_JOB_ID: '9301' };
    const job = await sh(
      'set -e; settings="$(deploykey issue --provider gitlab --repo acme/models --out "$PWD/key")"; eval "$settings"; ls models',
      env,
    );
    expect(job.code, job.stderr).toBe(0);
    expect(job.stdout).toContain('README.md');
    const id = /issued key ([0-9a-f-]{36})/.exec(job.stderr)![1]!;

    const done = await sh('deploykey complete --json', env);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout).keys.map((k: { id: string }) => k.id)).toEqual([id]);
    await eventually(async () => (await harness.api('GET', `/v1/keys/${id}`)).body.status === 'revoked', {
      what: 'key revoked',
    });
  });

  it('is as small as the README says', async () => {
    // Both figures are read from the README and compared in its own unit (kB, 1000 bytes), so
    // the README cannot claim a size the package has outgrown.
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const stated = /lean client[\s\S]*?under (\d+) kB packed \(one file under (\d+) kB\)/.exec(readme);
    expect(stated, 'the README states the packed and unpacked size').not.toBeNull();
    const file = await stat(join(folder, 'node_modules/deploykey-client/dist/deploykey.mjs'));
    expect(tarball.bytes).toBeLessThan(Number(stated![1]) * 1000);
    expect(file.size).toBeLessThan(Number(stated![2]) * 1000);
  });
});
