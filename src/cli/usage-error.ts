/** A mistake in how the command was called: one line of explanation, then the usage. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage?: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}
