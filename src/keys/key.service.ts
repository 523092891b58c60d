import { createKeyAccess } from '../auth/access.ts';
import type { Caller } from './caller.ts';
import type { DeployKeyRow, KeyListFilter } from './key.repository.ts';
import { createIssueFlow } from './key-issue.ts';
import { createRevokeFlow } from './key-revoke.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';

export type { IssueRequest, IssueResult } from './key-issue.ts';
export type { RevokeOutcome } from './key-revoke.ts';

export function createKeyService(deps: KeyServiceDeps) {
  const access = createKeyAccess(deps.ownersOf);
  const issueFlow = createIssueFlow(deps, access, (row, actor) =>
    revokeFlow.requestRevoke(row, row.revoke_reason ?? 'job-completed', actor),
  );
  const revokeFlow = createRevokeFlow(deps, access, (row, reason) => issueFlow.undoIssue(row, reason));

  async function getKey(caller: Caller, id: string): Promise<DeployKeyRow> {
    access.require(caller, 'read');
    return access.reachable(caller, id, await deps.keys.findById(id));
  }

  function listKeys(caller: Caller, filter: KeyListFilter): Promise<DeployKeyRow[]> {
    access.require(caller, 'list');
    const owners = access.scopeOf(caller);
    if (!owners) return deps.keys.list(filter);
    // An issuer sees its own keys whatever `caller` it names.
    const { caller: _named, ...ownFilter } = filter;
    return deps.keys.list({ ...ownFilter, owners });
  }

  return {
    issue: issueFlow.issue,
    undoIssue: issueFlow.undoIssue,
    getKey,
    listKeys,
    revokeKey: revokeFlow.revokeKey,
    completeJob: revokeFlow.completeJob,
    revokeBound: revokeFlow.revokeBound,
    requestRevoke: revokeFlow.requestRevoke,
    performRevoke: revokeFlow.performRevoke,
    revokeAttemptsSpent: revokeFlow.revokeAttemptsSpent,
  };
}

export type KeyService = ReturnType<typeof createKeyService>;
