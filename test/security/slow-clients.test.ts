// A client that sends slowly, or holds connections open, cannot tie the API up: a request must
// arrive whole within requestTimeoutSeconds (then 408 and the connection closes, authenticated or
// not), connections beyond maxConnections are refused, and a connection serves a bounded number
// of requests.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

const REQUEST_TIMEOUT_SECONDS = 2;
const MAX_CONNECTIONS = 6;
let harness: Harness;
let port: number;
beforeAll(async () => {
  harness = await startHarness({
    worker: false,
    fileConfig: {
      http: {
        requestTimeoutSeconds: REQUEST_TIMEOUT_SECONDS,
        headersTimeoutSeconds: REQUEST_TIMEOUT_SECONDS,
        keepAliveTimeoutSeconds: 1,
        maxRequestsPerSocket: 2,
        maxConnections: MAX_CONNECTIONS,
      },
    },
  });
  port = Number(new URL(harness.service.url).port);
});
afterAll(async () => {
  await harness?.close();
});

interface Outcome {
  text: string;
  closedAfterMs: number;
}

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Everything the server sends until it closes the connection, and when it closed it. */
function untilClosed(socket: Socket, deadlineMs: number): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    let text = '';
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${deadlineMs} ms`));
    }, deadlineMs);
    socket.on('data', (chunk) => {
      text += chunk.toString();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(deadline);
      resolve({ text, closedAfterMs: Date.now() - started });
    });
  });
}

async function trickle(headers: string): Promise<Outcome> {
  const socket = await open();
  socket.write(
    `POST /v1/keys HTTP/1.1\r\nHost: deploykey\r\n${headers}Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{`,
  );
  const drip = setInterval(() => socket.writable && socket.write(' '), 200);
  try {
    return await untilClosed(socket, 15_000);
  } finally {
    clearInterval(drip);
  }
}

const BOUND_MS = (REQUEST_TIMEOUT_SECONDS + 3) * 1000;

describe('a request whose body trickles in', () => {
  it(`is answered 408 and cut off within ${REQUEST_TIMEOUT_SECONDS} s and a check`, async () => {
    const outcome = await trickle(`Authorization: Bearer ${harness.token}\r\n`);
    expect(outcome.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(outcome.text).toContain('"code":"request-timeout"');
    expect(outcome.closedAfterMs).toBeLessThan(BOUND_MS);
  });

  it('is cut off just as soon when it carries no credentials', async () => {
    const outcome = await trickle('');
    expect(outcome.closedAfterMs).toBeLessThan(BOUND_MS);
  });
});

describe('connections', () => {
  it(`beyond ${MAX_CONNECTIONS} at once are refused, and accepted again once others close`, async () => {
    const held = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, open));
    try {
      const refused = await open();
      const outcome = await untilClosed(refused, 5_000);
      expect(outcome.text).toBe('');
    } finally {
      for (const socket of held) socket.destroy();
    }
    // The server counts a connection until it has seen it close.
    const health = await eventually(
      () => harness.api('GET', '/healthz', { token: null }).catch(() => undefined),
      {
        what: 'a connection to be accepted again',
        timeoutMs: 5_000,
      },
    );
    expect(health.status).toBe(200);
  });

  it('serve at most maxRequestsPerSocket requests each', async () => {
    const socket = await open();
    const closed = untilClosed(socket, 10_000);
    const request = 'GET /healthz HTTP/1.1\r\nHost: deploykey\r\n\r\n';
    socket.write(request + request + request);
    const { text } = await closed;
    expect(text.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    expect(text.toLowerCase()).toContain('connection: close');
  });
});
