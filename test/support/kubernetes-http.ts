// Plain HTTPS to the Kubernetes API stand-in, as the API reference describes the calls: a request
// helper and a watch-stream reader that waits for the events a test expects.
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import type { KubernetesStandIn } from '../../sandbox/kubernetes/stand-in.ts';

export interface KubeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field in assertions
  json: any;
}

export interface KubeRequestOptions {
  method?: string;
  token?: string | null;
  body?: unknown;
  contentType?: string;
  accept?: string;
}

type Server = Pick<KubernetesStandIn, 'url' | 'caPem' | 'tlsServerName'>;

function open(server: Server, path: string, options: KubeRequestOptions) {
  const url = new URL(path, server.url);
  const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  if (body !== undefined) {
    headers['content-type'] = options.contentType ?? 'application/json';
    // Node sends a DELETE's body unframed unless told its length.
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  const request = httpsRequest(url, {
    method: options.method ?? 'GET',
    headers,
    ca: server.caPem,
    servername: server.tlsServerName,
  });
  request.end(body);
  return request;
}

export function kubeRequest(
  server: Server,
  path: string,
  options: KubeRequestOptions = {},
): Promise<KubeResponse> {
  return new Promise((resolve, reject) => {
    const request = open(server, path, options);
    request.on('error', reject);
    request.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => {
        text += chunk;
      });
      response.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
      });
    });
  });
}

export interface WatchEvent {
  type: string;
  // biome-ignore lint/suspicious/noExplicitAny: event objects are read field by field in assertions
  object: any;
}

export interface WatchStream {
  status: number;
  headers: IncomingHttpHeaders;
  events: WatchEvent[];
  /** Resolves with the first event (seen or still to come) that `test` accepts. */
  next(test: (event: WatchEvent) => boolean, timeoutMs?: number): Promise<WatchEvent>;
  /** Resolves when the server has ended the stream. */
  ended: Promise<void>;
  close(): void;
}

export function openWatchStream(server: Server, path: string, token: string): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const request = open(server, path, { token });
    request.on('error', reject);
    request.on('response', (response) => {
      // Once streaming, an aborted or reset connection just ends the stream (tests cause both).
      response.on('error', () => {});
      request.removeListener('error', reject);
      request.on('error', () => {});
      const events: WatchEvent[] = [];
      const waiters = new Set<() => void>();
      const lines = createInterface({ input: response });
      lines.on('error', () => {});
      lines.on('line', (line) => {
        events.push(JSON.parse(line));
        for (const wake of [...waiters]) wake();
      });
      const ended = new Promise<void>((done) => response.on('close', () => done()));
      let consumed = 0;
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        events,
        ended,
        close: () => request.destroy(),
        next(test, timeoutMs = 10_000) {
          return new Promise((found, fail) => {
            const check = () => {
              const index = events.findIndex((event, at) => at >= consumed && test(event));
              if (index < 0) return false;
              consumed = index + 1;
              waiters.delete(wake);
              clearTimeout(timer);
              found(events[index]!);
              return true;
            };
            const wake = () => {
              check();
            };
            const timer = setTimeout(() => {
              waiters.delete(wake);
              fail(new Error(`no matching watch event; got ${JSON.stringify(events.map((e) => e.type))}`));
            }, timeoutMs);
            if (!check()) waiters.add(wake);
          });
        },
      });
    });
  });
}
