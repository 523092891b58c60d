import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Api, giteaApi } from 'gitea-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StandIns, startStandIns } from '../../sandbox/stand-ins.ts';
import {
  generateEd25519,
  gitSshCommand,
  runGit,
  runSsh,
  writeClientKey,
  writeKnownHosts,
} from '../support/git-client.ts';

let standIns: StandIns;
let root: string;
let knownHostsPath: string;
let api: Api<unknown>;

interface ClientKey {
  keyPath: string;
  knownHostsPath: string;
  sshCommand: string;
  publicKey: string;
}

async function clientKey(): Promise<ClientKey> {
  const { privateKeyOpenssh, publicKey } = generateEd25519();
  const keyPath = await writeClientKey(root, privateKeyOpenssh);
  return { keyPath, knownHostsPath, sshCommand: gitSshCommand(keyPath, knownHostsPath), publicKey };
}

/** Registers the key through Gitea's API, as a deploy key of `repository`. */
async function register(key: ClientKey, repository: string, readOnly: boolean) {
  const [owner, repo] = repository.split('/') as [string, string];
  const title = `deploykey-rotator:${randomUUID()}`;
  const { data } = await api.repos.repoCreateKey(owner, repo, {
    title,
    key: key.publicKey,
    read_only: readOnly,
  });
  return { id: data.id!, keyId: data.key_id!, title };
}

/** The clone URL Gitea reports for the repository. */
async function sshUrl(repository: string): Promise<string> {
  const [owner, repo] = repository.split('/') as [string, string];
  return (await api.repos.repoGet(owner, repo)).data.ssh_url!;
}

async function commitFile(dir: string, sshCommand: string, name: string): Promise<string> {
  await writeFile(join(dir, name), `${name}\n`);
  expect((await runGit(['-C', dir, 'add', name], { sshCommand })).code).toBe(0);
  expect((await runGit(['-C', dir, 'commit', '-q', '-m', `add ${name}`], { sshCommand })).code).toBe(0);
  return (await runGit(['-C', dir, 'rev-parse', 'HEAD'], { sshCommand })).stdout.trim();
}

const workDir = () => join(root, 'work', randomUUID());

beforeAll(async () => {
  standIns = await startStandIns();
  root = await mkdtemp(join(tmpdir(), 'gitea-ssh-git-'));
  // Gitea publishes no SSH host keys over its API: known_hosts comes from the stand-in's configuration.
  knownHostsPath = await writeKnownHosts(root, standIns.gitea.ssh.knownHostsLines);
  api = giteaApi(standIns.gitea.api.url, { token: standIns.gitea.token });
});
afterAll(async () => {
  await standIns?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('Gitea stand-in behind the SSH git server', () => {
  it('clones with a read-only deploy key, refuses its push, and refuses it once deleted', async () => {
    const key = await clientKey();
    const deployKey = await register(key, 'acme/models', true);
    const url = await sshUrl('acme/models');
    expect(url).toBe(`ssh://git@127.0.0.1:${standIns.gitea.ssh.port}/acme/models.git`);
    expect(key.sshCommand).toContain('StrictHostKeyChecking=yes');

    const dir = workDir();
    const clone = await runGit(['clone', url, dir], key);
    expect(clone.code, clone.stderr).toBe(0);
    expect(await readFile(join(dir, 'README.md'), 'utf8')).toBe('# acme/models\n');

    await commitFile(dir, key.sshCommand, 'weights.txt');
    const push = await runGit(['-C', dir, 'push', 'origin', 'main'], key);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain(
      `Gitea: Deploy Key: ${deployKey.keyId}:${deployKey.title} is not authorized to write acme/models.`,
    );

    expect((await api.repos.repoDeleteKey('acme', 'models', deployKey.id)).status).toBe(204);
    const refused = await runGit(['clone', url, workDir()], key);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Permission denied (publickey)');
  });

  it('keeps read_only per repository: one key pushes where it may write and is refused where it may only read', async () => {
    const key = await clientKey();
    const readOnly = await register(key, 'acme/models', true);
    await register(key, 'acme/datasets', false);

    const datasets = workDir();
    expect((await runGit(['clone', await sshUrl('acme/datasets'), datasets], key)).code).toBe(0);
    const pushed = await commitFile(datasets, key.sshCommand, 'train.csv');
    const push = await runGit(['-C', datasets, 'push', 'origin', 'main'], key);
    expect(push.code, push.stderr).toBe(0);
    const remote = await runGit(['ls-remote', await sshUrl('acme/datasets'), 'refs/heads/main'], key);
    expect(remote.stdout).toContain(pushed);

    const models = workDir();
    expect((await runGit(['clone', await sshUrl('acme/models'), models], key)).code).toBe(0);
    await commitFile(models, key.sshCommand, 'notes.md');
    const refused = await runGit(['-C', models, 'push', 'origin', 'main'], key);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`Gitea: Deploy Key: ${readOnly.keyId}:`);
  });

  it('names the key when it reaches for a repository it is no deploy key of, or one that does not exist', async () => {
    const key = await clientKey();
    const deployKey = await register(key, 'acme/models', true);
    const other = await runGit(['ls-remote', await sshUrl('acme/datasets')], key);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain(
      `Gitea: Public (Deploy) Key: ${deployKey.keyId}:${deployKey.title} is not authorized to read acme/datasets.`,
    );
    const missing = await runGit(
      ['ls-remote', `ssh://git@127.0.0.1:${standIns.gitea.ssh.port}/acme/nothing.git`],
      key,
    );
    expect(missing.stderr).toContain('Gitea: Cannot find repository acme/nothing');
  });

  it('greets a login without a command as Gitea does', async () => {
    const key = await clientKey();
    const deployKey = await register(key, 'acme/models', true);
    const shell = await runSsh(['-T', '-p', String(standIns.gitea.ssh.port), 'git@127.0.0.1'], key);
    expect(shell.code).toBe(0);
    expect(shell.stderr).toContain(
      `Hi there! You've successfully authenticated with the deploy key named ${deployKey.title}, but Gitea does not provide shell access.`,
    );
  });
});
