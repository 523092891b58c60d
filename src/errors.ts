// The one base of every error the domain raises about a dependency or a refused request. It knows
// nothing of HTTP: a caller-facing layer (the API, the CLI) maps `code` to its own answer in one table.

export interface DomainErrorOptions {
  /** What a caller may be told: no credentials, no key material, no dependency internals. */
  detail: string;
  /** How long to wait before trying again, when the dependency said so or we know it. */
  retryAfterSeconds?: number | undefined;
  cause?: unknown;
}

export class DomainError extends Error {
  /** Stable and machine-readable, e.g. `host-rate-limited`; never reworded once published. */
  readonly code: string;
  readonly retryAfterSeconds: number | undefined;
  readonly detail: string;

  constructor(code: string, message: string, options: DomainErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainError';
    this.code = code;
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}
