// The one base of every error the domain raises about a dependency or a refused request. It knows
// nothing of HTTP: a caller-facing layer (the API, the CLI) maps `code` to its own answer in one table.

/**
 * An authorization refusal of a known caller, to be audited: every refusal goes into the audit log
 * from one place (the API's error handler), whichever layer refused.
 */
export interface Denial {
  actor: string;
  /** `access.denied` unless said otherwise (the access policy's refusals are `policy.denied`). */
  action?: 'access.denied' | 'policy.denied';
  reason: string;
  details?: Record<string, unknown>;
  /** The key (or the provider and repository) the refused request was about, when there is one. */
  key?: { keyId?: string; provider?: string; repository?: string; jobId?: string };
}

export interface DomainErrorOptions {
  /** What a caller may be told: no credentials, no key material, no dependency internals. */
  detail: string;
  /** How long to wait before trying again, when the dependency said so or we know it. */
  retryAfterSeconds?: number | undefined;
  /** Machine-readable facts a caller may be shown beside `detail` (e.g. the policy's reasons). */
  extra?: Record<string, unknown> | undefined;
  /** Set when the refusal of a known caller must be audited. */
  denial?: Denial | undefined;
  cause?: unknown;
}

export class DomainError extends Error {
  /** Stable and machine-readable, e.g. `host-rate-limited`; never reworded once published. */
  readonly code: string;
  readonly retryAfterSeconds: number | undefined;
  readonly detail: string;
  readonly extra: Record<string, unknown>;
  readonly denial: Denial | undefined;

  constructor(code: string, message: string, options: DomainErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainError';
    this.code = code;
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.extra = options.extra ?? {};
    this.denial = options.denial;
  }
}

/** A request the domain turns down (bad input, no such thing, not allowed); `message` is safe to show. */
export class RefusalError extends DomainError {
  constructor(code: string, message: string, options: Omit<DomainErrorOptions, 'detail'> = {}) {
    super(code, message, { ...options, detail: message });
    this.name = 'RefusalError';
  }
}
