import type { DeployKeyRow } from '../db/schema.ts';
import type { RevokeReason } from '../model/schemas.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';

/** The key as it is after a revoke request, and whether this request's guarded change applied. */
export interface RevokeRequest {
  row: DeployKeyRow;
  moved: boolean;
}

/**
 * Runs `step` for every key at once, so their audited changes share commits (group commit); every
 * key is attempted even when one fails, and the first failure is thrown once all have settled.
 */
export async function eachAtOnce<T>(
  rows: DeployKeyRow[],
  step: (row: DeployKeyRow) => Promise<T>,
): Promise<T[]> {
  const settled = await Promise.allSettled(rows.map(step));
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
}

export function createRevokeRequests(deps: Pick<KeyServiceDeps, 'keys' | 'queue' | 'clock' | 'logger'>) {
  const { keys, queue, clock, logger } = deps;

  /** Marks the key `revoking` (audited once) and makes its revoke job run now. */
  async function requestRevoke(
    row: DeployKeyRow,
    reason: RevokeReason,
    actor: string,
    details: Record<string, unknown> = {},
  ): Promise<RevokeRequest> {
    const moved = await keys.transition(
      row.id,
      ['active'],
      { status: 'revoking', revoke_reason: reason, revoke_requested_at: clock() },
      { actor, action: 'key.revoke_requested', details: { ...details, reason } },
    );
    const current = moved ?? (await keys.findById(row.id)) ?? row;
    if (current.status === 'revoking') {
      // If Redis cannot take the job now, the key is `revoking` in Postgres and the reconciler
      // starts it on its next pass; the caller still gets an honest answer.
      await queue.revokeNow(row.id).catch((error: unknown) => {
        logger.warn(
          { keyId: row.id, err: (error as Error).message },
          'could not enqueue revoke; reconciler will',
        );
      });
    }
    return { row: current, moved: moved !== undefined };
  }

  /**
   * A key still being issued cannot be revoked yet: the request is recorded on the row (audited),
   * and the issue flow revokes the key the moment it becomes active. If it became active
   * meanwhile, it is revoked now.
   */
  async function revokeWhenIssued(
    row: DeployKeyRow,
    reason: RevokeReason,
    actor: string,
    details: Record<string, unknown> = {},
  ): Promise<RevokeRequest> {
    const marked = await keys.transition(
      row.id,
      ['pending'],
      { revoke_reason: reason, revoke_requested_at: clock() },
      { actor, action: 'key.revoke_requested', details: { ...details, reason, whileIssuing: true } },
    );
    if (marked) return { row: marked, moved: true };
    const current = (await keys.findById(row.id)) ?? row;
    return current.status === 'active'
      ? requestRevoke(current, reason, actor, details)
      : { row: current, moved: false };
  }

  /** Either request, as the key's status asks for. */
  const requestEither = (
    row: DeployKeyRow,
    reason: RevokeReason,
    actor: string,
    details?: Record<string, unknown>,
  ) =>
    row.status === 'pending'
      ? revokeWhenIssued(row, reason, actor, details)
      : requestRevoke(row, reason, actor, details);

  return { requestRevoke, requestEither };
}
