// The key a caller gets works with the real `git` and `ssh` clients under StrictHostKeyChecking=yes,
// on GitHub, GitLab and Gitea alike, whichever way it is delivered: it clones its repository, and nothing else.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerScope } from '../../src/keys/ownership.ts';
import {
  gitSshCommand,
  HOST_REFUSALS,
  runGit,
  writeClientKey,
  writeKnownHosts,
} from '../support/git-client.ts';
import { type Provider, readVaultPrivateKey, vaultClient } from '../support/issue-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

const TTL_SECONDS = 900;

let harness: Harness;
let root: string;
let counter = 0;

beforeAll(async () => {
  harness = await startHarness();
  root = await mkdtemp(join(tmpdir(), 'issue-e2e-'));
});
afterAll(async () => {
  await harness?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: the issued body is checked field by field
async function issue(provider: Provider, delivery?: string): Promise<any> {
  counter += 1;
  const jobId = `e2e-${provider}-${delivery ?? 'default'}-${counter}`;
  const answer = await harness.api('POST', '/v1/keys', {
    body: {
      provider,
      repository: 'acme/models',
      jobId,
      ttlSeconds: TTL_SECONDS,
      ...(delivery ? { delivery } : {}),
    },
  });
  expect(answer.status, answer.text).toBe(201);
  expect(answer.headers.get('cache-control')).toBe('no-store');
  expect(answer.headers.get('idempotent-replayed')).toBeNull();
  return answer.body;
}

function expectIssuedShape(body: Record<string, unknown>, provider: Provider) {
  const jobId = body.jobId as string;
  expect(body).toMatchObject({
    id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    provider,
    repository: 'acme/models',
    status: 'active',
    fingerprint: expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/),
    publicKey: expect.stringMatching(/^ssh-ed25519 AAAA/),
    cloneUrl: harness.standIns[provider].ssh.cloneUrl('acme/models'),
    knownHosts: harness.standIns[provider].ssh.knownHostsLines,
    vault: {
      mount: 'secret',
      path: `deploy-keys/${ownerScope('token:ci')}/${jobId}/${provider}/acme/models`,
    },
  });
  const createdAt = Date.parse(body.createdAt as string);
  const expiresAt = Date.parse(body.expiresAt as string);
  expect(Math.abs(Date.now() - createdAt)).toBeLessThan(60_000);
  expect(expiresAt - createdAt).toBe(TTL_SECONDS * 1000);
}

/** Clones with the key exactly as a CI job would: key file, known_hosts file, strict host checking. */
async function useKey(privateKey: string, body: { cloneUrl: string; knownHosts: string[] }) {
  const keyPath = await writeClientKey(root, privateKey);
  const knownHostsPath = await writeKnownHosts(root, body.knownHosts);
  const sshCommand = gitSshCommand(keyPath, knownHostsPath);
  counter += 1;
  const dir = join(root, `clone-${counter}`);
  const clone = await runGit(['clone', body.cloneUrl, dir], { sshCommand });
  return { keyPath, sshCommand, dir, clone };
}

/** The key clones its repository, cannot push to it, and cannot read a repository it was not issued for. */
async function expectReadOnlyOnItsRepository(
  provider: Provider,
  privateKey: string,
  body: { cloneUrl: string; knownHosts: string[]; fingerprint: string },
) {
  const { keyPath, sshCommand, dir, clone } = await useKey(privateKey, body);
  expect(clone.code, clone.stderr).toBe(0);
  expect(await readFile(join(dir, 'README.md'), 'utf8')).toContain('acme/models');

  const keygen = spawnSync('ssh-keygen', ['-lf', keyPath], { encoding: 'utf8' });
  expect(keygen.status, keygen.stderr).toBe(0);
  expect(keygen.stdout.split(' ')[1]).toBe(body.fingerprint);

  await writeFile(join(dir, 'weights.bin'), 'not allowed\n');
  expect((await runGit(['-C', dir, 'add', 'weights.bin'], { sshCommand })).code).toBe(0);
  expect((await runGit(['-C', dir, 'commit', '-q', '-m', 'try a push'], { sshCommand })).code).toBe(0);
  const push = await runGit(['-C', dir, 'push', 'origin', 'HEAD:main'], { sshCommand });
  expect(push.code).not.toBe(0);
  expect(push.stderr).toMatch(HOST_REFUSALS[provider].push);

  const other = await runGit(
    ['clone', harness.standIns[provider].ssh.cloneUrl('acme/datasets'), join(dir, '..', `other-${counter}`)],
    { sshCommand },
  );
  expect(other.code).not.toBe(0);
  expect(other.stderr).toMatch(HOST_REFUSALS[provider].repository);
}

function expectReadOnlyAtHost(
  provider: Provider,
  body: { publicKey: string; id: string; expiresAt: string },
) {
  const state = harness.standIns[provider].state;
  const repo = state.findRepository('acme/models');
  const [key, ...others] = state.keysWithBlob(body.publicKey);
  expect(others).toEqual([]);
  expect(key).toMatchObject({ repositoryId: repo?.id, readOnly: true });
  expect(key?.title).toContain(body.id);
  if (provider === 'gitlab') {
    // GitLab's own expiry is the second safety net: never earlier than ours.
    expect(key?.expiresAt?.getTime()).toBeGreaterThanOrEqual(Date.parse(body.expiresAt));
  }
}

describe.each<Provider>(['github', 'gitlab', 'gitea'])('issuing on %s', (provider) => {
  it('delivery "response" puts the private key in a no-store answer, and the key clones read-only', async () => {
    const body = await issue(provider, 'response');
    expectIssuedShape(body, provider);
    expect(body.wrapToken).toBeUndefined();
    expect(body.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expectReadOnlyAtHost(provider, body);
    await expectReadOnlyOnItsRepository(provider, body.privateKey, body);
    // The same key sits in Vault, where a later reader would find it.
    expect(await readVaultPrivateKey(harness, body.vault.path)).toBe(body.privateKey);
  });

  it('delivery "vault" (the default) keeps the key out of the answer; Vault has it at the returned path', async () => {
    const body = await issue(provider);
    expectIssuedShape(body, provider);
    expect(body.delivery).toBe('vault');
    expect(body.privateKey).toBeUndefined();
    expect(body.wrapToken).toBeUndefined();
    const privateKey = await readVaultPrivateKey(harness, body.vault.path);
    expectReadOnlyAtHost(provider, body);
    await expectReadOnlyOnItsRepository(provider, privateKey, body);

    const fetched = await harness.api('GET', `/v1/keys/${body.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body).toMatchObject({ id: body.id, status: 'active', fingerprint: body.fingerprint });
    expect(fetched.text).not.toContain('PRIVATE KEY');
  });

  it('delivery "wrapped" returns a single-use wrap token whose unwrap yields a working key', async () => {
    const body = await issue(provider, 'wrapped');
    expectIssuedShape(body, provider);
    expect(body.privateKey).toBeUndefined();
    expect(body.wrapToken).toEqual(expect.stringMatching(/\S{8,}/));

    const unwrapper = vaultClient(harness, body.wrapToken);
    const unwrapped = await unwrapper.unwrap();
    const privateKey = unwrapped?.data?.data?.['ssh-privatekey'];
    expect(privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(unwrapped.data.data['ssh-publickey']).toContain(body.publicKey);
    expectReadOnlyAtHost(provider, body);
    await expectReadOnlyOnItsRepository(provider, privateKey, body);

    const again = await vaultClient(harness, body.wrapToken)
      .unwrap()
      .then(
        () => undefined,
        (error: { response?: { statusCode?: number } }) => error.response?.statusCode,
      );
    expect(again, 'a wrap token unwraps once').toBeGreaterThanOrEqual(400);
  });
});
