// What every Git host adapter shares about talking HTTP: its dependencies, the retry bounds, and
// one fetch that times out each attempt and counts every answer in `deploykey_host_requests_total`.
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Clock, Timers } from '../time.ts';
import type { HostDeployKey } from './git-host.ts';
import type { SharedPacing } from './shared-pacing.ts';

export interface RetryOptions {
  /** The longest `retry-after` worth waiting for inside one call; beyond it the call fails fast. */
  maxWaitSeconds?: number;
  /** Retries after the first attempt, for rate limits and for 5xx/connection failures alike. */
  maxRetries?: number;
  /** Backoff unit for 5xx/connection failures: waits are base×1, base×4, base×9… */
  backoffBaseMs?: number;
}

export interface HostAdapterDeps {
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /** Pacing, rate-limit pauses and retry backoff wait on these. */
  timers: Timers;
  retry?: RetryOptions;
  /** Per HTTP attempt, not per call. */
  requestTimeoutMs?: number;
  /** How long host keys read from the host's API are trusted before being read again. */
  knownHostsTtlMs?: number;
  /** Shares each host's write budget with the other processes of the service. */
  sharedPacing?: SharedPacing;
}

export interface RetryPolicy {
  maxWaitSeconds: number;
  maxRetries: number;
  backoffBaseMs: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export function retryPolicy(options: RetryOptions | undefined): RetryPolicy {
  return {
    maxWaitSeconds: options?.maxWaitSeconds ?? 10,
    maxRetries: options?.maxRetries ?? 3,
    backoffBaseMs: options?.backoffBaseMs ?? 100,
  };
}

/** Whether a rate limit asking us to wait `retryAfterSeconds` is still worth waiting for. */
export function withinRetryBound(
  policy: RetryPolicy,
  retryCount: number,
  retryAfterSeconds: number,
): boolean {
  return retryCount < policy.maxRetries && retryAfterSeconds <= policy.maxWaitSeconds;
}

export function backoffMs(policy: RetryPolicy, retryCount: number): number {
  return (retryCount + 1) ** 2 * policy.backoffBaseMs;
}

const TIMED_OUT = Symbol('host request timed out');

// Named AbortError because @octokit/request passes an AbortError through unwrapped instead of
// wrapping it as a 500, so a call that timed out is known as one and not retried.
function timeoutError(timeoutMs: number): Error {
  return Object.assign(new Error(`no response within ${timeoutMs} ms`), {
    name: 'AbortError',
    [TIMED_OUT]: true,
  });
}

export function isTimeoutError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && TIMED_OUT in error;
}

/** Seconds from `retry-after` (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - nowMs) / 1000));
}

export function instrumentedFetch(opts: {
  metrics: Metrics;
  hostId: string;
  timeoutMs: number;
  /** Sees every answer, so the host's scheduler learns of rate limits whichever call met them. */
  onAnswer?: (status: number, headers: Headers) => void;
  /** What sends the request: the host's own (host-fetch.ts), or the global fetch. */
  send?: typeof fetch;
}): typeof fetch {
  const count = (status: string) => opts.metrics.hostRequests.inc({ provider: opts.hostId, status });
  const send = opts.send ?? fetch;
  return async (input, init) => {
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      const response = await send(input, { ...init, signal });
      count(String(response.status));
      opts.onAnswer?.(response.status, response.headers);
      return response;
    } catch (error) {
      if (timeout.aborted) {
        count('timeout');
        throw timeoutError(opts.timeoutMs);
      }
      count('network');
      throw error;
    }
  };
}

/** `owner/name` or `group/sub/name`: no empty segments, no dot segments. */
export function isRepositoryPath(repository: string, maxSegments: number): boolean {
  const segments = repository.split('/');
  return (
    segments.length >= 2 &&
    segments.length <= maxSegments &&
    segments.every((segment) => segment !== '' && segment !== '.' && segment !== '..' && !/\s/.test(segment))
  );
}

/** A deploy key as GitHub and Gitea both answer it (GitLab says `can_push` instead). */
export interface ReadOnlyFlagKey {
  id: number;
  key: string;
  title: string;
  read_only: boolean;
}

export function fromReadOnlyFlagKey(key: ReadOnlyFlagKey): HostDeployKey {
  return {
    hostKeyId: String(key.id),
    title: key.title,
    publicKey: keyTypeAndBlob(key.key),
    readOnly: key.read_only,
  };
}

/** `<type> <base64>`, the comment dropped, so keys from either host compare as equal text. */
export function keyTypeAndBlob(key: string): string {
  const [type = '', blob = ''] = key.trim().split(/\s+/);
  return `${type} ${blob}`;
}

export function cloneUrlFor(sshUrl: string, repository: string): string {
  return `${sshUrl.replace(/\/+$/, '')}/${repository}.git`;
}
