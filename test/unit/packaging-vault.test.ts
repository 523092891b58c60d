// deploy/vault/deploykey-rotator.hcl, loaded into the Vault stand-in (which enforces ACL policies as
// Vault does): the service's real Vault clients, holding only that policy, must manage to do all
// they do, and nothing outside their own paths.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVaultCheckpointStore } from '../../src/audit/checkpoint-store.ts';
import { generateDeployKeyPair } from '../../src/keys/ssh-keypair.ts';
import { jobRoleName, keyRoleName } from '../../src/vault/kubernetes-grants.ts';
import { VaultError } from '../../src/vault/secret-store.ts';
import { createVaultClient, staticToken } from '../../src/vault/vault-client.ts';
import { createVaultSecretStore } from '../../src/vault/vault-secret-store.ts';
import { type Json, SERVICE_POLICY_NAME, startPolicyVault } from '../support/kubernetes-examples.ts';
import { deployConfig } from '../support/packaging-files.ts';
import { secretOwner } from '../support/vault-secrets.ts';

const { vault: settings } = deployConfig();
let vault: Awaited<ReturnType<typeof startPolicyVault>>;
const serviceClient = () => createVaultClient({ addr: vault.addr, token: staticToken(vault.serviceToken) });
const storeAt = (pathPrefix: string) =>
  createVaultSecretStore({ vault: serviceClient(), kvMount: settings.kvMount, pathPrefix });

beforeAll(async () => {
  vault = await startPolicyVault();
});
afterAll(async () => {
  await vault?.close();
});

describe('deploy/vault/deploykey-rotator.hcl', () => {
  it('lets the service write, read, wrap, grant, revoke and destroy keys under its prefix', async () => {
    const store = storeAt(settings.pathPrefix);
    const keyId = randomUUID();
    const path = store.pathFor('o-1', 'job-1', 'github', 'acme/models');
    const secret = {
      ...generateDeployKeyPair(`deploykey-rotator:${keyId}`),
      knownHosts: 'github.com ssh-ed25519 AAAA',
    };
    await store.write(path, secret, { keyId, expiresAt: new Date(Date.now() + 60_000) });
    expect(await store.read(path)).toEqual(secret);
    expect(await secretOwner(serviceClient(), settings.kvMount, path)).toBe(keyId);

    const unwrapped = await vault.call('POST', 'sys/wrapping/unwrap', (await store.wrap(path, 60)).token);
    expect(((unwrapped.body.data as Json).data as Json)['ssh-privatekey']).toBe(secret.privateKey);
    // A wrapping token revoked by its accessor (as a revoke does) no longer unwraps.
    const revoked = await store.wrap(path, 60);
    await store.revokeWrapToken(revoked.accessor);
    expect((await vault.call('POST', 'sys/wrapping/unwrap', revoked.token)).status).toBe(400);
    await store.revokeWrapToken(revoked.accessor);

    const grant = {
      keyId,
      namespace: 'training',
      serviceAccount: 'trainer',
      tokenTtlSeconds: 600,
      audience: 'vault',
    };
    expect(await store.grantKubernetesRead(path, grant)).toBe(keyRoleName(keyId));
    await store.removeKubernetesRead(keyId);
    expect(await store.destroy(path, keyId)).toBe('destroyed');
    expect(await store.read(path)).toBeUndefined();
  });

  it('lets the service grant and remove a Job’s shared role, whose policy name a dotted Job name ends', async () => {
    const store = storeAt(settings.pathPrefix);
    const jobGrant = {
      namespace: 'training',
      jobName: 'train.resnet-7',
      serviceAccount: 'trainer',
      tokenTtlSeconds: 600,
      audience: 'vault',
    };
    const role = await store.grantJobRead(jobGrant);
    expect(role).toBe(jobRoleName('training', 'train.resnet-7'));
    expect(role).toBe('deploykey-job.training.train.resnet-7');
    const written = await vault.call('GET', `sys/policies/acl/${role}`, 'root-token');
    expect((written.body.data as Json).policy).toContain(
      `"${settings.kvMount}/data/${settings.pathPrefix}/kubernetes/training/train.resnet-7/*"`,
    );
    await store.removeJobRead('training', 'train.resnet-7');
    expect((await vault.call('GET', `auth/kubernetes/role/${role}`, 'root-token')).status).toBe(404);
    expect((await vault.call('GET', `sys/policies/acl/${role}`, 'root-token')).status).toBe(404);
  });

  it('lets the service renew and look up its own token without Vault’s default policy', async () => {
    const tokenWith = async (policy: string) => {
      const created = await vault.call('POST', 'auth/token/create', 'root-token', {
        policies: [policy],
        no_default_policy: true,
        ttl: '1h',
      });
      return (created.body.auth as Json).client_token as string;
    };
    const service = await tokenWith(SERVICE_POLICY_NAME);
    expect((await vault.call('POST', 'auth/token/renew-self', service, { increment: '1h' })).status).toBe(
      200,
    );
    expect((await vault.call('GET', 'auth/token/lookup-self', service)).status).toBe(200);
    // The check can fail: a policy without those two paths is refused both.
    const kvOnly = 'path "secret/data/deploy-keys/*" { capabilities = ["read"] }';
    expect(
      (await vault.call('PUT', 'sys/policies/acl/kv-only', 'root-token', { policy: kvOnly })).status,
    ).toBe(204);
    const other = await tokenWith('kv-only');
    expect((await vault.call('POST', 'auth/token/renew-self', other, { increment: '1h' })).status).toBe(403);
    expect((await vault.call('GET', 'auth/token/lookup-self', other)).status).toBe(403);
  });

  it('lets the worker keep the signed audit checkpoint', async () => {
    const checkpoints = createVaultCheckpointStore({
      vault: serviceClient(),
      kvMount: settings.kvMount,
      pathPrefix: settings.pathPrefix,
    });
    const checkpoint = {
      seq: '7',
      head: 'ab'.repeat(32),
      at: new Date().toISOString(),
      signature: 's',
      publicKey: 'p',
    };
    await checkpoints.write(checkpoint);
    expect(await checkpoints.read()).toEqual(checkpoint);
  });

  it('refuses other paths, listing, and rewriting the service policy itself', async () => {
    const elsewhere = storeAt('other-keys');
    const secret = { ...generateDeployKeyPair('x'), knownHosts: 'github.com ssh-ed25519 AAAA' };
    const denied = await elsewhere
      .write(elsewhere.pathFor('o-1', 'j', 'github', 'a/b'), secret, {
        keyId: randomUUID(),
        expiresAt: new Date(),
      })
      .catch((error: unknown) => error);
    expect(denied).toBeInstanceOf(VaultError);
    expect((denied as VaultError).kind).toBe('forbidden');

    const token = vault.serviceToken;
    const ownPolicy = await vault.call('PUT', `sys/policies/acl/${SERVICE_POLICY_NAME}`, token, {
      policy: '',
    });
    expect(ownPolicy.status).toBe(403);
    const listing = `${settings.kvMount}/metadata/${settings.pathPrefix}?list=true`;
    expect((await vault.call('GET', listing, token)).status).toBe(403);
    const otherRole = await vault.call('POST', 'auth/kubernetes/role/admin', token, {
      token_policies: ['root'],
    });
    expect(otherRole.status).toBe(403);
  });
});
