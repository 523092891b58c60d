import type { DeployKeyRow, RevokeReason } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import type { Caller } from './caller.ts';
import { describeFailure, retryAfterOf } from './dependency-errors.ts';
import type { KeyAccess } from './key-access.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';
import { hasKubernetesGrant } from './kubernetes-grant.ts';
import { createRevokeRequests, eachAtOnce } from './revoke-request.ts';

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

export function createRevokeFlow(
  deps: KeyServiceDeps,
  access: KeyAccess,
  undoIssue: (row: DeployKeyRow, reason: string) => Promise<boolean>,
) {
  const { keys, hosts, secrets, clock, metrics } = deps;
  const requests = createRevokeRequests(deps);
  const requestRevoke = async (row: DeployKeyRow, reason: RevokeReason, actor: string) =>
    (await requests.requestRevoke(row, reason, actor)).row;

  const mayRevoke = (caller: Caller) => {
    if (caller.role === 'auditor') access.refuseRole(caller, 'auditors can read keys but not revoke them');
  };

  async function revokeKey(caller: Caller, keyId: string): Promise<DeployKeyRow> {
    mayRevoke(caller);
    const row = access.reachable(caller, keyId, await keys.findById(keyId));
    if (row.status !== 'pending' && row.status !== 'active' && row.status !== 'revoking') return row;
    return (await requests.requestEither(row, 'manual', caller.actor)).row;
  }

  async function completeJob(caller: Caller, jobId: string): Promise<DeployKeyRow[]> {
    mayRevoke(caller);
    const owners = access.scopeOf(caller);
    const live = await keys.liveKeysOfJob(jobId, owners);
    if (live.length === 0 && !(await keys.jobExists(jobId, owners))) {
      throw new RefusalError('job-not-found', `no keys were ever issued for job "${jobId}"`);
    }
    const done = await eachAtOnce(live, (row) => requests.requestEither(row, 'job-completed', caller.actor));
    return done.map((request) => request.row);
  }

  /**
   * The end of the platform job a key is bound to (a CI run or job, a Kubernetes Job or pod):
   * every live key bound to it is revoked, audited with what ended it. Only the keys this call
   * moved are returned, so two deliveries of one end (or a delivery and the sweep) count it once.
   */
  async function revokeBound(
    ref: string,
    reason: Extract<RevokeReason, 'job-ended' | 'job-deleted'>,
    actor: string,
    details: Record<string, unknown>,
  ): Promise<DeployKeyRow[]> {
    const bound = await keys.liveKeysBoundTo(ref);
    const done = await eachAtOnce(bound, (row) => requests.requestEither(row, reason, actor, details));
    return done.filter((request) => request.moved).map((request) => request.row);
  }

  /**
   * The worker's step: removes the host key and the Vault secret, then marks the key revoked.
   * Every part is idempotent, so running it twice does no harm and audits once.
   */
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
      if (row.expires_at > now) {
        // Fired early (clocks differ between machines): try again when the key is due.
        const wait = Math.ceil((row.expires_at.getTime() - now.getTime()) / 1000);
        throw new RevokeStepError(row.id, 'key is not due yet', wait, undefined);
      }
      row =
        (await keys.transition(
          row.id,
          ['active'],
          { status: 'revoking', revoke_reason: 'expired', revoke_requested_at: row.expires_at },
          { actor: deps.systemActor, action: 'key.revoke_requested', details: { reason: 'expired' } },
        )) ?? (await keys.findById(keyId));
      if (row?.status !== 'revoking') return 'already-done';
    }
    await removeEverywhere(row);
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

  function failPending(row: DeployKeyRow): never {
    throw new RevokeStepError(row.id, 'undo of an interrupted issue is incomplete', undefined, undefined);
  }

  async function removeEverywhere(row: DeployKeyRow): Promise<void> {
    const host = hosts.get(row.provider);
    try {
      if (!host) throw new Error(`host "${row.provider}" is no longer configured`);
      if (row.host_key_id) await host.deleteDeployKey(row.repository, row.host_key_id);
      // The wrapping token holds a copy of the secret: it must not unwrap once the key is revoked.
      if (row.wrap_accessor) await secrets.revokeWrapToken(row.wrap_accessor);
      if (row.vault_path) await secrets.destroy(row.vault_path, row.id);
      if (hasKubernetesGrant(row)) await secrets.removeKubernetesRead(row.id);
    } catch (error) {
      const failure = describeFailure(error);
      await keys.recordAttempt(row.id, failure);
      metrics.revokeFailures.inc({ provider: row.provider });
      const retryAfter = retryAfterOf(error);
      throw new RevokeStepError(row.id, failure, retryAfter, error);
    }
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

  return { requestRevoke, revokeKey, completeJob, revokeBound, performRevoke, revokeAttemptsSpent };
}
