import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';

let standIn: VaultStandIn;
let root: vault.client;
let clock = Date.now();

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: 'root-wrap', now: () => clock });
  root = vault({ endpoint: standIn.addr, token: 'root-wrap' });
  await root.write('secret/data/deploy-keys/job-7/github/acme/models', {
    data: { private_key: 'wrapped-key' },
  });
});
afterAll(() => standIn.close());

async function failure(call: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  const error = (await call.then(
    () => expect.fail('expected the call to fail'),
    (reason: unknown) => reason,
  )) as { response: { statusCode: number; body: unknown } };
  return { status: error.response.statusCode, body: error.response.body };
}

const SECRET = 'secret/data/deploy-keys/job-7/github/acme/models';
const INVALID_WRAPPING_TOKEN = { errors: ['wrapping token is not valid or does not exist'] };
const wrapped = (ttl: string) => root.read(SECRET, { headers: { 'X-Vault-Wrap-TTL': ttl } });

describe('response wrapping', () => {
  it('answers a wrapped read with wrap_info only, and unwraps the original response exactly once', async () => {
    const response = await wrapped('60s');
    expect(response).toMatchObject({ data: null, auth: null });
    expect(response.wrap_info).toEqual({
      token: expect.stringMatching(/^hvs\./),
      accessor: expect.any(String),
      ttl: 60,
      creation_time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      creation_path: SECRET,
      wrapped_accessor: '',
    });

    const unwrapped = await root.unwrap({ token: response.wrap_info.token });
    expect(unwrapped.data.data).toEqual({ private_key: 'wrapped-key' });
    expect(unwrapped.data.metadata.version).toBe(1);

    expect(await failure(root.unwrap({ token: response.wrap_info.token }))).toEqual({
      status: 400,
      body: INVALID_WRAPPING_TOKEN,
    });
  });

  it('unwraps with the wrapping token itself as X-Vault-Token, once', async () => {
    const { wrap_info } = await wrapped('5m');
    expect(wrap_info.ttl).toBe(300);
    const holder = vault({ endpoint: standIn.addr, token: wrap_info.token });
    expect((await holder.unwrap()).data.data).toEqual({ private_key: 'wrapped-key' });
    expect(await failure(holder.unwrap())).toEqual({ status: 400, body: INVALID_WRAPPING_TOKEN });
  });

  it('lets a wrapping token do nothing but unwrap', async () => {
    const { wrap_info } = await wrapped('90');
    expect(wrap_info.ttl).toBe(90);
    const holder = vault({ endpoint: standIn.addr, token: wrap_info.token });
    expect((await failure(holder.read(SECRET))).status).toBe(403);
    // The refused request did not spend the single use.
    expect((await holder.unwrap()).data.data).toEqual({ private_key: 'wrapped-key' });
  });

  it('refuses an expired wrapping token', async () => {
    const { wrap_info } = await wrapped('30s');
    const lookup = await root.write('sys/wrapping/lookup', { token: wrap_info.token });
    expect(lookup.data).toEqual({
      creation_path: SECRET,
      creation_time: wrap_info.creation_time,
      creation_ttl: 30,
    });
    clock += 31_000;
    expect(await failure(root.unwrap({ token: wrap_info.token }))).toEqual({
      status: 400,
      body: INVALID_WRAPPING_TOKEN,
    });
    expect((await failure(root.write('sys/wrapping/lookup', { token: wrap_info.token }))).status).toBe(400);
  });

  it('wraps a token creation; the unwrapped token works', async () => {
    const issuer = vault({ endpoint: standIn.addr, token: 'root-wrap' });
    const response = await issuer.tokenCreate({
      policies: ['default'],
      requestOptions: { headers: { 'X-Vault-Wrap-TTL': '2m' } },
    });
    expect(response.auth).toBeNull();
    expect(response.wrap_info.wrapped_accessor).toEqual(expect.any(String));
    expect(response.wrap_info.wrapped_accessor).not.toBe('');

    const unwrapped = await root.unwrap({ token: response.wrap_info.token });
    expect(unwrapped.auth.accessor).toBe(response.wrap_info.wrapped_accessor);
    const holder = vault({ endpoint: standIn.addr, token: unwrapped.auth.client_token });
    expect((await holder.tokenLookupSelf()).data.policies).toEqual(['default']);
  });

  it('wraps arbitrary data through sys/wrapping/wrap, which requires a wrap TTL', async () => {
    const response = await root.write(
      'sys/wrapping/wrap',
      { note: 'hello' },
      { headers: { 'X-Vault-Wrap-TTL': '1m' } },
    );
    expect((await root.unwrap({ token: response.wrap_info.token })).data).toEqual({ note: 'hello' });
    const unwrappedRequest = await failure(root.write('sys/wrapping/wrap', { note: 'x' }));
    expect(unwrappedRequest).toEqual({
      status: 400,
      body: { errors: ['endpoint requires response wrapping to be used'] },
    });
  });
});
