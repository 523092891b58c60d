// The Vault stand-in held to Vault's documented HTTP API (test/fixtures/vault-api.schema.json):
// the system paths clients call first, the KV v2 answers and the error envelope, through plain
// fetch as Vault's docs write the requests and through node-vault.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';

const TOKEN = 'root-conformance';
const schemas = JSON.parse(
  readFileSync(new URL('../fixtures/vault-api.schema.json', import.meta.url), 'utf8'),
);
const ajv = new Ajv({ allErrors: true });
addFormats.default(ajv);
ajv.addKeyword('source');
ajv.addSchema(schemas, 'vault');

type Shape =
  | 'Health'
  | 'SealStatus'
  | 'InitStatus'
  | 'Leader'
  | 'Mounts'
  | 'KvWrite'
  | 'KvRead'
  | 'KvMetadata'
  | 'Error';
function expectShape(shape: Shape, body: unknown) {
  const validate = ajv.getSchema(`vault#/definitions/${shape}`)!;
  expect(validate(body), `${shape}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

let standIn: VaultStandIn;

/** A request as Vault's docs write it with curl. */
async function call(method: string, path: string, options: { token?: string; body?: unknown } = {}) {
  const response = await fetch(`${standIn.addr}/v1/${path}`, {
    method,
    headers: options.token ? { 'X-Vault-Token': options.token } : {},
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: text === '' ? undefined : JSON.parse(text),
  };
}

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: TOKEN });
});
afterAll(() => standIn.close());

describe('Vault stand-in: KV v2 times', () => {
  it('records created_time with nanoseconds in Go’s RFC3339Nano, as Vault writes it', async () => {
    const stamps: string[] = [];
    for (let version = 1; version <= 5; version += 1) {
      const written = await call('POST', 'secret/data/times', { token: TOKEN, body: { data: { version } } });
      expectShape('KvWrite', written.body);
      stamps.push(written.body.data.created_time);
    }
    // Go trims trailing zeros of the fraction, so one stamp may have fewer than nine digits;
    // five stamps that all stop at milliseconds would be a one-in-10^30 accident.
    const digits = stamps.map((stamp) => /\.(\d+)Z$/.exec(stamp)?.[1]?.length ?? 0);
    expect(Math.max(...digits)).toBeGreaterThan(3);
    for (const count of digits) expect(count).toBeLessThanOrEqual(9);
    const nanos = stamps.map((stamp) => {
      const [whole, fraction = ''] = stamp.slice(0, -1).split('.');
      return BigInt(Date.parse(`${whole}Z`)) * 1_000_000n + BigInt(fraction.padEnd(9, '0'));
    });
    for (let index = 1; index < nanos.length; index += 1)
      expect(nanos[index]! > nanos[index - 1]!).toBe(true);

    const read = await call('GET', 'secret/data/times', { token: TOKEN });
    expectShape('KvRead', read.body);
    expect(read.body.data.metadata.created_time).toBe(stamps[4]);
    const metadata = await call('GET', 'secret/metadata/times', { token: TOKEN });
    expectShape('KvMetadata', metadata.body);
    expect(metadata.body.data.created_time).toBe(stamps[0]);
  });
});

describe('Vault stand-in: the system paths clients call first', () => {
  it('answers sys/seal-status, sys/init and sys/leader without a token', async () => {
    const seal = await call('GET', 'sys/seal-status');
    expect(seal.status).toBe(200);
    expectShape('SealStatus', seal.body);
    expect(seal.body).toMatchObject({ initialized: true, sealed: false, t: 1, n: 1, progress: 0 });
    const init = await call('GET', 'sys/init');
    expect(init.body).toEqual({ initialized: true });
    expectShape('InitStatus', init.body);
    expectShape('Leader', (await call('GET', 'sys/leader')).body);
    const again = await call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
    expect(again).toMatchObject({ status: 400, body: { errors: ['Vault is already initialized'] } });
  });

  it('lists the mount table at sys/mounts for a token, in the envelope and at the top level', async () => {
    const mounts = await call('GET', 'sys/mounts', { token: TOKEN });
    expect(mounts.status).toBe(200);
    expectShape('Mounts', mounts.body);
    expect(Object.keys(mounts.body.data).sort()).toEqual(['cubbyhole/', 'identity/', 'secret/', 'sys/']);
    expect(mounts.body.data['secret/']).toMatchObject({ type: 'kv', options: { version: '2' } });
    expect(mounts.body['secret/']).toEqual(mounts.body.data['secret/']);
    const one = await call('GET', 'sys/mounts/secret', { token: TOKEN });
    expect(one.body.data).toEqual(mounts.body.data['secret/']);

    const anonymous = await call('GET', 'sys/mounts');
    expect(anonymous.status).toBe(403);
    expectShape('Error', anonymous.body);
  });

  it('answers sys/health’s status-code parameters and HEAD as Vault’s own handler does', async () => {
    const plain = await call('GET', 'sys/health');
    expect(plain.status).toBe(200);
    expectShape('Health', plain.body);
    expect((await call('GET', 'sys/health?standbyok=true&perfstandbyok=true')).status).toBe(200);
    expect((await call('GET', 'sys/health?activecode=299&sealedcode=299&uninitcode=299')).status).toBe(299);
    const head = await call('HEAD', 'sys/health?activecode=204');
    expect({ status: head.status, text: head.text }).toEqual({ status: 204, text: '' });
    const headOk = await call('HEAD', 'sys/health');
    expect({ status: headOk.status, text: headOk.text }).toEqual({ status: 200, text: '' });
    for (const query of ['activecode=ok', 'sealedcode=', 'standbyok=perhaps']) {
      expect(await call('GET', `sys/health?${query}`)).toMatchObject({ status: 400, body: { errors: [] } });
    }
    expect(await call('POST', 'sys/health')).toMatchObject({ status: 405, body: { errors: [] } });
  });

  it('labels JSON answers exactly application/json and no-store, errors in Vault’s envelope', async () => {
    const answers = [
      await call('GET', 'sys/health'),
      await call('GET', 'sys/seal-status'),
      await call('GET', 'sys/mounts', { token: TOKEN }),
      await call('GET', 'secret/data/absent', { token: TOKEN }),
      await call('GET', 'secret/data/anything', { token: 'hvs.unknown' }),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 404, 403]);
    for (const answer of answers) {
      expect(answer.headers.get('content-type')).toBe('application/json');
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    for (const failed of answers.slice(3)) expectShape('Error', failed.body);
  });
});

describe('Vault stand-in through node-vault', () => {
  it('answers its status calls and a KV v2 write, read and delete cycle', async () => {
    const client = vault({ endpoint: standIn.addr, token: TOKEN });
    expectShape('Health', await client.health());
    expectShape('SealStatus', await client.status());
    expect(await client.initialized()).toEqual({ initialized: true });
    expectShape('Leader', await client.leader());
    expectShape('Mounts', await client.mounts());
    expectShape('KvWrite', await client.write('secret/data/node-vault', { data: { a: '1' } }));
    const read = await client.read('secret/data/node-vault');
    expectShape('KvRead', read);
    expect(read.data.data).toEqual({ a: '1' });
    await client.delete('secret/metadata/node-vault');
    await expect(client.read('secret/data/node-vault')).rejects.toMatchObject({
      response: { statusCode: 404 },
    });
  });
});
