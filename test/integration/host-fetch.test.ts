// The host clients' fetch carries requests on kept-alive connections and answers as fetch does:
// status, headers, body, redirects followed, compressed bodies decoded, aborts honoured.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHostFetch } from '../../src/hosts/host-fetch.ts';

let server: http.Server;
let base: string;
let connections = 0;
const seen: { method: string; url: string; body: string; headers: http.IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: request.method ?? '', url: request.url ?? '', body, headers: request.headers });
      if (request.url === '/moved') {
        response.writeHead(307, { location: '/keys' }).end();
      } else if (request.url === '/compressed') {
        response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        response.end(gzipSync(JSON.stringify({ id: 7 })));
      } else if (request.url === '/slow') {
        setTimeout(() => response.end('late'), 2_000);
      } else if (request.method === 'DELETE') {
        response.writeHead(204, { 'x-ratelimit-remaining': '41' }).end();
      } else {
        response.writeHead(201, { 'content-type': 'application/json', link: '<next>; rel="next"' });
        response.end(JSON.stringify({ method: request.method, body }));
      }
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

it('answers with the status, headers and body the host sent, and its own url', async () => {
  const send = createHostFetch();
  const deleted = await send(`${base}/keys/1`, { method: 'DELETE', headers: { authorization: 'token t' } });
  expect(deleted.status).toBe(204);
  expect(deleted.headers.get('x-ratelimit-remaining')).toBe('41');
  expect(deleted.url).toBe(`${base}/keys/1`);
  expect(seen.at(-1)).toMatchObject({ method: 'DELETE', headers: { authorization: 'token t' } });

  const created = await send(new Request(`${base}/keys`, { method: 'POST', body: '{"title":"t"}' }));
  expect(created.status).toBe(201);
  expect(created.headers.get('link')).toBe('<next>; rel="next"');
  expect(await created.json()).toEqual({ method: 'POST', body: '{"title":"t"}' });
  expect(seen.at(-1)?.headers['content-length']).toBe('13');
});

it('keeps connections alive: many requests, a handful of connections', async () => {
  const send = createHostFetch();
  const before = connections;
  for (let round = 0; round < 5; round += 1) {
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => send(`${base}/keys/2`, { method: 'DELETE' })),
    );
    expect(answers.every((answer) => answer.status === 204)).toBe(true);
  }
  expect(connections - before).toBeLessThanOrEqual(4);
});

it('follows a redirect with the same method and body, and decodes a compressed body', async () => {
  const send = createHostFetch();
  const moved = await send(`${base}/moved`, { method: 'POST', body: 'again' });
  expect(moved.status).toBe(201);
  expect(await moved.json()).toEqual({ method: 'POST', body: 'again' });
  expect(moved.redirected).toBe(true);
  expect(await (await send(`${base}/compressed`)).json()).toEqual({ id: 7 });
});

it('gives up when its signal is aborted, as fetch does', async () => {
  const send = createHostFetch();
  const started = performance.now();
  await expect(send(`${base}/slow`, { signal: AbortSignal.timeout(50) })).rejects.toMatchObject({
    name: expect.stringMatching(/AbortError|TimeoutError/),
  });
  expect(performance.now() - started).toBeLessThan(1_500);
  const aborted = new AbortController();
  aborted.abort();
  await expect(send(`${base}/keys/3`, { method: 'DELETE', signal: aborted.signal })).rejects.toMatchObject({
    name: 'AbortError',
  });
});
