/** Exit codes of the client commands, as their --help documents them. */
export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3, notFound: 4 } as const;

/** A failure the command explains in one line; `exitCode` tells scripts which kind it was. */
export class ClientError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

export function exitCodeForStatus(status: number): number {
  // The service refused the request as malformed (an unknown provider, a bad repository name):
  // the caller's mistake, as with a bad flag, which a retry will not fix.
  if (status === 400 || status === 413 || status === 422) return EXIT.usage;
  if (status === 401 || status === 403) return EXIT.refused;
  if (status === 404) return EXIT.notFound;
  return EXIT.failed;
}
