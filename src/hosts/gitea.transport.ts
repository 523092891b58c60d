// Gitea and Forgejo (self-hosted) through a thin fetch client on Gitea's REST API v1: one request per
// call; the adapter core (host-adapter.ts) retries, paces and maps errors. `gitea-js` would add a
// generated client of the whole API for three routes, and throw its own shape of failure.
import { describeBody, type FailedAnswer } from './error-mapping.ts';
import { nextPageOf } from './github.transport.ts';
import { fromReadOnlyFlagKey, type ReadOnlyFlagKey } from './host-http.ts';
import { hostTokenReader } from './host-token.ts';
import type { HostPace, HostTransport, TransportContext } from './host-transport.ts';

// Released Gitea and Forgejo limit no API rate themselves (an opt-in guard or a proxy may, with 429
// and Retry-After); one self-hosted server is still spared bursts of writes.
const GITEA_WRITES: HostPace = { concurrency: 4, minIntervalMs: 0, requestsPerMinute: 300 };

// Gitea caps a page at `[api] MAX_RESPONSE_ITEMS`, 50 unless the server raised it.
const PAGE_LIMIT = 50;

/** A failed answer, kept whole so the core maps it like any host's. */
export class GiteaAnswerError extends Error {
  constructor(readonly answer: FailedAnswer) {
    super(answer.message);
    this.name = 'GiteaAnswerError';
  }
}

/**
 * The page after `page`: from `Link` when the server sends one, else from `X-Total-Count` and the
 * server's page size (`pageSize`, what a full page held: the server may cap our limit lower), else
 * a full page means there may be another.
 */
export function giteaNextPage(
  headers: Headers,
  page: number,
  received: number,
  pageSize: number,
): number | undefined {
  const fromLink = nextPageOf(headers.get('link') ?? undefined);
  if (fromLink !== undefined) return fromLink;
  if (received === 0) return undefined;
  const total = Number(headers.get('x-total-count') ?? Number.NaN);
  if (Number.isFinite(total)) return (page - 1) * pageSize + received < total ? page + 1 : undefined;
  return received >= pageSize ? page + 1 : undefined;
}

async function failedAnswer(response: Response): Promise<GiteaAnswerError> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Plain text, as Gitea's rate-limit guard and proxies answer.
  }
  return new GiteaAnswerError({
    status: response.status,
    headers: Object.fromEntries(response.headers.entries()),
    message: describeBody(body) || `HTTP ${response.status}`,
  });
}

/** Path segments each encoded, so a name cannot step outside `/repos/{owner}/{repo}`. */
function keysPath(repository: string): string {
  const [owner = '', repo = ''] = repository.split('/');
  return `repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/keys`;
}

export function createGiteaTransport(context: TransportContext): HostTransport {
  const { config, fetch } = context;
  // Read on every request, so a rotated token file takes effect without a restart.
  const token = hostTokenReader(context);
  const base = `${config.apiUrl.replace(/\/+$/, '')}/`;
  // A first page that is not the whole list is full, so it shows the server's cap on `limit`.
  let serverPageSize = PAGE_LIMIT;
  const send = async (method: string, path: string, body?: unknown): Promise<Response> => {
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `token ${token()}`,
      'user-agent': 'deploykey-rotator',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(new URL(path, base), {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw await failedAnswer(response);
    return response;
  };

  return {
    repositoryShape: 'a Gitea repository (owner/name)',
    maxPathSegments: 2,
    writePace: GITEA_WRITES,
    // Gitea refuses a key already on the repository, or a title already used there.
    alreadyRegistered: /already been added|same name already exists/i,

    async addKey(repository, key) {
      // Invariant: read-only always. Gitea makes a key read-write when `read_only` is omitted.
      const response = await send('POST', keysPath(repository), {
        title: key.title,
        key: key.publicKey,
        read_only: true,
      });
      return fromReadOnlyFlagKey((await response.json()) as ReadOnlyFlagKey);
    },

    // Gitea answers DELETE with 204 whether or not the key existed; asking for the key first lets a
    // revoke tell "deleted" from "already gone" (the 404 maps to the latter) for the audit trail.
    async deleteKey(repository, hostKeyId) {
      const path = `${keysPath(repository)}/${encodeURIComponent(hostKeyId)}`;
      await (await send('GET', path)).body?.cancel();
      await (await send('DELETE', path)).body?.cancel();
    },

    async listPage(repository, page) {
      const response = await send('GET', `${keysPath(repository)}?page=${page}&limit=${PAGE_LIMIT}`);
      const keys = ((await response.json()) as ReadOnlyFlagKey[]).map(fromReadOnlyFlagKey);
      const total = Number(response.headers.get('x-total-count') ?? Number.NaN);
      if (page === 1 && keys.length > 0 && keys.length < total) serverPageSize = keys.length;
      return { keys, nextPage: giteaNextPage(response.headers, page, keys.length, serverPageSize) };
    },

    answerOf: (error) => (error instanceof GiteaAnswerError ? error.answer : undefined),
  };
}
