/** Why a caller's credential was refused; the HTTP layer maps each to a status (most to 401). */
export type AuthFailure =
  | 'missing-token'
  | 'malformed-token'
  | 'unsupported-algorithm'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-audience'
  | 'unknown-issuer'
  | 'unknown-key'
  | 'issuer-unavailable'
  | 'invalid-claims';

/** A refused credential. The message is safe to show the caller: it never repeats the token. */
export class AuthError extends Error {
  readonly reason: AuthFailure;
  /** Who the token speaks for, when its signature verified and only its claims were refused. */
  readonly identity: { issuerId: string; subject: string } | undefined;

  constructor(
    reason: AuthFailure,
    message: string,
    options: { cause?: unknown; identity?: { issuerId: string; subject: string } } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AuthError';
    this.reason = reason;
    this.identity = options.identity;
  }
}
