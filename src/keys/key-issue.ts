import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.ts';
import type { DeployKeyRow, NewDeployKeyRow } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import { type GitHost, keyTitle } from '../hosts/git-host.ts';
import { bindingOfCaller, bindingRefs, type KeyBinding } from './binding.ts';
import type { Caller } from './caller.ts';
import { describeFailure, QueueUnavailableError, toIssueError } from './dependency-errors.ts';
import type { KeyAccess } from './key-access.ts';
import {
  type Created,
  createAtHostAndInVault,
  createIssueSupport,
  type IssueResult,
} from './key-issue-support.ts';
import type { AccessRequest, KeyServiceDeps } from './key-service-deps.ts';
import { kubernetesGrantFor } from './kubernetes-grant.ts';
import { ownerScope, repositoryKey } from './ownership.ts';
import { type DeliveryMode, resolveTtl, validateRepository } from './policy.ts';
import { generateDeployKeyPair } from './ssh-keypair.ts';

export type { IssueResult } from './key-issue-support.ts';

export interface IssueRequest {
  provider: string;
  repository: string;
  jobId: string;
  ttlSeconds?: number;
  delivery?: DeliveryMode;
  idempotencyKey?: string;
  /** The platform job the key follows; by default the one the caller's verified claims name. */
  binding?: KeyBinding;
}

const MAX_WRAP_TTL_SECONDS = 3_600;

/** What the access policy decided for an allowed request. */
interface Allowed {
  rule: string;
  owner: string;
  maxActiveKeys?: number;
}

export function createIssueFlow(
  deps: KeyServiceDeps,
  access: KeyAccess,
  /** Revokes a key whose revoke was requested while it was being issued. */
  revokeRequestedWhileIssuing: (row: DeployKeyRow, actor: string) => Promise<DeployKeyRow>,
) {
  const { keys, hosts, secrets, queue, clock, metrics } = deps;

  const hostFor = (provider: string): GitHost => {
    const host = hosts.get(provider);
    if (!host) {
      throw new RefusalError(
        'unknown-provider',
        `provider "${provider}" is not configured; configured providers: ${hosts.ids().join(', ') || 'none'}`,
        { extra: { providers: hosts.ids() } },
      );
    }
    return host;
  };
  const { undoIssue, replay } = createIssueSupport(deps, hostFor);

  const policyRefusal = (
    caller: Caller,
    request: AccessRequest,
    reason: string,
    message: string,
    rule?: string,
  ) =>
    new RefusalError('forbidden-by-policy', message, {
      extra: { reason, ...(rule ? { rule } : {}) },
      denial: {
        actor: caller.actor,
        action: 'policy.denied',
        reason,
        details: { rule: rule ?? null, request, caller: caller.id },
        key: { provider: request.provider, repository: request.repository },
      },
    });

  async function authorizeRequest(caller: Caller, request: AccessRequest): Promise<Allowed> {
    const decision = await deps.authorize(caller, request);
    if (decision.allowed) return decision;
    throw policyRefusal(caller, request, decision.reason, decision.message, decision.rule);
  }

  /** The pending row, written atomically with the live-key limit; or the answer that replaces it. */
  async function recordPending(
    caller: Caller,
    request: AccessRequest & { jobId: string },
    allowed: Allowed,
    row: NewDeployKeyRow,
  ): Promise<DeployKeyRow | IssueResult> {
    const inserted = await keys.insertPending(
      row,
      {
        actor: caller.actor,
        action: 'key.requested',
        details: {
          delivery: request.delivery,
          ttlSeconds: request.ttlSeconds,
          caller: caller.id,
          policy: { decision: 'allowed', rule: allowed.rule },
        },
      },
      allowed.maxActiveKeys === undefined
        ? undefined
        : { caller: caller.id, maxActiveKeys: allowed.maxActiveKeys },
    );
    switch (inserted.outcome) {
      case 'inserted':
        return inserted.row;
      case 'idempotent-replay':
        return replay(inserted.row, row.request_hash ?? '');
      case 'limit-reached':
        throw policyRefusal(
          caller,
          request,
          'too-many-active-keys',
          `too-many-active-keys: ${inserted.activeKeys} keys are active, the limit is ${allowed.maxActiveKeys} (rule ${allowed.rule})`,
          allowed.rule,
        );
      case 'live-key-exists':
        throw new RefusalError(
          'key-already-active',
          `job "${request.jobId}" already holds key ${inserted.row.id} for ${request.provider} ${inserted.row.repository}; complete the job or revoke that key first`,
          { extra: { activeKeyId: inserted.row.id } },
        );
    }
  }

  async function issue(caller: Caller, request: IssueRequest): Promise<IssueResult> {
    if (caller.role !== 'issuer') {
      access.refuseRole(caller, `only callers with the issuer role get keys; this caller is ${caller.role}`);
    }
    const host = hostFor(request.provider);
    validateRepository(host.type, request.repository);
    const ttlSeconds = resolveTtl(request.ttlSeconds, deps.settings.ttl);
    const delivery = request.delivery ?? 'vault';
    const identity = repositoryKey(request.repository);
    const allowed = await authorizeRequest(caller, {
      provider: host.id,
      repository: request.repository,
      ttlSeconds,
      delivery,
    });
    const requestHash = createHash('sha256')
      .update(
        canonicalJson({
          provider: host.id,
          repository: identity,
          jobId: request.jobId,
          ttlSeconds,
          delivery,
        }),
      )
      .digest('hex');

    if (request.idempotencyKey) {
      const first = await keys.findByIdempotencyKey(allowed.owner, request.idempotencyKey);
      if (first) return replay(first, requestHash);
    }

    // A host with no room in its budget, or an App not installed on the owner, is answered before
    // anything is recorded or created.
    try {
      host.checkCapacity(caller.id);
      await host.checkAccess(request.repository);
    } catch (error) {
      throw toIssueError(error, request.repository);
    }

    const id = randomUUID();
    const now = clock();
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000);
    const binding = request.binding ?? bindingOfCaller(caller);
    const vaultPath = secrets.pathFor(ownerScope(allowed.owner), request.jobId, host.id, identity);
    const pending = await recordPending(
      caller,
      { provider: host.id, repository: request.repository, ttlSeconds, delivery, jobId: request.jobId },
      allowed,
      {
        id,
        provider: host.id,
        repository: request.repository,
        repository_key: identity,
        job_id: request.jobId,
        delivery,
        vault_path: vaultPath,
        caller: caller.id,
        owner: allowed.owner,
        caller_details: JSON.stringify(caller.details),
        binding: binding ? JSON.stringify(binding) : null,
        binding_refs: binding ? bindingRefs(binding) : [],
        created_at: now,
        expires_at: expiresAt,
        idempotency_key: request.idempotencyKey ?? null,
        request_hash: requestHash,
      },
    );
    if ('row' in pending) return pending;
    return activate(caller, host, pending, ttlSeconds);
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
    const { id, job_id: jobId, repository, delivery, expires_at: expiresAt } = pending;
    const vaultPath = pending.vault_path ?? '';
    const created: Created = {};
    try {
      const knownHosts = await host.knownHosts();
      const pair = generateDeployKeyPair(keyTitle(id, jobId));
      await createAtHostAndInVault({
        host,
        secrets,
        pending,
        pair,
        knownHosts,
        callerId: caller.id,
        created,
      });
      const grant = kubernetesGrantFor(caller, delivery, id, ttlSeconds, deps.settings.kubernetesAudience);
      if (grant) await secrets.grantKubernetesRead(vaultPath, grant);
      const wrapped =
        delivery === 'wrapped'
          ? await secrets.wrap(vaultPath, Math.min(ttlSeconds, MAX_WRAP_TTL_SECONDS))
          : undefined;
      if (wrapped) created.wrapAccessor = wrapped.accessor;
      await queue.scheduleRevoke(id, expiresAt).catch((error: unknown) => {
        throw new QueueUnavailableError(error);
      });
      const row = await keys.transition(
        id,
        ['pending'],
        {
          status: 'active',
          activated_at: clock(),
          host_key_id: created.hostKeyId,
          fingerprint: pair.fingerprint,
          public_key: pair.publicKey,
          wrap_accessor: wrapped?.accessor ?? null,
        },
        {
          actor: caller.actor,
          action: 'key.issued',
          details: { hostKeyId: created.hostKeyId, fingerprint: pair.fingerprint, delivery },
        },
      );
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
      const stillPending = await keys.findById(id);
      if (stillPending) await undoIssue(stillPending, describeFailure(error), created);
      throw toIssueError(error, repository);
    }
  }

  return { issue, undoIssue, hostFor };
}
