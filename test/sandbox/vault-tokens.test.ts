import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';

let standIn: VaultStandIn;
let root: vault.client;
let clock = Date.now();

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: 'root-tokens', now: () => clock });
  root = vault({ endpoint: standIn.addr, token: 'root-tokens' });
  await root.write('secret/data/deploy-keys/job-1/github/acme/models', {
    data: { private_key: 'models-key' },
  });
  await root.write('secret/data/deploy-keys/job-2/github/acme/models', {
    data: { private_key: 'other-job' },
  });
  await root.write('secret/data/deploy-keys/job-1/gitlab/acme/models', {
    data: { private_key: 'gitlab-key' },
  });
});
afterAll(() => standIn.close());

async function failure(call: Promise<unknown>): Promise<{ status: number; body: unknown; message: string }> {
  const error = (await call.then(
    () => expect.fail('expected the call to fail'),
    (reason: unknown) => reason,
  )) as { message: string; response: { statusCode: number; body: unknown } };
  return { status: error.response.statusCode, body: error.response.body, message: error.message };
}

/** A token issued by root; a fresh client, since node-vault's tokenCreate switches its own token. */
async function tokenWith(
  args: Record<string, unknown>,
): Promise<{ client: vault.client; auth: Record<string, unknown> }> {
  const issuer = vault({ endpoint: standIn.addr, token: 'root-tokens' });
  const { auth } = await issuer.tokenCreate(args);
  return { client: vault({ endpoint: standIn.addr, token: auth.client_token }), auth };
}

const POLICY_DENIED = { errors: ['1 error occurred:\n\t* permission denied\n\n'] };
const INVALID_TOKEN = { errors: ['2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n'] };

describe('tokens', () => {
  it('describes the root token through lookup-self', async () => {
    const self = await root.tokenLookupSelf();
    expect(self.data).toMatchObject({
      id: 'root-tokens',
      policies: ['root'],
      path: 'auth/token/root',
      display_name: 'root',
      ttl: 0,
      expire_time: null,
      orphan: true,
    });
  });

  it('creates a token with policies, TTL and the default policy, and shows it to itself', async () => {
    const { client, auth } = await tokenWith({ policies: ['reader'], ttl: '1h', meta: { job: 'job-1' } });
    expect(auth).toMatchObject({
      client_token: expect.stringMatching(/^hvs\./),
      accessor: expect.any(String),
      policies: ['default', 'reader'],
      token_policies: ['default', 'reader'],
      metadata: { job: 'job-1' },
      lease_duration: 3600,
      renewable: true,
      token_type: 'service',
      orphan: false,
    });
    const self = await client.tokenLookupSelf();
    expect(self.data).toMatchObject({
      policies: ['default', 'reader'],
      ttl: 3600,
      creation_ttl: 3600,
      meta: { job: 'job-1' },
    });
  });

  it('refuses a missing token, an unknown token and an expired token with 403', async () => {
    const anonymous = vault({ endpoint: standIn.addr });
    expect(await failure(anonymous.tokenLookupSelf())).toMatchObject({
      status: 403,
      body: { errors: ['permission denied'] },
    });
    const unknown = vault({ endpoint: standIn.addr, token: 'hvs.not-a-token' });
    expect(await failure(unknown.tokenLookupSelf())).toMatchObject({ status: 403, body: INVALID_TOKEN });

    const { client } = await tokenWith({ ttl: '30s', no_default_policy: false });
    await client.tokenLookupSelf();
    clock += 31_000;
    expect(await failure(client.tokenLookupSelf())).toMatchObject({ status: 403, body: INVALID_TOKEN });
  });

  it('accepts the token as Authorization: Bearer', async () => {
    const { auth } = await tokenWith({ policies: ['default'] });
    const response = await fetch(`${standIn.addr}/v1/auth/token/lookup-self`, {
      headers: { authorization: `Bearer ${auth.client_token}` },
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { data: { accessor: string } }).data.accessor).toBe(auth.accessor);
  });

  it('spends a token after num_uses requests', async () => {
    const { client } = await tokenWith({ num_uses: 2 });
    await client.tokenLookupSelf();
    await client.tokenLookupSelf();
    expect(await failure(client.tokenLookupSelf())).toMatchObject({ status: 403, body: INVALID_TOKEN });
  });

  it('keeps child policies within the parent’s and revokes children with their parent', async () => {
    await root.addPolicy({ name: 'narrow', rules: 'path "auth/token/create" { capabilities = ["update"] }' });
    const { client: parent, auth } = await tokenWith({ policies: ['narrow'] });
    const wider = await failure(parent.tokenCreate({ policies: ['root'] }));
    expect(wider).toMatchObject({
      status: 400,
      body: { errors: ['child policies must be subset of parent'] },
    });

    const { auth: childAuth } = await parent.tokenCreate({ policies: ['narrow'] });
    const child = vault({ endpoint: standIn.addr, token: childAuth.client_token });
    await child.tokenLookupSelf();
    await root.tokenRevoke({ token: auth.client_token as string });
    expect((await failure(child.tokenLookupSelf())).status).toBe(403);
  });
});

describe('ACL policies', () => {
  it('stores, reads, lists and deletes policies on sys/policies/acl and sys/policy', async () => {
    const hcl = 'path "secret/data/a/*" {\n  capabilities = ["read"]\n}\n';
    await root.write('sys/policies/acl/Team-A', { policy: hcl });
    const read = await root.read('sys/policies/acl/team-a');
    expect(read.data).toEqual({ name: 'team-a', policy: hcl });
    expect(read).toMatchObject({ request_id: expect.any(String), lease_id: '', auth: null });

    const legacy = await root.getPolicy({ name: 'team-a' });
    expect(legacy).toMatchObject({ name: 'team-a', rules: hcl, data: { name: 'team-a', rules: hcl } });
    expect((await root.list('sys/policies/acl')).data.keys).toEqual(
      expect.arrayContaining(['default', 'team-a', 'root']),
    );
    expect((await root.policies()).policies).toContain('team-a');

    await root.removePolicy({ name: 'team-a' });
    expect(await failure(root.read('sys/policies/acl/team-a'))).toMatchObject({
      status: 404,
      body: { errors: [] },
    });
    expect((await failure(root.delete('sys/policies/acl/default'))).status).toBe(400);
  });

  it('rejects a policy that does not parse', async () => {
    const bad = await failure(
      root.write('sys/policies/acl/broken', { policy: 'path "x" { capabilities = ["fly"] }' }),
    );
    expect(bad.status).toBe(400);
    expect(bad.message).toBe('failed to parse policy: path "x": invalid capability "fly"');
  });

  it('lets a policy-limited token read exactly its path and nothing else', async () => {
    await root.addPolicy({
      name: 'job-1-github',
      rules: `
        # one job, one provider, any repository
        path "secret/data/deploy-keys/job-1/github/*" { capabilities = ["read"] }
        path "secret/metadata/deploy-keys/+/github" { capabilities = ["list"] }
      `,
    });
    const { client } = await tokenWith({ policies: ['job-1-github'] });

    const read = await client.read('secret/data/deploy-keys/job-1/github/acme/models');
    expect(read.data.data).toEqual({ private_key: 'models-key' });

    for (const other of ['deploy-keys/job-2/github/acme/models', 'deploy-keys/job-1/gitlab/acme/models']) {
      expect(await failure(client.read(`secret/data/${other}`))).toMatchObject({
        status: 403,
        body: POLICY_DENIED,
      });
    }
    const write = client.write('secret/data/deploy-keys/job-1/github/acme/models', {
      data: { private_key: 'x' },
    });
    expect(await failure(write)).toMatchObject({ status: 403, body: POLICY_DENIED });
    expect(
      await failure(client.delete('secret/metadata/deploy-keys/job-1/github/acme/models')),
    ).toMatchObject({
      status: 403,
    });
    expect((await client.list('secret/metadata/deploy-keys/job-1/github')).data.keys).toEqual(['acme/']);
    // Without an explicit grant, even an unmounted path is a 403 rather than a routing 404.
    expect((await failure(client.read('nomount/x'))).status).toBe(403);
  });

  it('applies Vault’s priority: later wildcards win, then fewer `+` segments; deny overrides', async () => {
    await root.addPolicy({
      name: 'priority',
      rules: `
        path "secret/data/deploy-keys/*" { capabilities = ["read"] }
        path "secret/data/deploy-keys/job-2/*" { capabilities = ["deny"] }
        path "secret/data/deploy-keys/+/gitlab/*" { capabilities = ["create", "update"] }
        path "secret/data/deploy-keys/job-1/+/acme/rotating" { capabilities = ["create", "read"] }
      `,
    });
    const { client } = await tokenWith({ policies: ['priority'] });
    await client.read('secret/data/deploy-keys/job-1/github/acme/models');
    expect((await failure(client.read('secret/data/deploy-keys/job-2/github/acme/models'))).status).toBe(403);
    // Same first-wildcard position, and the glob has fewer `+` segments: `deploy-keys/*` wins.
    await client.read('secret/data/deploy-keys/job-1/gitlab/acme/models');
    const write = client.write('secret/data/deploy-keys/job-1/gitlab/acme/models', {
      data: { private_key: 'x' },
    });
    expect(await failure(write)).toMatchObject({ status: 403, body: POLICY_DENIED });
    // A wildcard that starts later outranks the glob.
    await client.write('secret/data/deploy-keys/job-1/gitlab/acme/rotating', { data: { private_key: 'y' } });
  });

  it('tells create from update with the existence check', async () => {
    await root.addPolicy({
      name: 'create-only',
      rules: 'path "secret/data/once/*" { capabilities = ["create"] }',
    });
    const { client } = await tokenWith({ policies: ['create-only'] });
    await client.write('secret/data/once/a', { data: { v: 1 } });
    expect(await failure(client.write('secret/data/once/a', { data: { v: 2 } }))).toMatchObject({
      status: 403,
    });
  });
});
