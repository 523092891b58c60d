import { AppError } from '../http/errors.ts';
import type { Caller } from './caller.ts';
import type { DeployKeyRow, KeyListFilter } from './key.repository.ts';
import { createIssueFlow } from './key-issue.ts';
import { createRevokeFlow } from './key-revoke.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';

export type { IssueRequest, IssueResult } from './key-issue.ts';
export type { RevokeOutcome } from './key-revoke.ts';

export function createKeyService(deps: KeyServiceDeps) {
  const issueFlow = createIssueFlow(deps, (row, actor) =>
    revokeFlow.requestRevoke(row, row.revoke_reason ?? 'job-completed', actor),
  );
  const revokeFlow = createRevokeFlow(deps, (row, reason) => issueFlow.undoIssue(row, reason));

  /** Issuers see only their own keys; auditors and admins see every key. */
  const scopeOf = (caller: Caller) => (caller.role === 'issuer' ? caller.id : undefined);

  async function getKey(caller: Caller, id: string): Promise<DeployKeyRow> {
    const row = await deps.keys.findById(id);
    if (!row || (scopeOf(caller) && row.caller !== caller.id))
      throw new AppError('key-not-found', 404, `no key ${id}`);
    return row;
  }

  function listKeys(caller: Caller, filter: KeyListFilter): Promise<DeployKeyRow[]> {
    return deps.keys.list({ ...filter, caller: scopeOf(caller) ?? filter.caller });
  }

  return {
    issue: issueFlow.issue,
    undoIssue: issueFlow.undoIssue,
    getKey,
    listKeys,
    revokeKey: revokeFlow.revokeKey,
    completeJob: revokeFlow.completeJob,
    requestRevoke: revokeFlow.requestRevoke,
    performRevoke: revokeFlow.performRevoke,
    revokeAttemptsSpent: revokeFlow.revokeAttemptsSpent,
  };
}

export type KeyService = ReturnType<typeof createKeyService>;
