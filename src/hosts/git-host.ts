// The contract every Git host adapter keeps, and the one error type they raise.
import type { HostConfig } from '../config.ts';
import { DomainError } from '../errors.ts';
import { KEY_ID } from '../model/values.ts';

export const TITLE_PREFIX = 'deploykey-rotator:';

export interface HostDeployKey {
  /** The host's own id of the deploy key, as a string (GitHub and GitLab ids are numbers). */
  hostKeyId: string;
  title: string;
  /** `<type> <base64>` as the host returns it. */
  publicKey: string;
  readOnly: boolean;
}

export interface AddDeployKeyInput {
  repository: string;
  title: string;
  publicKey: string;
  /** GitLab receives it as `expires_at`, a second safety net; GitHub has no such field. */
  expiresAt: Date;
  /** Who asked for the key: the host's budget is shared out between callers in turn. */
  caller: string;
}

/** A CI job on the host, as precise as a key's binding names it; always within one repository. */
export type CiJobQuery =
  | { kind: 'github-run-attempt'; repository: string; runId: string; runAttempt: string }
  | { kind: 'github-job'; repository: string; checkRunId: string }
  | { kind: 'gitlab-job'; repository: string; jobId: string };

/**
 * What the host says of a CI job. `ended` carries the platform's conclusion (`deleted` when the job
 * is gone from a repository we can still see); `unknown` when this host cannot tell.
 */
export type CiJobStatus =
  | { state: 'running' }
  | { state: 'ended'; conclusion: string; failureReason?: string }
  | { state: 'unknown' };

export interface GitHost {
  readonly id: string;
  readonly type: HostConfig['type'];
  /** Always registers the key read-only; no input can change that. */
  addDeployKey(input: AddDeployKeyInput): Promise<HostDeployKey>;
  /**
   * Throws the rate-limited HostError (with a retry time) that adding a key for this caller would
   * meet now because the host's budget has no room for it; queues nothing.
   */
  checkCapacity(caller: string): void;
  /** Fails (`app-not-installed`) when the service's credentials cannot act on the repository at all. */
  checkAccess(repository: string): Promise<void>;
  /** A key the host no longer has (404) counts as deleted. */
  deleteDeployKey(repository: string, hostKeyId: string): Promise<'deleted' | 'already-gone'>;
  /** Every deploy key on the repository, across all pages. */
  listDeployKeys(repository: string): Promise<HostDeployKey[]>;
  /**
   * One request, no retry: whether a CI job has ended. Throws the rate-limited HostError without
   * asking while the host has told us to wait; any failure leaves the job to be asked again later.
   */
  ciJobStatus(query: CiJobQuery): Promise<CiJobStatus>;
  /**
   * When the service's token on this host stops working (midnight UTC of GitLab's `expires_at`),
   * null when it never expires; absent where the host cannot tell (GitHub Apps renew themselves).
   */
  credentialExpiry?(): Promise<Date | null>;
  /** known_hosts lines for this host's SSH endpoint, verified and cached. */
  knownHosts(): Promise<string[]>;
  cloneUrl(repository: string): string;
}

export type HostErrorKind =
  | 'unauthorized' // 401: our credentials are wrong
  | 'forbidden' // 403 (not a rate limit): we may not manage keys on this repository
  | 'not-found' // 404: the repository does not exist or we cannot see it
  | 'app-not-installed' // 404: the GitHub App we act as is not installed on the repository's owner
  | 'invalid' // 400/422: the host refused the request as malformed or conflicting
  | 'rate-limited' // 429 or 403 rate limit, after retries within the bound
  | 'unavailable' // 5xx or connection failure, after retries
  | 'timeout';

// What a caller may learn of each failure; the host's own message stays in `message`, for logs.
const DETAILS: Record<HostErrorKind, (hostId: string) => string> = {
  unauthorized: (host) => `${host} rejected the service's credentials`,
  forbidden: (host) => `${host} does not let the service manage deploy keys on this repository`,
  'not-found': (host) => `the repository does not exist on ${host}, or the service cannot see it`,
  'app-not-installed': (host) =>
    `the service's GitHub App on ${host} is not installed on the repository's owner`,
  invalid: (host) => `the request is not one ${host} accepts`,
  'rate-limited': (host) => `${host} is rate limiting the service; retry later`,
  unavailable: (host) => `${host} is unavailable`,
  timeout: (host) => `${host} did not answer in time`,
};

/** A Git host failed or refused; `code` is `host-<kind>`. */
export class HostError extends DomainError {
  readonly kind: HostErrorKind;
  readonly hostId: string;
  readonly status: number | undefined;

  constructor(
    hostId: string,
    kind: HostErrorKind,
    message: string,
    options: { status?: number; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(`host-${kind}`, message, {
      detail: DETAILS[kind](hostId),
      retryAfterSeconds: options.retryAfterSeconds,
      cause: options.cause,
    });
    this.name = 'HostError';
    this.hostId = hostId;
    this.kind = kind;
    this.status = options.status;
  }
}

export function keyTitle(keyId: string, jobId: string): string {
  return `${TITLE_PREFIX}${keyId} job=${jobId}`;
}

const OUR_TITLE = new RegExp(`^${TITLE_PREFIX}(${KEY_ID})(?:\\s|$)`);

/** The key id in one of our titles, or undefined for a key that is not ours or whose id is malformed. */
export function keyIdFromTitle(title: string): string | undefined {
  return OUR_TITLE.exec(title)?.[1];
}

/** Whether the title claims to be ours (our prefix) though no key id can be read from it. */
export function isUnreadableOwnTitle(title: string): boolean {
  return title.startsWith(TITLE_PREFIX) && keyIdFromTitle(title) === undefined;
}
