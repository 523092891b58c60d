import net from 'node:net';
import vault from 'node-vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createListRewriter } from '../../sandbox/vault/list-method.ts';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';

let standIn: VaultStandIn;
let root: vault.client;

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: 'root-http' });
  root = vault({ endpoint: standIn.addr, token: 'root-http' });
  await root.write('secret/data/apps/a', { data: { v: 'a' } });
  await root.write('secret/data/apps/b', { data: { v: 'b' } });
});
afterEach(() => standIn.faults.clear());
afterAll(() => standIn.close());

async function failure(call: Promise<unknown>): Promise<{ status: number; body: unknown; message: string }> {
  const error = (await call.then(
    () => expect.fail('expected the call to fail'),
    (reason: unknown) => reason,
  )) as { message: string; response: { statusCode: number; body: unknown } };
  return { status: error.response.statusCode, body: error.response.body, message: error.message };
}

/** Writes raw bytes on one connection and collects `count` responses (status and body). */
function exchange(payload: string, count: number): Promise<{ status: number; body: string }[]> {
  return new Promise((resolve, reject) => {
    const url = new URL(standIn.addr);
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write(payload));
    let received = '';
    const responses: { status: number; body: string }[] = [];
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      for (;;) {
        const headEnd = received.indexOf('\r\n\r\n');
        if (headEnd === -1) break;
        const head = received.slice(0, headEnd);
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (received.length < headEnd + 4 + length) break;
        responses.push({
          status: Number(head.split(' ')[1]),
          body: received.slice(headEnd + 4, headEnd + 4 + length),
        });
        received = received.slice(headEnd + 4 + length);
      }
      if (responses.length === count) {
        socket.end();
        resolve(responses);
      }
    });
    socket.on('error', reject);
  });
}

describe('sys/health', () => {
  it('reports an initialized, unsealed, active node without a token', async () => {
    const health = await vault({ endpoint: standIn.addr }).health();
    expect(health).toMatchObject({
      initialized: true,
      sealed: false,
      standby: false,
      performance_standby: false,
      version: expect.stringMatching(/^\d+\.\d+\.\d+$/),
      cluster_name: expect.stringMatching(/^vault-cluster-/),
      server_time_utc: expect.any(Number),
    });
    const post = await fetch(`${standIn.addr}/v1/sys/health`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(await post.json()).toEqual({ errors: [] });
  });
});

describe('fault injection', () => {
  it('fails the next matching request with Vault’s error shape, then recovers', async () => {
    standIn.faults.add({ status: 503, pathPrefix: '/v1/secret/', count: 1 });
    expect(await failure(root.read('secret/data/apps/a'))).toMatchObject({
      status: 503,
      body: { errors: ['Vault is sealed'] },
      message: 'Vault is sealed',
    });
    expect((await root.read('secret/data/apps/a')).data.data).toEqual({ v: 'a' });
    expect(standIn.faults.stats()).toMatchObject({ injected: 1 });
  });

  it('matches LIST as the method the client sent', async () => {
    const admin = await fetch(`${standIn.addr}/_sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 500, method: 'LIST' }),
    });
    expect(admin.status).toBe(204);
    expect((await failure(root.list('secret/metadata/apps'))).status).toBe(500);
    expect((await root.read('secret/data/apps/b')).data.data).toEqual({ v: 'b' });
  });

  it('drops the connection without an answer', async () => {
    standIn.faults.add({ drop: true, pathPrefix: '/v1/sys/health', count: 1 });
    await expect(fetch(`${standIn.addr}/v1/sys/health`)).rejects.toThrow();
  });
});

describe('the LIST method on the wire', () => {
  it('serves LIST between requests with bodies on one keep-alive connection', async () => {
    const body = JSON.stringify({ data: { note: '\r\n\r\nLIST /v1/secret/metadata/ HTTP/1.1\r\n\r\n' } });
    const chunked = JSON.stringify({ data: { v: 'chunked' } });
    const auth = 'Host: vault\r\nX-Vault-Token: root-http\r\n';
    const responses = await exchange(
      `LIST /v1/secret/metadata/apps HTTP/1.1\r\n${auth}\r\n` +
        `POST /v1/secret/data/apps/c HTTP/1.1\r\n${auth}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` +
        `POST /v1/secret/data/apps/d HTTP/1.1\r\n${auth}Transfer-Encoding: chunked\r\n\r\n` +
        `${chunked.length.toString(16)}\r\n${chunked}\r\n0\r\n\r\n` +
        `LIST /v1/secret/metadata/apps/ HTTP/1.1\r\n${auth}Connection: close\r\n\r\n`,
      4,
    );
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200]);
    expect(JSON.parse(responses[0]!.body).data.keys).toEqual(['a', 'b']);
    expect(JSON.parse(responses[3]!.body).data.keys).toEqual(expect.arrayContaining(['a', 'b']));
    // Node runs pipelined requests concurrently, so the final listing is checked afterwards.
    expect((await root.list('secret/metadata/apps')).data.keys).toEqual(['a', 'b', 'c', 'd']);
    expect((await root.read('secret/data/apps/c')).data.data.note).toContain('LIST /v1/secret/metadata/');
  });

  it('rewrites a LIST request line split across reads', () => {
    const rewrite = createListRewriter();
    const out = Buffer.concat([
      rewrite(Buffer.from('LI')),
      rewrite(Buffer.from('ST /v1/secret/metadata/?x=1 HTTP/1.1\r\nHost: v\r\n')),
      rewrite(Buffer.from('\r\n')),
    ]).toString();
    expect(out).toBe(
      'GET /v1/secret/metadata/?x=1 HTTP/1.1\r\nx-vault-sandbox-method: LIST\r\nHost: v\r\n\r\n',
    );
  });
});

describe('request bodies', () => {
  it('answers malformed JSON with 400 and Vault’s message', async () => {
    const response = await fetch(`${standIn.addr}/v1/secret/data/apps/a`, {
      method: 'POST',
      headers: { 'x-vault-token': 'root-http', 'content-type': 'application/json' },
      body: '{"data":',
    });
    expect(response.status).toBe(400);
    const { errors } = (await response.json()) as { errors: string[] };
    expect(errors[0]).toMatch(/^failed to parse JSON input: /);
  });

  it('reads a body sent without a JSON content type, as Vault does', async () => {
    const response = await fetch(`${standIn.addr}/v1/secret/data/apps/plain`, {
      method: 'PUT',
      headers: { 'x-vault-token': 'root-http', 'content-type': 'text/plain' },
      body: JSON.stringify({ data: { v: 'plain' } }),
    });
    expect(response.status).toBe(200);
    expect((await root.read('secret/data/apps/plain')).data.data).toEqual({ v: 'plain' });
  });
});
