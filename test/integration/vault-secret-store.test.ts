import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import vault from 'node-vault';
import sshpk from 'sshpk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { type KeySecret, type SecretStore, VaultError } from '../../src/vault/secret-store.ts';
import { createVaultClient, staticToken, type VaultClient } from '../../src/vault/vault-client.ts';
import { createVaultSecretStore } from '../../src/vault/vault-secret-store.ts';
import { secretOwner } from '../support/vault-secrets.ts';

const MOUNT = 'secret';
const PREFIX = 'deploykeys';

function keyMaterial(): KeySecret {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const key = sshpk.parsePrivateKey(pem, 'pem');
  const publicKey = key.toPublic();
  return {
    privateKey: key.toString('openssh'),
    publicKey: publicKey.toString('ssh'),
    knownHosts: `github.com ${publicKey.toString('ssh')}`,
    fingerprint: publicKey.fingerprint('sha256').toString(),
  };
}

async function failure(promise: Promise<unknown>): Promise<VaultError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(VaultError);
  return error as VaultError;
}

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  const error = await promise.then(
    () => undefined,
    (caught: { response?: { statusCode?: number } }) => caught,
  );
  return error?.response?.statusCode;
}

/** Everything a log line or an error report could show of the error, causes included. */
function rendered(error: unknown): string {
  const parts = [JSON.stringify(error)];
  for (let current: unknown = error; current; current = (current as { cause?: unknown }).cause) {
    parts.push(String((current as Error).message), inspect(current, { depth: 10, showHidden: true }));
  }
  return parts.join('\n');
}

function expectNoSecrets(error: unknown, secret: KeySecret, token: string) {
  const text = rendered(error);
  expect(text).not.toContain(token);
  expect(text).not.toContain(secret.privateKey);
  const body = secret.privateKey.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'));
  expect(body.length).toBeGreaterThan(0);
  for (const line of body) expect(text).not.toContain(line);
}

describe('Vault secret store', () => {
  const rootToken = `hvs.${randomBytes(18).toString('base64url')}`;
  let standIn: VaultStandIn;
  let root: ReturnType<typeof vault>;
  let store: SecretStore;
  let jobId: string;

  const expiresAt = () => new Date(Date.now() + 3_600_000);
  let rootClient: VaultClient;
  const clientWith = (overrides: { addr?: string; token?: string; timeoutMs?: number } = {}) =>
    createVaultClient({
      addr: overrides.addr ?? standIn.addr,
      token: staticToken(overrides.token ?? rootToken),
      ...(overrides.timeoutMs ? { timeoutMs: overrides.timeoutMs } : {}),
    });
  const storeWith = (overrides: { addr?: string; token?: string; timeoutMs?: number } = {}) =>
    createVaultSecretStore({ vault: clientWith(overrides), kvMount: MOUNT, pathPrefix: PREFIX });
  const ownerOf = (path: string) => secretOwner(rootClient, MOUNT, path);

  beforeAll(async () => {
    standIn = await startVaultStandIn({ rootToken });
    root = vault({ endpoint: standIn.addr, token: rootToken });
    rootClient = clientWith();
    store = storeWith();
  });
  afterEach(() => standIn.faults.clear());
  afterAll(async () => {
    await standIn?.close();
  });

  const freshPath = (repository = 'acme/widgets') => {
    jobId = `job-${randomUUID()}`;
    return store.pathFor('o-test', jobId, 'github', repository);
  };
  const writeNew = (target: SecretStore, secret: KeySecret) =>
    target.write(freshPath(), secret, { keyId: randomUUID(), expiresAt: expiresAt() });

  it('lays secrets out as <prefix>/<owner scope>/<job>/<provider>/<repository>, nested for GitLab groups', () => {
    expect(store.mount).toBe(MOUNT);
    expect(store.pathFor('o-1', 'ci:42', 'gitlab', 'group/sub/project')).toBe(
      `${PREFIX}/o-1/ci:42/gitlab/group/sub/project`,
    );
    expect(store.pathFor('o-1', 'ci.42', 'github', 'acme/widgets')).toBe(
      `${PREFIX}/o-1/ci.42/github/acme/widgets`,
    );
  });

  it('lays a Job’s keys out in its own folder, <prefix>/kubernetes/<namespace>/<job>/<provider>/<repository>', () => {
    expect(store.jobPathFor('training', 'train.v2', 'gitlab', 'group/sub/project')).toBe(
      `${PREFIX}/kubernetes/training/train.v2/gitlab/group/sub/project`,
    );
    // Not Kubernetes names: a dotted namespace would make the role name ambiguous, the rest escape the folder.
    for (const [namespace, name] of [
      ['team.a', 'train'],
      ['training', '..'],
      ['training', 'a/b'],
      ['Training', 'train'],
      ['training', 'train.'],
      ['training', ''],
    ] as const) {
      expect(() => store.jobPathFor(namespace, name, 'github', 'acme/widgets')).toThrow(VaultError);
    }
  });

  it('refuses path segments that are empty, dot or dot-dot before any request is sent', async () => {
    const before = standIn.faults.stats().total;
    for (const [job, repository] of [
      ['..', 'acme/widgets'],
      ['job', 'acme/../other'],
      ['job', 'acme//widgets'],
      ['job', './widgets'],
      ['', 'acme/widgets'],
      ['job', 'acme/widgets/'],
    ] as const) {
      expect(() => store.pathFor('o-1', job, 'github', repository)).toThrow(VaultError);
    }
    const error = await failure(store.destroy(`${PREFIX}/job/github/../../other`));
    expect(error.kind).toBe('invalid');
    expect(standIn.faults.stats().total).toBe(before);
  });

  it('writes the four ssh-auth fields and custom metadata that node-vault reads back at the path', async () => {
    const path = freshPath('group/sub/project');
    const secret = keyMaterial();
    const keyId = randomUUID();
    const expiry = expiresAt();
    await store.write(path, secret, { keyId, expiresAt: expiry });

    const read = await root.read(`${MOUNT}/data/${PREFIX}/o-test/${jobId}/github/group/sub/project`);
    expect(read.data.data).toEqual({
      'ssh-privatekey': secret.privateKey,
      'ssh-publickey': secret.publicKey,
      known_hosts: secret.knownHosts,
      fingerprint: secret.fingerprint,
    });
    const metadata = await root.read(`${MOUNT}/metadata/${path}`);
    expect(metadata.data.custom_metadata).toEqual({ keyId, expiresAt: expiry.toISOString() });
    expect(await ownerOf(path)).toBe(keyId);
    expect(await store.read(path)).toEqual(secret);
  });

  it('keeps no earlier private key when a path is written again', async () => {
    const path = freshPath();
    const first = keyMaterial();
    const second = keyMaterial();
    await store.write(path, first, { keyId: randomUUID(), expiresAt: expiresAt() });
    const keyId = randomUUID();
    await store.write(path, second, { keyId, expiresAt: expiresAt() });

    const metadata = await root.read(`${MOUNT}/metadata/${path}`);
    expect(Object.keys(metadata.data.versions)).toEqual(['2']);
    expect(await statusOf(root.read(`${MOUNT}/data/${path}?version=1`))).toBe(404);
    expect(await store.read(path)).toEqual(second);
    expect(await ownerOf(path)).toBe(keyId);
  });

  it('hands out a wrapping token that unwraps to the private key exactly once, none for no secret', async () => {
    const path = freshPath();
    const secret = keyMaterial();
    await store.write(path, secret, { keyId: randomUUID(), expiresAt: expiresAt() });

    const { token, accessor } = await store.wrap(path, 120);
    expect(token).not.toContain(secret.privateKey);
    expect(accessor).not.toBe(token);
    const unwrapped = await root.unwrap({ token });
    expect(unwrapped.data.data['ssh-privatekey']).toBe(secret.privateKey);
    expect(await statusOf(root.unwrap({ token }))).toBe(400);
    // Revoking by accessor stops a token that was never used; revoking again is no error.
    const unused = await store.wrap(path, 120);
    await store.revokeWrapToken(unused.accessor);
    expect(await statusOf(root.unwrap({ token: unused.token }))).toBe(400);
    await store.revokeWrapToken(unused.accessor);

    const error = await failure(store.wrap(freshPath(), 60));
    expect(error.kind).toBe('invalid');
    expect(error.status).toBe(404);
  });

  it('destroys every version and the metadata', async () => {
    const path = freshPath();
    const keyId = randomUUID();
    await store.write(path, keyMaterial(), { keyId, expiresAt: expiresAt() });
    await root.write(`${MOUNT}/metadata/${path}`, { max_versions: 5 });
    await root.write(`${MOUNT}/data/${path}`, { data: { 'ssh-privatekey': 'second version' } });
    await root.write(`${MOUNT}/data/${path}`, { data: { 'ssh-privatekey': 'third version' } });

    expect(await store.destroy(path, keyId)).toBe('destroyed');
    for (const version of [1, 2, 3]) {
      expect(await statusOf(root.read(`${MOUNT}/data/${path}?version=${version}`))).toBe(404);
    }
    expect(await statusOf(root.read(`${MOUNT}/data/${path}`))).toBe(404);
    expect(await statusOf(root.read(`${MOUNT}/metadata/${path}`))).toBe(404);
    expect(await ownerOf(path)).toBeUndefined();
    expect(await store.read(path)).toBeUndefined();
  });

  it('leaves a secret that names another key untouched', async () => {
    const path = freshPath();
    const secret = keyMaterial();
    const keyId = randomUUID();
    await store.write(path, secret, { keyId, expiresAt: expiresAt() });

    expect(await store.destroy(path, randomUUID())).toBe('not-ours');
    const read = await root.read(`${MOUNT}/data/${path}`);
    expect(read.data.data['ssh-privatekey']).toBe(secret.privateKey);
    expect(await ownerOf(path)).toBe(keyId);
  });

  it('destroys without a key id, and a secret whose metadata names no key', async () => {
    const path = freshPath();
    await store.write(path, keyMaterial(), { keyId: randomUUID(), expiresAt: expiresAt() });
    expect(await store.destroy(path)).toBe('destroyed');

    const unowned = freshPath();
    await root.write(`${MOUNT}/data/${unowned}`, { data: { 'ssh-privatekey': 'written elsewhere' } });
    expect(await ownerOf(unowned)).toBeUndefined();
    expect((await failure(store.read(unowned))).kind).toBe('invalid');
    expect(await store.destroy(unowned, randomUUID())).toBe('destroyed');
    expect(await statusOf(root.read(`${MOUNT}/metadata/${unowned}`))).toBe(404);
  });

  it('counts a missing secret as already gone, also when destroyed twice', async () => {
    expect(await store.read(freshPath())).toBeUndefined();
    expect(await store.destroy(freshPath())).toBe('already-gone');
    const path = freshPath();
    const keyId = randomUUID();
    await store.write(path, keyMaterial(), { keyId, expiresAt: expiresAt() });
    expect(await store.destroy(path, keyId)).toBe('destroyed');
    expect(await store.destroy(path, keyId)).toBe('already-gone');
  });

  it('can still destroy what a write that failed half-way left behind', async () => {
    const path = freshPath();
    const secret = keyMaterial();
    const keyId = randomUUID();
    standIn.faults.add({ status: 500, count: 1, method: 'POST', pathPrefix: `/v1/${MOUNT}/data/` });
    const error = await failure(store.write(path, secret, { keyId, expiresAt: expiresAt() }));
    expect(error.kind).toBe('unavailable');

    expect(await ownerOf(path)).toBe(keyId);
    expect(await store.read(path)).toBeUndefined();
    expect(await store.destroy(path, keyId)).toBe('destroyed');
    expect(await statusOf(root.read(`${MOUNT}/metadata/${path}`))).toBe(404);
  });

  it('reports a Vault 500 as unavailable without the key or the token', async () => {
    const secret = keyMaterial();
    standIn.faults.add({ status: 500, count: 1, method: 'POST', pathPrefix: `/v1/${MOUNT}/data/` });
    const error = await failure(writeNew(store, secret));
    expect(error.kind).toBe('unavailable');
    expect(error.status).toBe(500);
    expect(error).toMatchObject({ code: 'vault-unavailable', detail: 'Vault is unavailable' });
    expect(error.message).toContain('internal error');
    expectNoSecrets(error, secret, rootToken);
  });

  it('reports a dropped connection during a write without the key or the token', async () => {
    const secret = keyMaterial();
    standIn.faults.add({ drop: true, count: 1, method: 'POST', pathPrefix: `/v1/${MOUNT}/data/` });
    const error = await failure(writeNew(store, secret));
    expect(error.kind).toBe('unavailable');
    expect(error.status).toBeUndefined();
    expectNoSecrets(error, secret, rootToken);
  });

  it('reports a token without rights as forbidden', async () => {
    const admin = vault({ endpoint: standIn.addr, token: rootToken });
    await admin.addPolicy({
      name: 'grants-nothing',
      rules: 'path "sys/nothing" { capabilities = ["deny"] }',
    });
    const created = await admin.tokenCreate({
      policies: ['grants-nothing'],
      no_default_policy: true,
      ttl: '10m',
    });
    const weakToken: string = created.auth.client_token;
    const weak = storeWith({ token: weakToken });

    const secret = keyMaterial();
    const error = await failure(writeNew(weak, secret));
    expect(error.kind).toBe('forbidden');
    expect(error.status).toBe(403);
    expect(error.code).toBe('vault-forbidden');
    expectNoSecrets(error, secret, weakToken);
    expect((await failure(weak.destroy(freshPath()))).kind).toBe('forbidden');
  });

  it('reports an unreachable Vault as unavailable without the key or the token', async () => {
    const secret = keyMaterial();
    const away = storeWith({ addr: 'http://127.0.0.1:1' });
    const error = await failure(
      away.write(away.pathFor('o-1', 'job', 'github', 'acme/widgets'), secret, {
        keyId: randomUUID(),
        expiresAt: expiresAt(),
      }),
    );
    expect(error.kind).toBe('unavailable');
    expectNoSecrets(error, secret, rootToken);
  });

  it('gives up on a slow Vault at the deadline and reports a timeout', async () => {
    const secret = keyMaterial();
    const quick = storeWith({ timeoutMs: 200 });
    standIn.faults.add({ latencyMs: 3_000, count: 1, method: 'POST' });
    const started = Date.now();
    const error = await failure(writeNew(quick, secret));
    expect(error.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
    expectNoSecrets(error, secret, rootToken);
  });
});
