import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

let standIn: VaultStandIn;
let root: vault.client;
let signingKey: PrivateKey;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  signingKey = pair.privateKey;
  standIn = await startVaultStandIn({ rootToken: 'root-k8s' });
  root = vault({ endpoint: standIn.addr, token: 'root-k8s' });
  await root.write('auth/kubernetes/config', {
    kubernetes_host: 'https://kubernetes.default.svc',
    pem_keys: [await exportSPKI(pair.publicKey)],
  });
  await root.addPolicy({
    name: 'trainer-keys',
    rules: 'path "secret/data/deploy-keys/train-7/*" { capabilities = ["read"] }',
  });
  await root.write('auth/kubernetes/role/trainer', {
    bound_service_account_names: ['trainer'],
    bound_service_account_namespaces: ['ml-jobs'],
    token_policies: ['trainer-keys'],
    token_ttl: '20m',
    audience: 'vault',
  });
  await root.write('secret/data/deploy-keys/train-7/github/acme/models', { data: { private_key: 'pk' } });
  await root.write('secret/data/deploy-keys/train-8/github/acme/models', { data: { private_key: 'other' } });
});
afterAll(() => standIn.close());

async function failure(call: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  const error = (await call.then(
    () => expect.fail('expected the call to fail'),
    (reason: unknown) => reason,
  )) as { response: { statusCode: number; body: unknown } };
  return { status: error.response.statusCode, body: error.response.body };
}

/** A projected service account token, shaped like the kubelet's. */
function projectedToken(
  opts: {
    name?: string;
    namespace?: string;
    aud?: string[];
    expiresIn?: number;
    key?: PrivateKey;
    alg?: string;
  } = {},
) {
  const namespace = opts.namespace ?? 'ml-jobs';
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    aud: opts.aud ?? ['vault'],
    'kubernetes.io': {
      namespace,
      pod: { name: 'train-7-abcde', uid: '0a1b2c3d-pod' },
      serviceaccount: { name: opts.name ?? 'trainer', uid: '5e6f7a8b-sa' },
    },
  })
    .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: 'sa-key' })
    .setIssuer('https://kubernetes.default.svc.cluster.local')
    .setSubject(`system:serviceaccount:${namespace}:${opts.name ?? 'trainer'}`)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + (opts.expiresIn ?? 600))
    .sign(opts.key ?? signingKey);
}

// node-vault 0.12 fills `{{kubernetesPath}}` from the call's arguments, not from its config, so
// without `mount_point` it posts to `auth//login`.
const MOUNT = { mount_point: 'kubernetes' };
const login = (jwt: string, role = 'trainer') =>
  vault({ endpoint: standIn.addr }).kubernetesLogin({ role, jwt, ...MOUNT });

describe('kubernetes auth', () => {
  it('logs the bound service account in; its token reads its secret and nothing else', async () => {
    const client = vault({ endpoint: standIn.addr });
    const response = await client.kubernetesLogin({ role: 'trainer', jwt: await projectedToken(), ...MOUNT });
    expect(response.auth).toMatchObject({
      client_token: expect.stringMatching(/^hvs\./),
      policies: ['default', 'trainer-keys'],
      token_policies: ['default', 'trainer-keys'],
      metadata: {
        role: 'trainer',
        service_account_name: 'trainer',
        service_account_namespace: 'ml-jobs',
        service_account_uid: '5e6f7a8b-sa',
      },
      lease_duration: 1200,
      renewable: true,
      orphan: true,
    });

    // node-vault adopts the login token.
    const read = await client.read('secret/data/deploy-keys/train-7/github/acme/models');
    expect(read.data.data).toEqual({ private_key: 'pk' });
    expect((await failure(client.read('secret/data/deploy-keys/train-8/github/acme/models'))).status).toBe(
      403,
    );
    expect((await client.tokenLookupSelf()).data.display_name).toBe('kubernetes-ml-jobs-trainer');
  });

  it('denies another service account or another namespace', async () => {
    expect(await failure(login(await projectedToken({ name: 'intruder' })))).toEqual({
      status: 403,
      body: { errors: ['service account name not authorized'] },
    });
    expect(await failure(login(await projectedToken({ namespace: 'default' })))).toEqual({
      status: 403,
      body: { errors: ['namespace not authorized'] },
    });
  });

  it('denies an expired token, a wrong audience and a signature from another key', async () => {
    expect(await failure(login(await projectedToken({ expiresIn: -3600 })))).toEqual({
      status: 403,
      body: { errors: ['invalid expiration time (exp) claim: token is expired'] },
    });
    expect(await failure(login(await projectedToken({ aud: ['https://kubernetes.default.svc'] })))).toEqual({
      status: 403,
      body: { errors: ['invalid audience (aud) claim: audience claim does not match any expected audience'] },
    });
    const stranger = await generateKeyPair('RS256');
    expect(await failure(login(await projectedToken({ key: stranger.privateKey })))).toEqual({
      status: 403,
      body: { errors: ['permission denied'] },
    });
  });

  it('reads, lists and deletes roles; a deleted role denies login', async () => {
    await root.write('auth/kubernetes/role/short-lived', {
      bound_service_account_names: 'trainer',
      bound_service_account_namespaces: '*',
      policies: 'trainer-keys',
    });
    const role = await root.getKubernetesRole({ role_name: 'short-lived', ...MOUNT });
    expect(role.data).toMatchObject({
      bound_service_account_names: ['trainer'],
      bound_service_account_namespaces: ['*'],
      token_policies: ['trainer-keys'],
      policies: ['trainer-keys'],
      token_ttl: 0,
      token_type: 'default',
    });
    expect((await root.list('auth/kubernetes/role')).data.keys).toEqual(['short-lived', 'trainer']);

    const jwt = await projectedToken({ namespace: 'any-namespace' });
    await login(jwt, 'short-lived');
    await root.deleteKubernetesRole({ role_name: 'short-lived', ...MOUNT });
    expect(await failure(login(jwt, 'short-lived'))).toEqual({
      status: 400,
      body: { errors: ['invalid role name "short-lived"'] },
    });
    expect(await failure(root.getKubernetesRole({ role_name: 'short-lived', ...MOUNT }))).toEqual({
      status: 404,
      body: { errors: [] },
    });
  });

  it('takes role names with dots, as a Job role has them, and a glob policy reads only below its folder', async () => {
    await root.addPolicy({
      name: 'deploykey-job.ml-jobs.train.v2',
      rules: 'path "secret/data/deploy-keys/kubernetes/ml-jobs/train.v2/*" { capabilities = ["read"] }',
    });
    await root.write('auth/kubernetes/role/deploykey-job.ml-jobs.train.v2', {
      bound_service_account_names: ['trainer'],
      bound_service_account_namespaces: ['ml-jobs'],
      token_policies: ['deploykey-job.ml-jobs.train.v2'],
      audience: 'vault',
    });
    const folder = 'secret/data/deploy-keys/kubernetes/ml-jobs';
    await root.write(`${folder}/train.v2/github/acme/models`, { data: { k: 'models' } });
    await root.write(`${folder}/train.v2/gitlab/acme/group/datasets`, { data: { k: 'datasets' } });
    await root.write(`${folder}/train.v2-b/github/acme/models`, { data: { k: 'sibling' } });

    const client = vault({ endpoint: standIn.addr });
    await client.kubernetesLogin({
      role: 'deploykey-job.ml-jobs.train.v2',
      jwt: await projectedToken(),
      ...MOUNT,
    });
    expect((await client.read(`${folder}/train.v2/github/acme/models`)).data.data).toEqual({ k: 'models' });
    expect((await client.read(`${folder}/train.v2/gitlab/acme/group/datasets`)).data.data).toEqual({
      k: 'datasets',
    });
    // The glob's folder ends with a slash: a Job whose name merely starts the same is not covered.
    expect((await failure(client.read(`${folder}/train.v2-b/github/acme/models`))).status).toBe(403);

    // Vault's role names are GenericNameRegex: no `@`, and a word character at either end.
    for (const name of ['a@b', 'trailing.', '-leading']) {
      expect(
        await failure(
          root.write(`auth/kubernetes/role/${name}`, {
            bound_service_account_names: ['trainer'],
            bound_service_account_namespaces: ['ml-jobs'],
          }),
        ),
      ).toEqual({ status: 404, body: { errors: ['1 error occurred:\n\t* unsupported path\n\n'] } });
    }
  });

  it('checks role input as Vault does', async () => {
    const noNames = await failure(
      root.write('auth/kubernetes/role/bad', { bound_service_account_namespaces: ['x'] }),
    );
    expect(noNames).toEqual({
      status: 400,
      body: { errors: ['"bound_service_account_names" can not be empty'] },
    });
    expect((await failure(login(''))).body).toEqual({ errors: ['missing jwt'] });
  });

  it('accepts legacy secret-based token claims and ES256 keys given at start-up', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const other = await startVaultStandIn({
      rootToken: 'r',
      kubernetes: { publicKeysPem: [await exportSPKI(pair.publicKey)] },
    });
    try {
      const admin = vault({ endpoint: other.addr, token: 'r' });
      await admin.write('auth/kubernetes/role/legacy', {
        bound_service_account_names: ['builder'],
        bound_service_account_namespaces: ['ci'],
        token_policies: ['default'],
      });
      const jwt = await new SignJWT({
        'kubernetes.io/serviceaccount/namespace': 'ci',
        'kubernetes.io/serviceaccount/secret.name': 'builder-token-x7',
        'kubernetes.io/serviceaccount/service-account.name': 'builder',
        'kubernetes.io/serviceaccount/service-account.uid': 'uid-builder',
      })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('kubernetes/serviceaccount')
        .setSubject('system:serviceaccount:ci:builder')
        .sign(pair.privateKey);
      const response = await vault({ endpoint: other.addr }).kubernetesLogin({
        role: 'legacy',
        jwt,
        ...MOUNT,
      });
      expect(response.auth.metadata).toMatchObject({
        service_account_name: 'builder',
        service_account_namespace: 'ci',
        service_account_secret_name: 'builder-token-x7',
      });
    } finally {
      await other.close();
    }
  });

  it('refuses Ed25519 pem_keys, which Vault’s Kubernetes auth cannot use', async () => {
    const ed = await generateKeyPair('EdDSA', { extractable: true });
    const config = root.write('auth/kubernetes/config', {
      kubernetes_host: 'https://kubernetes.default.svc',
      pem_keys: [await exportSPKI(ed.publicKey)],
    });
    expect(await failure(config)).toEqual({
      status: 400,
      body: { errors: ['data does not contain any valid RSA or ECDSA public keys'] },
    });
  });
});
