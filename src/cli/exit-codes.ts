// The one table from the domain's error codes to the exit codes the `deploykey` commands document:
// 2 the caller's mistake (a retry will not help), 3 refused, 4 not found, 1 anything else.
import { DomainError } from '../errors.ts';
import { EXIT } from './client/client-error.ts';

const EXIT_CODES: Readonly<Record<string, number>> = {
  'invalid-repository': EXIT.usage,
  'invalid-ttl': EXIT.usage,
  'unknown-provider': EXIT.usage,
  unauthorized: EXIT.refused,
  'forbidden-by-policy': EXIT.refused,
  'role-not-allowed': EXIT.refused,
  'repository-forbidden': EXIT.refused,
  'key-not-found': EXIT.notFound,
  'job-not-found': EXIT.notFound,
  'repository-not-found': EXIT.notFound,
};

export function exitCodeOf(error: unknown): number {
  return error instanceof DomainError ? (EXIT_CODES[error.code] ?? EXIT.failed) : EXIT.failed;
}
