import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.ts';
import type { DeployKeyRow } from '../db/schema.ts';
import { type GitHost, HostError, keyIdFromTitle, keyTitle } from '../hosts/git-host.ts';
import { AppError } from '../http/errors.ts';
import type { Caller } from './caller.ts';
import { describeFailure, QueueUnavailableError, toIssueError } from './dependency-errors.ts';
import type { AccessRequest, KeyServiceDeps } from './key-service-deps.ts';
import { hasKubernetesGrant, kubernetesGrantFor } from './kubernetes-grant.ts';
import { type DeliveryMode, resolveTtl, validateRepository } from './policy.ts';
import { generateDeployKeyPair } from './ssh-keypair.ts';

export interface IssueRequest {
  provider: string;
  repository: string;
  jobId: string;
  ttlSeconds?: number;
  delivery?: DeliveryMode;
  idempotencyKey?: string;
}

export interface IssueResult {
  row: DeployKeyRow;
  knownHosts: string[];
  privateKey?: string;
  wrapToken?: string;
  replayed: boolean;
}

const MAX_WRAP_TTL_SECONDS = 3_600;

// A repository the host does not have holds no key of ours; without this an issue for an unknown
// repository could never be undone and its row would stay `pending` for ever.
const listedOrNone = (host: GitHost, repository: string) =>
  host.listDeployKeys(repository).catch((error: unknown) => {
    if (error instanceof HostError && error.kind === 'not-found') return [];
    throw error;
  });

export function createIssueFlow(
  deps: KeyServiceDeps,
  /** Revokes a key whose job completed while it was being issued. */
  revokeRequestedWhileIssuing: (row: DeployKeyRow, actor: string) => Promise<DeployKeyRow>,
) {
  const { keys, hosts, secrets, queue, clock, logger, metrics } = deps;

  const hostFor = (provider: string): GitHost => {
    const host = hosts.get(provider);
    if (!host) {
      throw new AppError(
        'unknown-provider',
        400,
        `provider "${provider}" is not configured; configured providers: ${hosts.ids().join(', ') || 'none'}`,
        { extra: { providers: hosts.ids() } },
      );
    }
    return host;
  };

  /**
   * Removes whatever an interrupted issue left at the host (found by our title) and in Vault, then
   * ends the row `failed`. If anything cannot be removed now the row stays `pending`, so the
   * reconciler tries again; nothing is ever forgotten.
   */
  async function undoIssue(row: DeployKeyRow, reason: string, hostKeyId?: string): Promise<boolean> {
    const host = hosts.get(row.provider);
    try {
      await queue.cancel(row.id).catch(() => {});
      if (host) {
        const leftovers = hostKeyId
          ? [hostKeyId]
          : (await listedOrNone(host, row.repository))
              .filter((key) => keyIdFromTitle(key.title) === row.id)
              .map((key) => key.hostKeyId);
        for (const id of leftovers) await host.deleteDeployKey(row.repository, id);
      }
      if (row.vault_path) await secrets.destroy(row.vault_path, row.id);
      if (hasKubernetesGrant(row)) await secrets.removeKubernetesRead(row.id);
    } catch (error) {
      const failure = describeFailure(error);
      logger.warn(
        { keyId: row.id, failure },
        'undo of a failed issue is incomplete; the reconciler will retry',
      );
      await keys.recordAttempt(row.id, `undo: ${failure}`);
      return false;
    }
    await keys.transition(
      row.id,
      ['pending'],
      { status: 'failed', failure_reason: reason },
      { actor: deps.systemActor, action: 'key.issue_failed', details: { reason } },
    );
    return true;
  }

  async function replay(row: DeployKeyRow, requestHash: string): Promise<IssueResult> {
    if (row.request_hash !== requestHash) {
      throw new AppError(
        'idempotency-key-reused',
        409,
        'this Idempotency-Key was used with a different request',
        {
          extra: { keyId: row.id },
        },
      );
    }
    if (row.status === 'pending') {
      throw new AppError(
        'request-in-progress',
        409,
        'the first request with this Idempotency-Key is still running',
        {
          headers: { 'retry-after': '1' },
          extra: { keyId: row.id },
        },
      );
    }
    if (row.status === 'failed') {
      throw new AppError(
        'idempotent-request-failed',
        409,
        `the first request with this Idempotency-Key failed (${row.failure_reason ?? 'unknown'}); use a new key to try again`,
        { extra: { keyId: row.id } },
      );
    }
    const host = hostFor(row.provider);
    const knownHosts = await host.knownHosts().catch(() => []);
    const result: IssueResult = { row, knownHosts, replayed: true };
    if (row.status === 'active' && row.vault_path && row.delivery !== 'vault') {
      try {
        if (row.delivery === 'response') result.privateKey = (await secrets.read(row.vault_path))?.privateKey;
        if (row.delivery === 'wrapped') result.wrapToken = await secrets.wrap(row.vault_path, wrapTtl(row));
      } catch (error) {
        throw toIssueError(error, row.repository);
      }
    }
    return result;
  }

  const wrapTtl = (row: DeployKeyRow) =>
    Math.max(
      1,
      Math.min(MAX_WRAP_TTL_SECONDS, Math.floor((row.expires_at.getTime() - clock().getTime()) / 1000)),
    );

  async function authorizeRequest(caller: Caller, access: AccessRequest): Promise<string> {
    const decision = await deps.authorize(caller, access);
    if (decision.allowed) return decision.rule;
    await keys.recordEvent({
      actor: caller.actor,
      action: 'policy.denied',
      provider: access.provider,
      repository: access.repository,
      details: { reason: decision.reason, rule: decision.rule ?? null, request: access, caller: caller.id },
    });
    throw new AppError('forbidden-by-policy', 403, decision.message, {
      extra: { reason: decision.reason, ...(decision.rule ? { rule: decision.rule } : {}) },
    });
  }

  async function issue(caller: Caller, request: IssueRequest): Promise<IssueResult> {
    if (caller.role !== 'issuer') {
      throw new AppError(
        'role-not-allowed',
        403,
        `only callers with the issuer role get keys; this caller is ${caller.role}`,
      );
    }
    const host = hostFor(request.provider);
    validateRepository(host.type, request.repository);
    const ttlSeconds = resolveTtl(request.ttlSeconds, deps.settings.ttl);
    const delivery = request.delivery ?? 'vault';
    const rule = await authorizeRequest(caller, {
      provider: host.id,
      repository: request.repository,
      ttlSeconds,
      delivery,
    });
    const requestHash = createHash('sha256')
      .update(
        canonicalJson({
          provider: host.id,
          repository: request.repository,
          jobId: request.jobId,
          ttlSeconds,
          delivery,
        }),
      )
      .digest('hex');

    if (request.idempotencyKey) {
      const first = await keys.findByIdempotencyKey(caller.id, request.idempotencyKey);
      if (first) return replay(first, requestHash);
    }

    // A host with no room in its budget is answered before anything is recorded or created.
    try {
      host.checkCapacity(caller.id);
    } catch (error) {
      throw toIssueError(error, request.repository);
    }

    const id = randomUUID();
    const now = clock();
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000);
    const vaultPath = secrets.pathFor(request.jobId, host.id, request.repository);
    const inserted = await keys.insertPending(
      {
        id,
        provider: host.id,
        repository: request.repository,
        job_id: request.jobId,
        delivery,
        vault_path: vaultPath,
        caller: caller.id,
        caller_details: JSON.stringify(caller.details),
        created_at: now,
        expires_at: expiresAt,
        idempotency_key: request.idempotencyKey ?? null,
        request_hash: requestHash,
      },
      {
        actor: caller.actor,
        action: 'key.requested',
        details: { delivery, ttlSeconds, caller: caller.id, policy: { decision: 'allowed', rule } },
      },
    );
    if (inserted.outcome === 'idempotent-replay') return replay(inserted.row, requestHash);
    if (inserted.outcome === 'live-key-exists') {
      // Another caller's key is never named: callers must not learn each other's keys.
      if (inserted.row.caller !== caller.id) {
        throw new AppError(
          'key-already-active',
          409,
          `job "${request.jobId}" already holds a key for ${host.id} ${request.repository} issued to another caller; use another job id`,
        );
      }
      throw new AppError(
        'key-already-active',
        409,
        `job "${request.jobId}" already holds key ${inserted.row.id} for ${host.id} ${request.repository}; complete the job or revoke that key first`,
        { extra: { activeKeyId: inserted.row.id } },
      );
    }

    let hostKeyId: string | undefined;
    try {
      const knownHosts = await host.knownHosts();
      const pair = generateDeployKeyPair(keyTitle(id, request.jobId));
      const added = await host.addDeployKey({
        repository: request.repository,
        title: keyTitle(id, request.jobId),
        publicKey: pair.publicKey,
        expiresAt,
        caller: caller.id,
      });
      hostKeyId = added.hostKeyId;
      await secrets.write(
        vaultPath,
        {
          privateKey: pair.privateKey,
          publicKey: pair.publicKey,
          knownHosts: knownHosts.join('\n'),
          fingerprint: pair.fingerprint,
        },
        { keyId: id, expiresAt },
      );
      const grant = kubernetesGrantFor(caller, delivery, id, ttlSeconds);
      if (grant) await secrets.grantKubernetesRead(vaultPath, grant);
      const wrapToken =
        delivery === 'wrapped'
          ? await secrets.wrap(vaultPath, Math.min(ttlSeconds, MAX_WRAP_TTL_SECONDS))
          : undefined;
      await queue.scheduleRevoke(id, expiresAt).catch((error: unknown) => {
        throw new QueueUnavailableError(error);
      });
      const row = await keys.transition(
        id,
        ['pending'],
        {
          status: 'active',
          activated_at: clock(),
          host_key_id: hostKeyId,
          fingerprint: pair.fingerprint,
          public_key: pair.publicKey,
        },
        {
          actor: caller.actor,
          action: 'key.issued',
          details: { hostKeyId, fingerprint: pair.fingerprint, delivery },
        },
      );
      if (!row)
        throw new AppError('issue-interrupted', 503, 'the key was withdrawn while it was being issued');
      metrics.keysIssued.inc({ provider: host.id });
      const current = row.revoke_requested_at ? await revokeRequestedWhileIssuing(row, caller.actor) : row;
      return {
        row: current,
        knownHosts,
        replayed: false,
        ...(delivery === 'response' ? { privateKey: pair.privateKey } : {}),
        ...(wrapToken ? { wrapToken } : {}),
      };
    } catch (error) {
      const pending = await keys.findById(id);
      if (pending) await undoIssue(pending, describeFailure(error), hostKeyId);
      throw toIssueError(error, request.repository);
    }
  }

  return { issue, undoIssue, hostFor };
}
