// The service's one Vault client: where its token comes from, what it ignores in the environment,
// and that the key store and the audit checkpoint store both go through it.
import { randomBytes, randomUUID } from 'node:crypto';
import vault from 'node-vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { createVaultCheckpointStore } from '../../src/audit/checkpoint-store.ts';
import { generateDeployKeyPair } from '../../src/keys/ssh-keypair.ts';
import { VaultError } from '../../src/vault/secret-store.ts';
import { createVaultClient, staticToken } from '../../src/vault/vault-client.ts';
import { createVaultSecretStore } from '../../src/vault/vault-secret-store.ts';

const MOUNT = 'secret';
const rootToken = `hvs.${randomBytes(18).toString('base64url')}`;
let standIn: VaultStandIn;
let weakToken: string;

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken });
  const admin = vault({ endpoint: standIn.addr, token: rootToken });
  await admin.addPolicy({ name: 'grants-nothing', rules: 'path "sys/nothing" { capabilities = ["deny"] }' });
  weakToken = (await admin.tokenCreate({ policies: ['grants-nothing'], no_default_policy: true, ttl: '10m' }))
    .auth.client_token;
});
afterEach(() => standIn.faults.clear());
afterAll(async () => {
  await standIn?.close();
});

const secret = () => ({
  ...generateDeployKeyPair('deploykey-rotator:x'),
  knownHosts: 'github.com ssh-ed25519 AAAA',
});

describe('the Vault client', () => {
  it('asks its token source before every request, for the key store and the checkpoint store alike', async () => {
    let token = weakToken;
    let asked = 0;
    const client = createVaultClient({
      addr: standIn.addr,
      token: () => {
        asked += 1;
        return token;
      },
    });
    const keys = createVaultSecretStore({ vault: client, kvMount: MOUNT, pathPrefix: 'deploy-keys' });
    const checkpoints = createVaultCheckpointStore({
      vault: client,
      kvMount: MOUNT,
      pathPrefix: 'deploy-keys',
    });
    const path = keys.pathFor('o-vaultclienttest', 'job-token', 'github', 'acme/models');
    const metadata = { keyId: randomUUID(), expiresAt: new Date(Date.now() + 60_000) };

    expect(
      (await keys.write(path, secret(), metadata).catch((error: unknown) => error)) as VaultError,
    ).toMatchObject({
      kind: 'forbidden',
    });
    // A renewed or newly logged-in token takes effect with the next request; nothing is cached.
    token = rootToken;
    const written = secret();
    await keys.write(path, written, metadata);
    expect(await keys.read(path)).toEqual(written);
    expect(await checkpoints.read()).toBeUndefined();
    // One refused metadata write; then metadata and data written, the key read, the checkpoint read.
    expect(asked).toBe(5);
  });

  it('takes neither token, path prefix nor namespace from the environment', async () => {
    await vault({ endpoint: standIn.addr, token: rootToken }).write(`${MOUNT}/data/env-check`, {
      data: { value: 'here' },
    });
    const saved = { ...process.env };
    Object.assign(process.env, {
      VAULT_TOKEN: weakToken,
      VAULT_PREFIX: '/elsewhere',
      VAULT_NAMESPACE: 'other',
    });
    try {
      const client = createVaultClient({ addr: standIn.addr, token: staticToken(rootToken) });
      const body = await client.read(`${MOUNT}/data/env-check`, { what: 'read env-check' });
      expect((body as { data: { data: unknown } }).data.data).toEqual({ value: 'here' });
    } finally {
      process.env = saved;
    }
  });

  it('refuses an empty configured token before any request', () => {
    expect(() => staticToken('')).toThrow(VaultError);
  });

  it('checks health: a standby’s 429 is ready, a sealed 503 is not, an unreachable Vault is not', async () => {
    const client = createVaultClient({ addr: standIn.addr, token: staticToken(rootToken) });
    await expect(client.health()).resolves.toBeUndefined();
    standIn.faults.add({ status: 429, pathPrefix: '/v1/sys/health', count: 1 });
    await expect(client.health()).resolves.toBeUndefined();
    standIn.faults.add({ status: 503, pathPrefix: '/v1/sys/health', count: 1 });
    await expect(client.health()).rejects.toMatchObject({ kind: 'unavailable', status: 503 });
    const away = createVaultClient({ addr: 'http://127.0.0.1:1', token: staticToken(rootToken) });
    await expect(away.health()).rejects.toMatchObject({ kind: 'unavailable' });
  });
});
