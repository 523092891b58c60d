// The lean client as a CI job gets it: `npm run build:client`'s bundle with client/package.json,
// packed by `npm pack` into a tarball, and installed from that tarball in an empty folder.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildBundle, ROOT } from '../../scripts/bundles.ts';

const run = promisify(execFile);

export interface ClientTarball {
  path: string;
  bytes: number;
}

/** Packs the client from a copy of client/ (the checkout is not written to). */
export async function packClient(): Promise<ClientTarball> {
  const dir = await mkdtemp(join(tmpdir(), 'client-pack-'));
  await copyFile(join(ROOT, 'client/package.json'), join(dir, 'package.json'));
  await copyFile(join(ROOT, 'client/README.md'), join(dir, 'README.md'));
  for (const [path, text] of await buildBundle('client')) {
    const target = join(dir, path.replace(/^client\//, ''));
    await mkdir(join(target, '..'), { recursive: true });
    await writeFile(target, text, { mode: 0o755 });
  }
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: dir });
  const [packed] = JSON.parse(stdout) as { filename: string }[];
  const path = join(dir, packed!.filename);
  return { path, bytes: (await stat(path)).size };
}

/** `npm install ./<tarball>` in a new empty folder; returns the folder. */
export async function installClient(tarball: string): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'client-install-'));
  await copyFile(tarball, join(folder, 'deploykey-client.tgz'));
  await run('npm', ['install', '--no-audit', '--no-fund', './deploykey-client.tgz'], { cwd: folder });
  return folder;
}
