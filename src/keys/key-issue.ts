import type { KeyAccess } from '../auth/access.ts';
import type { DeployKeyRow } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import type { GitHost } from '../hosts/git-host.ts';
import type { Delivery, KeyBinding } from '../model/schemas.ts';
import type { Caller } from './caller.ts';
import { describeFailure, toIssueError } from './dependency-errors.ts';
import { activation, hostLookup, prepare, provision, recordPending } from './key-issue-steps.ts';
import { type Created, createIssueSupport, type IssueResult } from './key-issue-support.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';

export type { IssueResult } from './key-issue-support.ts';

export interface IssueRequest {
  provider: string;
  repository: string;
  jobId: string;
  ttlSeconds?: number;
  delivery?: Delivery;
  idempotencyKey?: string;
  /** The platform job the key follows; by default the one the caller's verified claims name. */
  binding?: KeyBinding;
}

export function createIssueFlow(
  deps: KeyServiceDeps,
  access: KeyAccess,
  /** Revokes a key whose revoke was requested while it was being issued. */
  revokeRequestedWhileIssuing: (row: DeployKeyRow, actor: string) => Promise<DeployKeyRow>,
) {
  const { keys, clock, metrics } = deps;
  const hostFor = hostLookup(deps.hosts);
  const { undoIssue, replay } = createIssueSupport(deps, hostFor);

  async function issue(caller: Caller, request: IssueRequest): Promise<IssueResult> {
    const prepared = await prepare(deps, access, hostFor, caller, request);
    if (request.idempotencyKey) {
      const first = await keys.findByIdempotencyKey(prepared.allowed.owner, request.idempotencyKey);
      if (first) return replay(first, prepared.requestHash);
    }
    // A host with no room in its budget, or an App not installed on the owner, is answered before
    // anything is recorded or created.
    try {
      prepared.host.checkCapacity(caller.id);
      await prepared.host.checkAccess(request.repository);
    } catch (error) {
      throw toIssueError(error, request.repository);
    }
    const pending = await recordPending(deps, replay, caller, request, prepared);
    if ('row' in pending) return pending;
    return activate(caller, prepared.host, pending, prepared.ttlSeconds);
  }

  /**
   * Creates the key at the host and in Vault for a pending row, and makes it active. Whatever was
   * created is removed again if any step fails.
   */
  async function activate(
    caller: Caller,
    host: GitHost,
    pending: DeployKeyRow,
    ttlSeconds: number,
  ): Promise<IssueResult> {
    const created: Created = {};
    try {
      const provisioned = await provision(deps, { caller, host, pending, ttlSeconds, created });
      const { knownHosts, pair, wrapped } = provisioned;
      const { delivery } = pending;
      const moves = activation(caller, clock(), pending, created, provisioned);
      const row = await keys.transition(pending.id, ['pending'], ...moves);
      if (!row)
        throw new RefusalError('issue-interrupted', 'the key was withdrawn while it was being issued');
      metrics.keysIssued.inc({ provider: host.id });
      const current = row.revoke_requested_at ? await revokeRequestedWhileIssuing(row, caller.actor) : row;
      return {
        row: current,
        knownHosts,
        replayed: false,
        ...(delivery === 'response' ? { privateKey: pair.privateKey } : {}),
        ...(wrapped ? { wrapToken: wrapped.token, wrapAccessor: wrapped.accessor } : {}),
      };
    } catch (error) {
      const stillPending = await keys.findById(pending.id);
      if (stillPending) await undoIssue(stillPending, describeFailure(error), created);
      throw toIssueError(error, pending.repository);
    }
  }

  return { issue, undoIssue, hostFor };
}
