// Turns a host's failed answer into the one HostError the rest of the service understands, the same
// way for every host type. Host messages are kept (they say what was wrong); credentials never are.
import { HostError, type HostErrorKind } from './git-host.ts';
import { isTimeoutError, parseRetryAfter } from './host-http.ts';

export interface FailedAnswer {
  status: number;
  headers: Record<string, string | undefined>;
  /** The host's own explanation, already flattened to one line. */
  message: string;
}

// GitHub answers a primary rate limit with 403 (or 429) and `x-ratelimit-remaining: 0`, a secondary
// one with 403 (or 429) and `retry-after` or a message naming the limit ("Rate limits for the REST API").
function isRateLimit(answer: FailedAnswer): boolean {
  if (answer.status === 429) return true;
  if (answer.status !== 403) return false;
  return (
    answer.headers['retry-after'] !== undefined ||
    answer.headers['x-ratelimit-remaining'] === '0' ||
    /rate limit/i.test(answer.message)
  );
}

// Without `retry-after`, GitHub says to wait for `x-ratelimit-reset` (epoch seconds), GitLab sends
// `ratelimit-reset` likewise; GitHub documents one minute for a secondary limit that names no time.
export function rateLimitWaitSeconds(headers: FailedAnswer['headers'], nowMs: number): number {
  const retryAfter = parseRetryAfter(headers['retry-after'], nowMs);
  if (retryAfter !== undefined) return retryAfter;
  const reset = Number(headers['x-ratelimit-reset'] ?? headers['ratelimit-reset']);
  if (Number.isFinite(reset) && reset > 0) return Math.max(1, Math.ceil(reset - nowMs / 1000));
  return 60;
}

function kindOf(answer: FailedAnswer): HostErrorKind {
  if (isRateLimit(answer)) return 'rate-limited';
  if (answer.status === 401) return 'unauthorized';
  if (answer.status === 403) return 'forbidden';
  if (answer.status === 404 || answer.status === 410) return 'not-found';
  if (answer.status === 408) return 'timeout';
  if (answer.status >= 500) return 'unavailable';
  return 'invalid';
}

function hostErrorFromAnswer(
  hostId: string,
  operation: string,
  answer: FailedAnswer,
  nowMs: number,
): HostError {
  const kind = kindOf(answer);
  const retryAfterSeconds = kind === 'rate-limited' ? rateLimitWaitSeconds(answer.headers, nowMs) : undefined;
  const wait = retryAfterSeconds === undefined ? '' : ` (retry after ${retryAfterSeconds} s)`;
  return new HostError(hostId, kind, `${operation} on ${hostId}: ${answer.status} ${answer.message}${wait}`, {
    status: answer.status,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}

/** A request that got no answer: it timed out or the connection failed. */
function hostErrorFromTransport(hostId: string, operation: string, error: unknown): HostError {
  if (isTimeoutError(error)) {
    return new HostError(hostId, 'timeout', `${operation} on ${hostId}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new HostError(
    hostId,
    'unavailable',
    `${operation} on ${hostId}: cannot reach the host (${reason})`,
    {
      cause: error,
    },
  );
}

/**
 * The HostError for what a host library threw: `answerOf` finds the status, headers and message of
 * a failed answer in that library's error, or undefined when no answer came back.
 */
export function toHostError(
  hostId: string,
  operation: string,
  error: unknown,
  answerOf: (error: unknown) => FailedAnswer | undefined,
  nowMs: number,
): HostError {
  if (error instanceof HostError) return error;
  const answer = isTimeoutError(error) ? undefined : answerOf(error);
  return answer
    ? hostErrorFromAnswer(hostId, operation, answer, nowMs)
    : hostErrorFromTransport(hostId, operation, error);
}

/** Flattens a host error body (`message`, `error`, GitHub's `errors[]`, GitLab's field map) to one line. */
export function describeBody(body: unknown): string {
  if (typeof body === 'string') return body.trim().replace(/\s+/g, ' ').slice(0, 500);
  if (typeof body !== 'object' || body === null) return '';
  const record = body as Record<string, unknown>;
  const head = record.message ?? record.error;
  const parts: string[] = [];
  if (typeof head === 'string') parts.push(head);
  else if (head !== undefined) parts.push(JSON.stringify(head));
  if (Array.isArray(record.errors)) {
    for (const item of record.errors) {
      const detail = (item as { message?: unknown }).message;
      parts.push(typeof detail === 'string' ? detail : JSON.stringify(item));
    }
  }
  return parts.join(': ').replace(/\s+/g, ' ').slice(0, 500);
}
