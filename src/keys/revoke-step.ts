// The worker's side of a revoke: removes the host key and the Vault secret of a `revoking` key (or
// of an expired `active` one), then marks it revoked. Every part is idempotent, so a retried or
// duplicated job does no harm and audits once.
import type { DeployKeyRow } from '../db/schema.ts';
import { describeFailure, retryAfterOf } from './dependency-errors.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';
import { removeVaultRead } from './kubernetes-grant.ts';

export type RevokeOutcome = 'revoked' | 'already-done' | 'missing' | 'undone-pending';

export class RevokeStepError extends Error {
  constructor(
    readonly keyId: string,
    readonly failure: string,
    readonly retryAfterSeconds: number | undefined,
    cause: unknown,
  ) {
    super(`revoke of ${keyId} failed: ${failure}`, { cause });
    this.name = 'RevokeStepError';
  }
}

function failPending(row: DeployKeyRow): never {
  throw new RevokeStepError(row.id, 'undo of an interrupted issue is incomplete', undefined, undefined);
}

/** Removes the key at the host and everything of it in Vault; a failure is recorded on the row. */
async function removeEverywhere(deps: KeyServiceDeps, row: DeployKeyRow): Promise<void> {
  const { keys, hosts, secrets, metrics } = deps;
  const host = hosts.get(row.provider);
  try {
    if (!host) throw new Error(`host "${row.provider}" is no longer configured`);
    if (row.host_key_id) await host.deleteDeployKey(row.repository, row.host_key_id);
    // The wrapping token holds a copy of the secret: it must not unwrap once the key is revoked.
    if (row.wrap_accessor) await secrets.revokeWrapToken(row.wrap_accessor);
    if (row.vault_path) await secrets.destroy(row.vault_path, row.id);
    await removeVaultRead(deps, row);
  } catch (error) {
    const failure = describeFailure(error);
    await keys.recordAttempt(row.id, failure);
    metrics.revokeFailures.inc({ provider: row.provider });
    throw new RevokeStepError(row.id, failure, retryAfterOf(error), error);
  }
}

/** An `active` key at its expiry moves to `revoking`; one not yet due is tried again when it is. */
async function expire(deps: KeyServiceDeps, row: DeployKeyRow, now: Date): Promise<DeployKeyRow | undefined> {
  if (row.expires_at > now) {
    // Fired early (clocks differ between machines): try again when the key is due.
    const wait = Math.ceil((row.expires_at.getTime() - now.getTime()) / 1000);
    throw new RevokeStepError(row.id, 'key is not due yet', wait, undefined);
  }
  return (
    (await deps.keys.transition(
      row.id,
      ['active'],
      { status: 'revoking', revoke_reason: 'expired', revoke_requested_at: row.expires_at },
      { actor: deps.systemActor, action: 'key.revoke_requested', details: { reason: 'expired' } },
    )) ?? (await deps.keys.findById(row.id))
  );
}

export function createRevokeStep(
  deps: KeyServiceDeps,
  undoIssue: (row: DeployKeyRow, reason: string) => Promise<boolean>,
) {
  const { keys, clock, metrics } = deps;

  async function performRevoke(keyId: string): Promise<RevokeOutcome> {
    let row = await keys.findById(keyId);
    if (!row) return 'missing';
    if (row.status === 'revoked' || row.status === 'failed') return 'already-done';
    const now = clock();
    if (row.status === 'pending') {
      const stuckSince = now.getTime() - deps.settings.pendingTimeoutSeconds * 1000;
      if (row.created_at.getTime() > stuckSince) {
        // Still being issued: look again shortly rather than race the issue flow.
        throw new RevokeStepError(row.id, 'key is still being issued', 1, undefined);
      }
      return (await undoIssue(row, 'interrupted before it was issued')) ? 'undone-pending' : failPending(row);
    }
    if (row.status === 'active') {
      row = await expire(deps, row, now);
      if (row?.status !== 'revoking') return 'already-done';
    }
    await removeEverywhere(deps, row);
    const revoked = await keys.transition(
      row.id,
      ['revoking'],
      { status: 'revoked', revoked_at: clock(), last_error: null },
      { actor: deps.systemActor, action: 'key.revoked', details: { reason: row.revoke_reason } },
    );
    if (!revoked) return 'already-done';
    const reason = revoked.revoke_reason ?? 'expired';
    metrics.keysRevoked.inc({ reason });
    const trigger = revoked.revoke_requested_at ?? revoked.expires_at;
    metrics.revokeLatency.observe({ reason }, Math.max(0, (clock().getTime() - trigger.getTime()) / 1000));
    return 'revoked';
  }

  /** Called when a revoke job has spent its attempts: audited, and left `revoking` for the reconciler. */
  async function revokeAttemptsSpent(keyId: string, failure: string): Promise<void> {
    const row = await keys.findById(keyId);
    if (row?.status !== 'revoking') return;
    await keys.transition(
      keyId,
      ['revoking'],
      { last_error: failure },
      { actor: deps.systemActor, action: 'key.revoke_failed', details: { failure, attempts: row.attempts } },
    );
  }

  return { performRevoke, revokeAttemptsSpent };
}
