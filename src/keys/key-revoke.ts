import type { KeyAccess } from '../auth/access.ts';
import type { DeployKeyRow } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import type { RevokeReason } from '../model/schemas.ts';
import type { Caller } from './caller.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';
import { createRevokeRequests, eachAtOnce } from './revoke-request.ts';
import { createRevokeStep } from './revoke-step.ts';

export { type RevokeOutcome, RevokeStepError } from './revoke-step.ts';

export function createRevokeFlow(
  deps: KeyServiceDeps,
  access: KeyAccess,
  undoIssue: (row: DeployKeyRow, reason: string) => Promise<boolean>,
) {
  const { keys } = deps;
  const requests = createRevokeRequests(deps);
  const requestRevoke = async (row: DeployKeyRow, reason: RevokeReason, actor: string) =>
    (await requests.requestRevoke(row, reason, actor)).row;

  async function revokeKey(caller: Caller, keyId: string): Promise<DeployKeyRow> {
    access.require(caller, 'revoke');
    const row = access.reachable(caller, keyId, await keys.findById(keyId));
    if (row.status !== 'pending' && row.status !== 'active' && row.status !== 'revoking') return row;
    return (await requests.requestEither(row, 'manual', caller.actor)).row;
  }

  async function completeJob(caller: Caller, jobId: string): Promise<DeployKeyRow[]> {
    access.require(caller, 'complete');
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

  const { performRevoke, revokeAttemptsSpent } = createRevokeStep(deps, undoIssue);

  return { requestRevoke, revokeKey, completeJob, revokeBound, performRevoke, revokeAttemptsSpent };
}
