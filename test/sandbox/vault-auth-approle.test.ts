import vault from 'node-vault';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { INVALID_TOKEN, vaultFailure } from '../support/vault-calls.ts';

let standIn: VaultStandIn;
let root: vault.client;
let clock = Date.now();
let roleId: string;

const client = () => vault({ endpoint: standIn.addr });
const invalid = { errors: ['invalid role or secret ID'] };

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: 'root-approle', now: () => clock });
  root = vault({ endpoint: standIn.addr, token: 'root-approle' });
  await root.addPolicy({
    name: 'deploy-keys',
    rules: 'path "secret/data/deploy-keys/*" { capabilities = ["read"] }',
  });
  // node-vault's schema for a role knows the older `policies` name, and seconds as integers.
  await root.addApproleRole({
    role_name: 'rotator',
    policies: 'deploy-keys',
    token_ttl: 5,
    token_max_ttl: 30,
    secret_id_ttl: 600,
  });
  roleId = (await root.getApproleRoleId({ role_name: 'rotator' })).data.role_id;
});
afterAll(() => standIn.close());
beforeEach(() => {
  clock = Math.ceil(Date.now() / 1000) * 1000;
});

/** node-vault's getApproleRoleSecret sends `metadata` and `cidr_list` only, so `ttl` and `num_uses` go through write. */
async function secretId(fields: Record<string, unknown> = {}): Promise<string> {
  return (await root.write('auth/approle/role/rotator/secret-id', fields)).data.secret_id;
}

describe('Vault stand-in: AppRole roles and secret IDs', () => {
  it('stores a role with its token fields and reads it back as Vault does', async () => {
    const { data } = await root.getApproleRole({ role_name: 'rotator' });
    expect(data).toEqual({
      bind_secret_id: true,
      local_secret_ids: false,
      secret_id_bound_cidrs: [],
      secret_id_num_uses: 0,
      secret_id_ttl: 600,
      token_bound_cidrs: [],
      token_explicit_max_ttl: 0,
      token_max_ttl: 30,
      token_no_default_policy: false,
      token_num_uses: 0,
      token_period: 0,
      token_policies: ['deploy-keys'],
      token_ttl: 5,
      token_type: 'default',
      // Set under its older name, so read back under it too.
      policies: ['deploy-keys'],
    });
    expect(roleId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await root.list('auth/approle/role')).data.keys).toEqual(['rotator']);
  });

  it('issues secret IDs with Vault’s fields and refuses more than the role allows', async () => {
    const issued = await root.getApproleRoleSecret({
      role_name: 'rotator',
      metadata: '{"service":"rotator"}',
    });
    expect(issued.data).toEqual({
      secret_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      secret_id_accessor: expect.stringMatching(/^[0-9a-f-]{36}$/),
      secret_id_ttl: 600,
      secret_id_num_uses: 0,
    });
    const looked = await root.approleSecretLookup({ role_name: 'rotator', secret_id: issued.data.secret_id });
    expect(looked.data).toMatchObject({ metadata: { service: 'rotator' }, secret_id_ttl: 600 });
    const longer = await vaultFailure(root.write('auth/approle/role/rotator/secret-id', { ttl: '1h' }));
    expect(longer.body).toEqual({ errors: ["ttl cannot be longer than the role's secret_id_ttl"] });
  });

  it('refuses a role whose token_ttl exceeds token_max_ttl, or that binds nothing', async () => {
    const over = await vaultFailure(
      root.write('auth/approle/role/bad', { token_ttl: '2m', token_max_ttl: '1m' }),
    );
    expect([over.status, over.body]).toEqual([
      400,
      { errors: ["'token_ttl' cannot be greater than 'token_max_ttl'"] },
    ]);
    const open = await vaultFailure(root.write('auth/approle/role/bad', { bind_secret_id: false }));
    expect(open.body).toEqual({ errors: ['at least one constraint should be enabled on the role'] });
  });
});

describe('Vault stand-in: AppRole login', () => {
  it('logs in with role_id and secret_id and hands node-vault a token with the role’s TTL', async () => {
    const app = client();
    const login = await app.approleLogin({ role_id: roleId, secret_id: await secretId() });
    expect(login.auth).toMatchObject({
      lease_duration: 5,
      renewable: true,
      policies: ['default', 'deploy-keys'],
      metadata: { role_name: 'rotator' },
      token_type: 'service',
    });
    // node-vault switches to the token it logged in with.
    const { data } = await app.tokenLookupSelf();
    expect(data).toMatchObject({
      display_name: 'approle',
      path: 'auth/approle/login',
      ttl: 5,
      creation_ttl: 5,
    });
  });

  it('renews up to token_max_ttl, warns when capped, and the token dies at the max TTL', async () => {
    const app = client();
    await app.approleLogin({ role_id: roleId, secret_id: await secretId() });
    // Renewed every 4 s for the role's 5 s, as a client renewing before its TTL runs out does.
    for (let elapsed = 4; elapsed <= 24; elapsed += 4) {
      clock += 4_000;
      expect((await app.tokenRenewSelf()).auth.lease_duration).toBe(5);
    }
    clock += 4_000;
    const capped = await app.tokenRenewSelf({ increment: 60 });
    expect(capped.auth.lease_duration).toBe(2);
    expect(capped.warnings).toEqual([
      'TTL of "1m" exceeded the effective max_ttl of "2s"; TTL value is capped accordingly',
    ]);
    clock += 2_000;
    const expired = await vaultFailure(app.tokenLookupSelf());
    expect([expired.status, expired.body]).toEqual([403, INVALID_TOKEN]);
    // Logging in again is the way back.
    expect(
      (await client().approleLogin({ role_id: roleId, secret_id: await secretId() })).auth.lease_duration,
    ).toBe(5);
  });

  it('refuses a bad secret ID, an unknown role ID and missing credentials with 400', async () => {
    expect(
      (await vaultFailure(client().approleLogin({ role_id: roleId, secret_id: 'not-issued' }))).body,
    ).toEqual(invalid);
    const unknown = await vaultFailure(
      client().approleLogin({ role_id: 'no-such-role', secret_id: await secretId() }),
    );
    expect([unknown.status, unknown.body]).toEqual([400, invalid]);
    expect((await vaultFailure(client().approleLogin({ role_id: roleId }))).body).toEqual({
      errors: ['missing secret_id'],
    });
    expect((await vaultFailure(client().write('auth/approle/login', {}))).body).toEqual({
      errors: ['missing role_id'],
    });
  });

  it('spends secret IDs by their use limit and their TTL', async () => {
    const once = await secretId({ num_uses: 1 });
    await client().approleLogin({ role_id: roleId, secret_id: once });
    expect((await vaultFailure(client().approleLogin({ role_id: roleId, secret_id: once }))).body).toEqual(
      invalid,
    );

    const short = await secretId({ ttl: '60s' });
    await client().approleLogin({ role_id: roleId, secret_id: short });
    clock += 60_000;
    expect((await vaultFailure(client().approleLogin({ role_id: roleId, secret_id: short }))).body).toEqual(
      invalid,
    );
  });

  it('renews on the role’s current TTLs and fails renewal once the role is gone', async () => {
    await root.addApproleRole({ role_name: 'short-lived', token_ttl: 5, token_max_ttl: 60 });
    const id = (await root.getApproleRoleId({ role_name: 'short-lived' })).data.role_id;
    const secret = (await root.getApproleRoleSecret({ role_name: 'short-lived' })).data.secret_id;
    const app = client();
    await app.approleLogin({ role_id: id, secret_id: secret });
    await root.write('auth/approle/role/short-lived', { token_ttl: '20s' });
    expect((await app.tokenRenewSelf()).auth.lease_duration).toBe(20);
    await root.deleteApproleRole({ role_name: 'short-lived' });
    const gone = await vaultFailure(app.tokenRenewSelf());
    expect([gone.status, gone.body]).toEqual([
      500,
      { errors: ['1 error occurred:\n\t* role "short-lived" does not exist during renewal\n\n'] },
    ]);
  });
});
