import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sshpk from 'sshpk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostState, type HostState, type SandboxDeployKey } from '../../sandbox/shared/host-state.ts';
import { createSeededBareRepo } from '../../sandbox/ssh/git-repos.ts';
import { type SshGitServer, startSshGitServer } from '../../sandbox/ssh/git-server.ts';
import {
  authenticateClaimingKey,
  generateEd25519,
  gitSshCommand,
  runGit,
  runSsh,
  writeClientKey,
  writeKnownHosts,
} from '../support/git-client.ts';

interface Host {
  state: HostState;
  server: SshGitServer;
  knownHostsPath: string;
  bareDirs: Map<string, string>;
}

interface ClientKey {
  keyPath: string;
  knownHostsPath: string;
  sshCommand: string;
  deployKey: SandboxDeployKey | undefined;
}

let root: string;
let github: Host;
let gitlab: Host;

async function startHost(name: string, paths: string[]): Promise<Host> {
  const state = createHostState(name);
  const bareDirs = new Map<string, string>();
  for (const path of paths) {
    const bareDir = await createSeededBareRepo(join(root, name), path);
    state.addRepository(path, bareDir);
    bareDirs.set(path, bareDir);
  }
  const server = await startSshGitServer({ state });
  const knownHostsPath = await writeKnownHosts(root, server.knownHostsLines);
  return { state, server, knownHostsPath, bareDirs };
}

async function clientKey(
  host: Host,
  repositoryPath: string | undefined,
  opts: { readOnly?: boolean; expiresAt?: Date | null } = {},
): Promise<ClientKey> {
  const { privateKeyOpenssh, publicKey } = generateEd25519();
  const repository = repositoryPath ? host.state.findRepository(repositoryPath) : undefined;
  const deployKey = repository
    ? host.state.addKey({
        repositoryId: repository.id,
        title: `deploykey-rotator:test-${randomUUID()}`,
        key: publicKey,
        readOnly: opts.readOnly ?? true,
        expiresAt: opts.expiresAt ?? null,
      })
    : undefined;
  const keyPath = await writeClientKey(root, privateKeyOpenssh);
  const { knownHostsPath } = host;
  return { keyPath, knownHostsPath, sshCommand: gitSshCommand(keyPath, knownHostsPath), deployKey };
}

const workDir = () => join(root, 'work', randomUUID());

async function commitFile(dir: string, sshCommand: string, name: string): Promise<string> {
  await writeFile(join(dir, name), `${name}\n`);
  expect((await runGit(['-C', dir, 'add', name], { sshCommand })).code).toBe(0);
  expect((await runGit(['-C', dir, 'commit', '-q', '-m', `add ${name}`], { sshCommand })).code).toBe(0);
  return (await runGit(['-C', dir, 'rev-parse', 'HEAD'], { sshCommand })).stdout.trim();
}

const bareHead = async (host: Host, path: string) =>
  (
    await runGit(['--git-dir', host.bareDirs.get(path)!, 'rev-parse', 'main'], { sshCommand: 'false' })
  ).stdout.trim();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ssh-git-e2e-'));
  await mkdir(join(root, 'work'));
  github = await startHost('github', ['acme/models', 'acme/datasets', 'group/sub/project']);
  gitlab = await startHost('gitlab', ['group/sub/project']);
});

afterAll(async () => {
  await Promise.all([github?.server.close(), gitlab?.server.close()]);
  await rm(root, { recursive: true, force: true });
});

describe('SSH git server (GitHub flavour)', () => {
  it('lets a read-only deploy key clone its repository', async () => {
    const key = await clientKey(github, 'acme/models');
    const dir = workDir();
    const clone = await runGit(['clone', github.server.cloneUrl('acme/models'), dir], key);
    expect(clone.code, clone.stderr).toBe(0);
    expect(await readFile(join(dir, 'README.md'), 'utf8')).toBe('# acme/models\n');
  });

  it('refuses a push with a read-only key and leaves the repository untouched', async () => {
    const key = await clientKey(github, 'acme/models');
    const dir = workDir();
    expect((await runGit(['clone', github.server.cloneUrl('acme/models'), dir], key)).code).toBe(0);
    const before = await bareHead(github, 'acme/models');
    await commitFile(dir, key.sshCommand, 'weights.bin');
    const push = await runGit(['-C', dir, 'push', 'origin', 'main'], key);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('ERROR: The key you are authenticating with has been marked as read only.');
    expect(await bareHead(github, 'acme/models')).toBe(before);
  });

  it('refuses a repository the key is not registered on', async () => {
    const key = await clientKey(github, 'acme/models');
    const clone = await runGit(['clone', github.server.cloneUrl('acme/datasets'), workDir()], key);
    expect(clone.code).not.toBe(0);
    expect(clone.stderr).toContain('ERROR: Repository not found.');
  });

  it('lands a push from a writable key in the bare repository', async () => {
    const key = await clientKey(github, 'acme/datasets', { readOnly: false });
    const dir = workDir();
    expect((await runGit(['clone', github.server.cloneUrl('acme/datasets'), dir], key)).code).toBe(0);
    const pushed = await commitFile(dir, key.sshCommand, 'train.csv');
    const push = await runGit(['-C', dir, 'push', 'origin', 'main'], key);
    expect(push.code, push.stderr).toBe(0);
    expect(await bareHead(github, 'acme/datasets')).toBe(pushed);
  });

  it('serves a nested namespace path, with or without .git', async () => {
    const key = await clientKey(github, 'group/sub/project');
    const dir = workDir();
    const clone = await runGit(['clone', github.server.cloneUrl('group/sub/project'), dir], key);
    expect(clone.code, clone.stderr).toBe(0);
    expect(await readFile(join(dir, 'README.md'), 'utf8')).toBe('# group/sub/project\n');
    const url = `ssh://git@127.0.0.1:${github.server.port}/group/sub/project`;
    const lsRemote = await runGit(['ls-remote', url, 'refs/heads/main'], key);
    expect(lsRemote.code, lsRemote.stderr).toBe(0);
    expect(lsRemote.stdout).toContain(await bareHead(github, 'group/sub/project'));
  });

  it('stops honouring a key once it is deleted, on new and on already open connections', async () => {
    const key = await clientKey(github, 'acme/models');
    const url = github.server.cloneUrl('acme/models');
    const controlPath = join(root, `mux-${randomUUID().slice(0, 8)}`);
    const target = ['-p', String(github.server.port), 'git@127.0.0.1'];
    const mux = ['-o', `ControlPath=${controlPath}`];
    // A master connection that stays authenticated while the key is deleted underneath it.
    const master = await runSsh(
      ['-N', '-o', 'ControlMaster=yes', '-o', 'ControlPersist=60', ...mux, ...target],
      key,
    );
    expect(master.code, master.stderr).toBe(0);
    const viaMaster = { sshCommand: `${key.sshCommand} -o ControlMaster=no -o ControlPath=${controlPath}` };
    expect((await runGit(['ls-remote', url], viaMaster)).code).toBe(0);

    const { deployKey } = key;
    expect(github.state.deleteKey(deployKey!.repositoryId, deployKey!.id)).toBe(true);

    const fresh = await runGit(['ls-remote', url], key);
    expect(fresh.code).not.toBe(0);
    expect(fresh.stderr).toContain('Permission denied (publickey)');
    const reused = await runGit(['ls-remote', url], viaMaster);
    expect(reused.code).not.toBe(0);
    expect(reused.stderr).toContain('ERROR: Repository not found.');
    await runSsh(['-O', 'exit', ...mux, ...target], key);
  });

  it('refuses a key whose expiresAt has passed but honours one that has not', async () => {
    const expired = await clientKey(github, 'acme/models', { expiresAt: new Date(Date.now() - 1000) });
    const live = await clientKey(github, 'acme/models', { expiresAt: new Date(Date.now() + 3_600_000) });
    const url = github.server.cloneUrl('acme/models');
    const refused = await runGit(['ls-remote', url], expired);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Permission denied (publickey)');
    expect((await runGit(['ls-remote', url], live)).code).toBe(0);
  });

  it('refuses an unregistered key, and a registered key for any user but git', async () => {
    const stranger = await clientKey(github, undefined);
    const refused = await runGit(['ls-remote', github.server.cloneUrl('acme/models')], stranger);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Permission denied (publickey)');

    const key = await clientKey(github, 'acme/models');
    const otherUser = github.server.cloneUrl('acme/models').replace('ssh://git@', 'ssh://root@');
    const asRoot = await runGit(['ls-remote', otherUser], key);
    expect(asRoot.code).not.toBe(0);
    expect(asRoot.stderr).toContain('Permission denied (publickey)');
  });

  it('refuses a client that offers a registered public key but cannot sign with its private half', async () => {
    const registered = generateEd25519();
    const repository = github.state.findRepository('acme/models')!;
    github.state.addKey({
      repositoryId: repository.id,
      title: 'deploykey-rotator:claimed',
      key: registered.publicKey,
      readOnly: true,
      expiresAt: null,
    });
    const { port, hostPublicKey } = github.server;
    const honest = await authenticateClaimingKey(
      port,
      hostPublicKey,
      registered.publicKey,
      registered.privateKeyOpenssh,
    );
    expect(honest).toBe('authenticated');
    const forgedWith = generateEd25519().privateKeyOpenssh;
    const forged = await authenticateClaimingKey(port, hostPublicKey, registered.publicKey, forgedWith);
    expect(forged).toBeInstanceOf(Error);
    expect((forged as Error).message).toContain('All configured authentication methods failed');
  });

  it('makes ssh refuse the connection when known_hosts holds another host key', async () => {
    const key = await clientKey(github, 'acme/models');
    const impostor = generateEd25519().publicKey;
    const knownHosts = await writeKnownHosts(root, [`[127.0.0.1]:${github.server.port} ${impostor}`]);
    const clone = await runGit(['clone', github.server.cloneUrl('acme/models'), workDir()], {
      sshCommand: gitSshCommand(key.keyPath, knownHosts),
    });
    expect(clone.code).not.toBe(0);
    expect(clone.stderr).toContain('Host key verification failed.');
  });

  it('refuses any command other than git-upload-pack / git-receive-pack, without running a shell', async () => {
    const key = await clientKey(github, 'acme/models');
    const target = ['-p', String(github.server.port), 'git@127.0.0.1'];
    const ls = await runSsh([...target, 'ls'], key);
    expect(ls.code).toBe(1);
    expect(ls.stderr).toContain("Invalid command: 'ls'");
    expect(ls.stdout).toBe('');

    const marker = join(root, `injected-${randomUUID()}`);
    const injected = await runSsh([...target, `git-upload-pack 'acme/models'; touch ${marker}`], key);
    expect(injected.code).toBe(1);
    expect(existsSync(marker)).toBe(false);
  });

  it('greets an interactive login like GitHub and closes it', async () => {
    const key = await clientKey(github, 'acme/models');
    const shell = await runSsh(['-T', '-p', String(github.server.port), 'git@127.0.0.1'], key);
    expect(shell.code).toBe(1);
    expect(shell.stderr).toContain(
      "Hi acme/models! You've successfully authenticated, but GitHub does not provide shell access.",
    );
  });
});

describe('SSH git server with a given host key', () => {
  it('presents that key, so known_hosts can be written before it starts', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const spki = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const [type, data] = sshpk.parseKey(spki, 'pem').toString('ssh').split(' ');
    const server = await startSshGitServer({ state: github.state, hostKeyPem: pem });
    try {
      expect(server.hostPublicKey).toBe(`${type} ${data}`);
      const key = await clientKey(github, 'acme/models');
      const knownHosts = await writeKnownHosts(root, [`[127.0.0.1]:${server.port} ${type} ${data}`]);
      const lsRemote = await runGit(['ls-remote', server.cloneUrl('acme/models')], {
        sshCommand: gitSshCommand(key.keyPath, knownHosts),
      });
      expect(lsRemote.code, lsRemote.stderr).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('SSH git server (GitLab flavour)', () => {
  it('clones with a read-only key and refuses its push with the GitLab message', async () => {
    const key = await clientKey(gitlab, 'group/sub/project');
    const dir = workDir();
    const clone = await runGit(['clone', gitlab.server.cloneUrl('group/sub/project'), dir], key);
    expect(clone.code, clone.stderr).toBe(0);
    await commitFile(dir, key.sshCommand, 'notes.md');
    const push = await runGit(['-C', dir, 'push', 'origin', 'main'], key);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain(
      'remote: ERROR: This deploy key does not have write access to this project.',
    );

    const missing = await runGit(['ls-remote', gitlab.server.cloneUrl('group/sub/missing')], key);
    expect(missing.stderr).toContain('The project you were looking for could not be found');
  });
});
