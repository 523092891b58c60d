// The contract every Git host adapter keeps, and the one error type they raise.

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

export interface GitHost {
  readonly id: string;
  readonly type: 'github' | 'gitlab';
  /** Always registers the key read-only; no input can change that. */
  addDeployKey(input: AddDeployKeyInput): Promise<HostDeployKey>;
  /**
   * Throws the rate-limited HostError (with a retry time) that adding a key for this caller would
   * meet now because the host's budget has no room for it; queues nothing.
   */
  checkCapacity(caller: string): void;
  /** A key the host no longer has (404) counts as deleted. */
  deleteDeployKey(repository: string, hostKeyId: string): Promise<'deleted' | 'already-gone'>;
  /** Every deploy key on the repository, across all pages. */
  listDeployKeys(repository: string): Promise<HostDeployKey[]>;
  /** known_hosts lines for this host's SSH endpoint, verified and cached. */
  knownHosts(): Promise<string[]>;
  cloneUrl(repository: string): string;
}

export type HostErrorKind =
  | 'unauthorized' // 401: our credentials are wrong
  | 'forbidden' // 403 (not a rate limit): we may not manage keys on this repository
  | 'not-found' // 404: the repository does not exist or we cannot see it
  | 'invalid' // 400/422: the host refused the request as malformed or conflicting
  | 'rate-limited' // 429 or 403 rate limit, after retries within the bound
  | 'unavailable' // 5xx or connection failure, after retries
  | 'timeout';

export class HostError extends Error {
  readonly kind: HostErrorKind;
  readonly hostId: string;
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    hostId: string,
    kind: HostErrorKind,
    message: string,
    options: { status?: number; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'HostError';
    this.hostId = hostId;
    this.kind = kind;
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** Whether trying again later may succeed. */
  get retryable(): boolean {
    return this.kind === 'rate-limited' || this.kind === 'unavailable' || this.kind === 'timeout';
  }
}

export function keyTitle(keyId: string, jobId: string): string {
  return `${TITLE_PREFIX}${keyId} job=${jobId}`;
}

const OUR_TITLE = /^deploykey-rotator:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:\s|$)/;

/** The key id in one of our titles, or undefined for a key that is not ours or whose id is malformed. */
export function keyIdFromTitle(title: string): string | undefined {
  return OUR_TITLE.exec(title)?.[1];
}

/** Whether the title claims to be ours (our prefix) though no key id can be read from it. */
export function isUnreadableOwnTitle(title: string): boolean {
  return title.startsWith(TITLE_PREFIX) && keyIdFromTitle(title) === undefined;
}
