// Translates host, Vault and queue failures into answers a caller can act on, naming the
// dependency that failed and never its internals.
import { DomainError } from '../errors.ts';
import { HostError } from '../hosts/git-host.ts';
import { AppError } from '../http/errors.ts';
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

export function toIssueError(error: unknown, repository: string): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof HostError) {
    const host = error.hostId;
    switch (error.kind) {
      case 'not-found':
        return new AppError(
          'repository-not-found',
          404,
          `repository "${repository}" does not exist on ${host}, or the service cannot manage its deploy keys`,
        );
      case 'app-not-installed':
        return new AppError(
          'app-not-installed',
          404,
          `the service's GitHub App on ${host} is not installed on the owner of "${repository}"; install it there first`,
        );
      case 'forbidden':
        return new AppError(
          'repository-forbidden',
          403,
          `${host} does not allow deploy keys on "${repository}"`,
        );
      case 'rate-limited': {
        const retryAfter = String(Math.max(1, Math.ceil(error.retryAfterSeconds ?? 60)));
        return new AppError('host-rate-limited', 503, `${host} is rate limiting the service; retry later`, {
          expose: true,
          headers: { 'retry-after': retryAfter },
        });
      }
      case 'timeout':
        return new AppError('host-timeout', 504, `${host} did not answer in time`, { expose: true });
      case 'unauthorized':
        return new AppError('host-credentials-rejected', 502, `${host} rejected the service's credentials`, {
          expose: true,
        });
      default:
        return new AppError('host-failed', 502, `${host} failed to register the deploy key`, {
          expose: true,
        });
    }
  }
  if (error instanceof VaultError) {
    if (error.kind === 'timeout')
      return new AppError('vault-timeout', 504, 'Vault did not answer in time', { expose: true });
    if (error.kind === 'unavailable') {
      return new AppError('vault-unavailable', 503, 'Vault is unavailable', {
        expose: true,
        headers: { 'retry-after': '5' },
      });
    }
    return new AppError('vault-failed', 502, 'Vault refused to store the key', { expose: true });
  }
  if (error instanceof QueueUnavailableError) {
    return new AppError(
      'queue-unavailable',
      503,
      'the revoke queue is unavailable, so no key is handed out',
      {
        expose: true,
        headers: { 'retry-after': '5' },
      },
    );
  }
  return new AppError('internal', 500, 'issuing the key failed');
}

/** A short, secret-free description for `last_error` and audit details. */
export function describeFailure(error: unknown): string {
  if (error instanceof HostError)
    return `host ${error.hostId}: ${error.kind}${error.status ? ` (${error.status})` : ''}`;
  if (error instanceof VaultError) return `vault: ${error.kind}${error.status ? ` (${error.status})` : ''}`;
  if (error instanceof QueueUnavailableError) return 'queue: unavailable';
  if (error instanceof AppError) return `${error.code}`;
  return 'internal error';
}

export function retryAfterOf(error: unknown): number | undefined {
  return error instanceof HostError ? error.retryAfterSeconds : undefined;
}
