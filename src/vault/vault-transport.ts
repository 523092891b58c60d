// The HTTP transport node-vault uses, in place of its axios one: a plain node:http(s) request on
// Node's keep-alive global agents, with JSON in and out. node-vault still builds every request and
// judges every response; this only moves bytes, at a fraction of axios's per-request cost.
import http from 'node:http';
import https from 'node:https';

export interface VaultRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
  timeout?: number;
}

export interface VaultResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}

function parseBody(text: string): unknown {
  if (text === '') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function send(options: VaultRequest): Promise<VaultResponse> {
  const url = new URL(options.uri);
  const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!client) return Promise.reject(Object.assign(new Error('unsupported protocol'), { code: 'EPROTO' }));
  const body =
    options.json !== null && typeof options.json === 'object' ? JSON.stringify(options.json) : undefined;
  const headers: Record<string, string | number> = { accept: 'application/json', ...options.headers };
  if (body !== undefined) {
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    headers['content-length'] = Buffer.byteLength(body);
  }
  return new Promise((resolve, reject) => {
    const request = client.request(
      url,
      { method: options.method, headers, ...(options.timeout ? { timeout: options.timeout } : {}) },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            statusCode: response.statusCode ?? 0,
            body: parseBody(Buffer.concat(chunks).toString('utf8')),
            request: { path: url.pathname },
          }),
        );
      },
    );
    request.on('timeout', () =>
      request.destroy(Object.assign(new Error('Vault request timed out'), { code: 'ETIMEDOUT' })),
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** The shape node-vault accepts as its `request-promise` option. */
export const vaultTransport = { defaults: () => send };
