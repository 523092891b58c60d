// The one table from the domain's error codes to HTTP answers. The domain names what went wrong
// (`code`, safe `detail`, `retryAfterSeconds`); only here does that become a status and headers.
import type { DomainError } from '../errors.ts';

interface CodeAnswer {
  status: number;
  /** 5xx details are shown only when they name the failing dependency and nothing of its internals. */
  hidesDetail?: true;
  /** Said when the dependency gave no time of its own. */
  defaultRetryAfterSeconds?: number;
}

export const HTTP_ANSWERS: Readonly<Record<string, CodeAnswer>> = {
  // The caller's request is malformed.
  'invalid-repository': { status: 400 },
  'invalid-ttl': { status: 400 },
  'unknown-provider': { status: 400 },
  // Who the caller is and what it may do.
  unauthorized: { status: 401 },
  'forbidden-by-policy': { status: 403 },
  'role-not-allowed': { status: 403 },
  // What the caller asked for does not exist (or is not theirs to see).
  'key-not-found': { status: 404 },
  'job-not-found': { status: 404 },
  // The request clashes with the state of a key or token.
  'idempotency-key-reused': { status: 409 },
  'request-in-progress': { status: 409 },
  'idempotent-request-failed': { status: 409 },
  'key-already-active': { status: 409 },
  'token-name-taken': { status: 409 },
  // A dependency refused or failed; the caller learns which one, never its internals.
  'repository-not-found': { status: 404 },
  'app-not-installed': { status: 404 },
  'repository-forbidden': { status: 403 },
  'host-rate-limited': { status: 503, defaultRetryAfterSeconds: 60 },
  'host-timeout': { status: 504 },
  'host-credentials-rejected': { status: 502 },
  'host-failed': { status: 502 },
  'vault-timeout': { status: 504 },
  'vault-unavailable': { status: 503, defaultRetryAfterSeconds: 5 },
  'vault-failed': { status: 502 },
  'queue-unavailable': { status: 503, defaultRetryAfterSeconds: 5 },
  'issuer-unavailable': { status: 503, hidesDetail: true, defaultRetryAfterSeconds: 5 },
  'issue-interrupted': { status: 503, hidesDetail: true },
  internal: { status: 500, hidesDetail: true },
};

export interface HttpAnswer {
  status: number;
  showDetail: boolean;
  headers: Record<string, string>;
}

function challengeOf(error: DomainError): string {
  // RFC 6750 §3.1: a token that was presented but failed verification is `invalid_token`.
  return error.extra.reason === undefined
    ? 'Bearer realm="deploykey"'
    : 'Bearer realm="deploykey", error="invalid_token"';
}

/** The answer for a domain error, or undefined when its code is not one a caller is told about. */
export function httpAnswerOf(error: DomainError): HttpAnswer | undefined {
  const known = HTTP_ANSWERS[error.code];
  if (!known) return undefined;
  const headers: Record<string, string> = {};
  const retryAfter = error.retryAfterSeconds ?? known.defaultRetryAfterSeconds;
  if (retryAfter !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfter)));
  if (known.status === 401) headers['www-authenticate'] = challengeOf(error);
  return { status: known.status, showDetail: known.hidesDetail !== true, headers };
}
