// Translates host, Vault and queue failures into answers a caller can act on, naming the
// dependency that failed and never its internals.
import { DomainError, RefusalError } from '../errors.ts';
import { HostError } from '../hosts/git-host.ts';
import { VaultError } from '../vault/secret-store.ts';

export class QueueUnavailableError extends DomainError {
  constructor(cause: unknown) {
    super('queue-unavailable', 'the revoke queue (Redis) cannot take jobs', {
      detail: 'the revoke queue is unavailable, so no key is handed out',
      cause,
    });
    this.name = 'QueueUnavailableError';
  }
}

function dependencyError(code: string, detail: string, retryAfterSeconds?: number): DomainError {
  return new DomainError(code, detail, { detail, retryAfterSeconds });
}

function hostIssueError(error: HostError, repository: string): DomainError {
  const host = error.hostId;
  switch (error.kind) {
    case 'not-found':
      return new RefusalError(
        'repository-not-found',
        `repository "${repository}" does not exist on ${host}, or the service cannot manage its deploy keys`,
      );
    case 'app-not-installed':
      return new RefusalError(
        'app-not-installed',
        `the service's GitHub App on ${host} is not installed on the owner of "${repository}"; install it there first`,
      );
    case 'forbidden':
      return new RefusalError(
        'repository-forbidden',
        `${host} does not allow deploy keys on "${repository}"`,
      );
    case 'rate-limited':
      return dependencyError(
        'host-rate-limited',
        `${host} is rate limiting the service; retry later`,
        error.retryAfterSeconds,
      );
    case 'timeout':
      return dependencyError('host-timeout', `${host} did not answer in time`);
    case 'unauthorized':
      return dependencyError('host-credentials-rejected', `${host} rejected the service's credentials`);
    default:
      return dependencyError('host-failed', `${host} failed to register the deploy key`);
  }
}

function vaultIssueError(error: VaultError): DomainError {
  if (error.kind === 'timeout') return dependencyError('vault-timeout', 'Vault did not answer in time');
  if (error.kind === 'unavailable') return dependencyError('vault-unavailable', 'Vault is unavailable');
  return dependencyError('vault-failed', 'Vault refused to store the key');
}

/** The error a caller of `issue` is given, naming the dependency that failed and none of its internals. */
export function toIssueError(error: unknown, repository: string): DomainError {
  if (error instanceof HostError) return hostIssueError(error, repository);
  if (error instanceof VaultError) return vaultIssueError(error);
  if (error instanceof QueueUnavailableError) {
    return dependencyError('queue-unavailable', 'the revoke queue is unavailable, so no key is handed out');
  }
  if (error instanceof DomainError) return error;
  return dependencyError('internal', 'issuing the key failed');
}

/** A short, secret-free description for `last_error` and audit details. */
export function describeFailure(error: unknown): string {
  if (error instanceof HostError)
    return `host ${error.hostId}: ${error.kind}${error.status ? ` (${error.status})` : ''}`;
  if (error instanceof VaultError) return `vault: ${error.kind}${error.status ? ` (${error.status})` : ''}`;
  if (error instanceof QueueUnavailableError) return 'queue: unavailable';
  if (error instanceof DomainError) return error.code;
  return 'internal error';
}

export function retryAfterOf(error: unknown): number | undefined {
  return error instanceof HostError ? error.retryAfterSeconds : undefined;
}
