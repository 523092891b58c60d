// The service's HTTP API as the client commands use it. Every request here is safe to repeat
// (issue carries an Idempotency-Key), so brief outages and rate limits are waited out.
import type { KeyView } from '../../keys/key-view.ts';
import { ClientError, EXIT, exitCodeForStatus } from './client-error.ts';
import type { Credential } from './credentials.ts';

export type { KeyView };
export type IssuedKey = KeyView & { privateKey?: string; wrapToken?: string };

export interface IssueKeyRequest {
  provider: string;
  repository: string;
  jobId: string;
  ttlSeconds?: number;
  delivery?: 'response' | 'wrapped' | 'vault';
}

export interface ListFilter {
  provider?: string;
  repository?: string;
  jobId?: string;
  status?: string;
}

export interface ServiceClientOptions {
  baseUrl: string;
  credential: Credential;
  timeoutMs?: number;
  /** How many times a transient failure is retried. */
  retries?: number;
}

interface Problem {
  status?: number;
  code?: string;
  detail?: string;
  title?: string;
}

export class ServiceProblem extends ClientError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
    readonly body: Problem & Record<string, unknown>,
  ) {
    super(message, exitCodeForStatus(status));
    this.name = 'ServiceProblem';
  }
}

// 502 is not here: the service answers 502 when a host or Vault refused, which a retry won't change.
const TRANSIENT = new Set([429, 503, 504]);
const MAX_WAIT_SECONDS = 10;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One line: `<status> <code>: <detail>`, with the credential's source when it was refused. */
async function toProblem(response: Response, credential: Credential): Promise<ServiceProblem> {
  const text = await response.text().catch(() => '');
  let body: Problem & Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as typeof body;
  } catch {}
  const what = body.code ?? (response.statusText || 'error');
  const detail = (body.detail ?? body.title ?? text.slice(0, 200)).replace(/\s+/g, ' ').trim();
  const refused = response.status === 401 ? ` (credential: ${credential.source})` : '';
  return new ServiceProblem(
    `${response.status} ${what}${detail ? `: ${detail}` : ''}${refused}`,
    response.status,
    body.code,
    body,
  );
}

function retryDelayMs(response: Response, attempt: number): number {
  const header = Number(response.headers.get('retry-after'));
  const seconds = Number.isFinite(header) && header > 0 ? header : attempt;
  return Math.min(seconds, MAX_WAIT_SECONDS) * 1000;
}

interface RequestParts {
  body?: unknown;
  headers?: Record<string, string>;
}

/** One attempt of a request to the service, as the caller it authenticates as. */
function send(options: ServiceClientOptions, url: string, method: string, init: RequestParts) {
  return fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${options.credential.token}`,
      accept: 'application/json, application/problem+json',
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
}

export function createServiceClient(options: ServiceClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, '');
  const retries = options.retries ?? 3;

  async function call<T>(
    method: string,
    path: string,
    init: RequestParts = {},
  ): Promise<{ status: number; headers: Headers; body: T }> {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await send(options, `${base}${path}`, method, init);
      } catch (error) {
        const { message, cause } = error as Error & { cause?: { code?: string; message?: string } };
        const reason = cause?.code ?? cause?.message ?? message;
        if (attempt <= retries) {
          await pause(attempt * 1000);
          continue;
        }
        throw new ClientError(`cannot reach the service at ${base}: ${reason}`, EXIT.failed);
      }
      if (response.ok) {
        return { status: response.status, headers: response.headers, body: (await response.json()) as T };
      }
      const problem = await toProblem(response, options.credential);
      // The first request with this Idempotency-Key (an earlier attempt of this very step) is running.
      const inProgress = response.status === 409 && problem.code === 'request-in-progress';
      if ((TRANSIENT.has(response.status) || inProgress) && attempt <= retries) {
        await pause(retryDelayMs(response, attempt));
        continue;
      }
      throw problem;
    }
  }

  return {
    async issueKey(request: IssueKeyRequest, idempotencyKey: string) {
      const { headers, body } = await call<IssuedKey>('POST', '/v1/keys', {
        body: request,
        headers: { 'idempotency-key': idempotencyKey },
      });
      return { key: body, replayed: headers.get('idempotent-replayed') === 'true' };
    },
    async completeJob(jobId: string) {
      return (
        await call<{ jobId: string; keys: KeyView[] }>(
          'POST',
          `/v1/jobs/${encodeURIComponent(jobId)}/complete`,
        )
      ).body;
    },
    async revokeKey(id: string) {
      return (await call<KeyView>('DELETE', `/v1/keys/${encodeURIComponent(id)}`)).body;
    },
    async listKeys(filter: ListFilter): Promise<KeyView[]> {
      const items: KeyView[] = [];
      let cursor: string | null = null;
      do {
        const query = new URLSearchParams({ limit: '200' });
        for (const [name, value] of Object.entries(filter)) if (value) query.set(name, value);
        if (cursor) query.set('cursor', cursor);
        const page: { items: KeyView[]; nextCursor: string | null } = (
          await call<{ items: KeyView[]; nextCursor: string | null }>('GET', `/v1/keys?${query}`)
        ).body;
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return items;
    },
  };
}

export type ServiceClient = ReturnType<typeof createServiceClient>;
