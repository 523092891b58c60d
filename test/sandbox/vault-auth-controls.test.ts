import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import vault from 'node-vault';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { INVALID_TOKEN, vaultFailure } from '../support/vault-calls.ts';

let standIn: VaultStandIn;
let root: vault.client;
let roleId: string;
let clock = Date.now();

const control = (path: string, method: string, body: unknown) =>
  fetch(`${standIn.addr}/_sandbox/auth/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** A client logged in through AppRole, as a service with a role ID and a secret ID file would be. */
async function loggedIn(): Promise<vault.client> {
  const client = vault({ endpoint: standIn.addr });
  const secretId = (await root.write('auth/approle/role/rotator/secret-id', {})).data.secret_id;
  await client.approleLogin({ role_id: roleId, secret_id: secretId });
  return client;
}

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: 'root-controls', now: () => clock });
  root = vault({ endpoint: standIn.addr, token: 'root-controls' });
  await root.write('auth/approle/role/rotator', {
    token_ttl: '1m',
    token_max_ttl: '10m',
    token_policies: ['reader'],
  });
  roleId = (await root.getApproleRoleId({ role_name: 'rotator' })).data.role_id;
  await root.write('secret/data/deploy-keys/job-1/github/acme/models', { data: { 'ssh-privatekey': 'pk' } });
  await root.addPolicy({
    name: 'reader',
    rules: 'path "secret/data/deploy-keys/*" { capabilities = ["read"] }',
  });
});
afterAll(() => standIn.close());
beforeEach(() => {
  clock = Math.ceil(Date.now() / 1000) * 1000;
});
afterEach(() => {
  standIn.auth.refuseRenewals(undefined);
  standIn.auth.takeLoginDown(undefined);
});

describe('Vault stand-in: auth chaos controls', () => {
  it('revokes a token, or every token of a login path, behind its holder’s back', async () => {
    const first = await loggedIn();
    const second = await loggedIn();
    const response = await control('revoke', 'POST', { token: first.token });
    expect([response.status, await response.json()]).toEqual([200, { revoked: 1 }]);
    expect((await vaultFailure(first.tokenLookupSelf())).body).toEqual(INVALID_TOKEN);
    await second.tokenLookupSelf();

    expect(standIn.auth.revoke({ pathPrefix: 'auth/approle/' })).toBe(1);
    expect((await vaultFailure(second.tokenRenewSelf())).status).toBe(403);
    // The root token came from no login and stays.
    await root.tokenLookupSelf();
    expect((await control('revoke', 'POST', { token: 'hvs.unknown' })).status).toBe(404);
  });

  it('refuses renewals on demand while logins still work', async () => {
    const before = standIn.auth.granted();
    const client = await loggedIn();
    expect((await control('renewals', 'PUT', { refuse: true })).status).toBe(204);
    const refused = await vaultFailure(client.tokenRenewSelf());
    expect([refused.status, refused.body]).toEqual([400, { errors: ['lease is not renewable'] }]);
    standIn.auth.refuseRenewals({ status: 403, errors: ['permission denied'] });
    expect((await vaultFailure(client.tokenRenewSelf())).status).toBe(403);
    // Logging in again is the way out, and the token still reads.
    await (await loggedIn()).read('secret/data/deploy-keys/job-1/github/acme/models');
    await control('renewals', 'PUT', { refuse: false });
    expect((await client.tokenRenewSelf()).auth.lease_duration).toBe(60);
    // Two logins and the one renewal Vault granted; the refused renewals are not counted.
    expect(standIn.auth.granted()).toEqual({ logins: before.logins + 2, renewals: before.renewals + 1 });
  });

  it('takes every login down, answering 503 or dropping the connection, while tokens keep working', async () => {
    const client = await loggedIn();
    expect((await control('login', 'PUT', { down: true })).status).toBe(204);
    const unavailable = await vaultFailure(loggedIn());
    expect([unavailable.status, unavailable.body]).toEqual([
      503,
      { errors: ['local node not active but active cluster node not found'] },
    ]);
    expect((await client.read('secret/data/deploy-keys/job-1/github/acme/models')).data.data).toEqual({
      'ssh-privatekey': 'pk',
    });
    await control('login', 'PUT', { down: true, mode: 'drop' });
    const dropped = await loggedIn().then(
      () => expect.fail('expected the login to fail'),
      (error: { response?: unknown; message: string }) => error,
    );
    expect(dropped.response).toBeUndefined();
    expect(dropped.message).toMatch(/socket hang up|ECONNRESET|fetch failed|terminated/i);

    await control('login', 'PUT', { down: false });
    expect((await loggedIn()).token).toMatch(/^hvs\./);
  });
});

describe('Vault stand-in: Kubernetes auth token TTLs', () => {
  it('gives a pod the role’s token_ttl and stops renewals at token_max_ttl', async () => {
    const pair = await generateKeyPair('RS256');
    await root.write('auth/kubernetes/config', {
      kubernetes_host: 'https://kubernetes.default.svc',
      pem_keys: [await exportSPKI(pair.publicKey)],
    });
    await root.write('auth/kubernetes/role/trainer', {
      bound_service_account_names: ['trainer'],
      bound_service_account_namespaces: ['training'],
      audience: 'vault',
      token_ttl: '5s',
      token_max_ttl: '12s',
    });
    const jwt = await new SignJWT({
      aud: ['vault'],
      'kubernetes.io': { namespace: 'training', serviceaccount: { name: 'trainer', uid: 'uid-1' } },
      sub: 'system:serviceaccount:training:trainer',
    })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(pair.privateKey);
    const pod = vault({ endpoint: standIn.addr });
    expect(
      (await pod.kubernetesLogin({ role: 'trainer', jwt, mount_point: 'kubernetes' })).auth.lease_duration,
    ).toBe(5);
    clock += 4_000;
    expect((await pod.tokenRenewSelf()).auth.lease_duration).toBe(5);
    clock += 4_000;
    const capped = await pod.tokenRenewSelf({ increment: 30 });
    expect(capped.auth.lease_duration).toBe(4);
    expect(capped.warnings).toEqual([
      'TTL of "30s" exceeded the effective max_ttl of "4s"; TTL value is capped accordingly',
    ]);
    clock += 4_000;
    expect((await vaultFailure(pod.tokenLookupSelf())).body).toEqual(INVALID_TOKEN);
  });
});
