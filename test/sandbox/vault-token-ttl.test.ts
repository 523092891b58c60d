import vault from 'node-vault';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { goTime } from '../../sandbox/vault/http.ts';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { INVALID_TOKEN, vaultFailure } from '../support/vault-calls.ts';

let standIn: VaultStandIn;
let root: vault.client;
let clock = Date.now();

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: 'root-ttl', now: () => clock });
  root = vault({ endpoint: standIn.addr, token: 'root-ttl' });
  await root.addPolicy({ name: 'creator', rules: 'path "auth/token/create" { capabilities = ["update"] }' });
});
afterAll(() => standIn.close());
// Whole seconds keep Vault's truncation to the second out of the arithmetic.
beforeEach(() => {
  clock = Math.ceil(Date.now() / 1000) * 1000;
});

/**
 * A token created by root with these fields, and a node-vault client holding it. The generic write:
 * node-vault's tokenCreate drops `period`, and its token-returning commands switch the client's token.
 */
async function token(fields: Record<string, unknown>) {
  const { auth, warnings } = await root.write('auth/token/create', fields);
  return { auth, warnings, client: vault({ endpoint: standIn.addr, token: auth.client_token }) };
}

describe('Vault stand-in: token TTLs', () => {
  it('issues a token for its ttl and shows ttl, expire_time, creation_ttl and explicit_max_ttl', async () => {
    const { auth, client } = await token({ ttl: '5s', explicit_max_ttl: '30s', policies: ['default'] });
    expect(auth).toMatchObject({ lease_duration: 5, renewable: true });
    clock += 2_000;
    const { data } = await client.tokenLookupSelf();
    expect(data).toMatchObject({
      ttl: 3,
      creation_ttl: 5,
      explicit_max_ttl: 30,
      expire_time: goTime(new Date(clock + 3_000)),
      renewable: true,
    });
    expect(data).not.toHaveProperty('period');
  });

  it('caps a ttl beyond explicit_max_ttl, with Vault’s warning', async () => {
    const { auth, warnings } = await token({ ttl: '1h', explicit_max_ttl: '90s' });
    expect(auth.lease_duration).toBe(90);
    expect(warnings).toEqual([
      'TTL of "1h" exceeded the effective max_ttl of "1m30s"; TTL value is capped accordingly',
    ]);
    expect((await token({ explicit_max_ttl: '2m' })).auth.lease_duration).toBe(120);
  });

  it('refuses negative durations, and periodic tokens to a caller without sudo', async () => {
    const negative = await vaultFailure(root.write('auth/token/create', { ttl: '-5' }));
    expect([negative.status, negative.body]).toEqual([400, { errors: ['ttl must be positive'] }]);
    const { client } = await token({ policies: ['creator'] });
    const periodic = await vaultFailure(
      client.write('auth/token/create', { period: '10s', policies: ['creator'] }),
    );
    expect([periodic.status, periodic.body]).toEqual([
      400,
      { errors: ['root or sudo privileges required to create periodic token'] },
    ]);
  });
});

describe('Vault stand-in: renewal', () => {
  it('renews for the increment asked, then for what is left of the max TTL, with a warning', async () => {
    const { client } = await token({ ttl: '5s', explicit_max_ttl: '30s' });
    clock += 4_000;
    const first = await client.tokenRenewSelf({ increment: 10 });
    expect(first.auth.lease_duration).toBe(10);
    expect(first.warnings).toBeNull();
    clock += 9_000;
    // No increment: the last TTL granted again.
    expect((await client.tokenRenewSelf()).auth.lease_duration).toBe(10);
    const renewed = await client.tokenLookupSelf();
    expect(renewed.data).toMatchObject({ ttl: 10, last_renewal_time: clock / 1000, creation_ttl: 5 });

    clock += 9_000;
    const capped = await client.tokenRenewSelf({ increment: '1m' });
    expect(capped.auth.lease_duration).toBe(8);
    expect(capped.warnings).toEqual([
      'TTL of "1m" exceeded the effective max_ttl of "8s"; TTL value is capped accordingly',
    ]);
    clock += 8_000;
    const expired = await vaultFailure(client.tokenLookupSelf());
    expect([expired.status, expired.body]).toEqual([403, INVALID_TOKEN]);
  });

  it('gives a periodic token its period on every renewal, past any TTL it started with', async () => {
    const { auth, client } = await token({ period: '10s' });
    expect(auth.lease_duration).toBe(10);
    for (let round = 0; round < 5; round++) {
      clock += 8_000;
      expect((await client.tokenRenewSelf({ increment: 3600 })).auth.lease_duration).toBe(10);
    }
    expect((await client.tokenLookupSelf()).data).toMatchObject({ period: 10, ttl: 10 });
  });

  it('renews another token through auth/token/renew and refuses what cannot be renewed', async () => {
    const { auth } = await token({ ttl: '20s' });
    const renewed = await root.write('auth/token/renew', { token: auth.client_token, increment: '40s' });
    expect(renewed.auth).toMatchObject({ client_token: auth.client_token, lease_duration: 40 });
    expect((await vaultFailure(root.write('auth/token/renew', { token: 'hvs.unknown' }))).body).toEqual({
      errors: ['token not found'],
    });
    const { client } = await token({ ttl: '20s', renewable: false });
    const fixed = await vaultFailure(client.tokenRenewSelf());
    expect([fixed.status, fixed.body]).toEqual([400, { errors: ['lease is not renewable'] }]);
    // The root token never expires, so it has no lease to renew.
    expect((await vaultFailure(root.tokenRenewSelf())).body).toEqual({ errors: ['lease is not renewable'] });
  });
});
