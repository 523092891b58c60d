// The steps of an issue, each on its own: prepare (check the caller and the request, ask the access
// policy), record the pending row, and provision what the key needs at the host and in Vault. The
// flow that runs them and undoes what a failed one left is in key-issue.ts.
import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.ts';
import type { KeyAccess } from '../auth/access.ts';
import type { DeployKeyRow, DeployKeyUpdate, NewDeployKeyRow } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import { type GitHost, keyTitle } from '../hosts/git-host.ts';
import type { PolicyRequest } from '../model/access.ts';
import type { Delivery } from '../model/schemas.ts';
import { bindingOfCaller, bindingRefs } from './binding.ts';
import type { Caller } from './caller.ts';
import { QueueUnavailableError } from './dependency-errors.ts';
import type { KeyAudit } from './key.repository.ts';
import type { IssueRequest } from './key-issue.ts';
import { type Created, createAtHostAndInVault, type IssueResult } from './key-issue-support.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';
import { grantVaultRead } from './kubernetes-grant.ts';
import { ownerScope, repositoryKey } from './ownership.ts';
import { resolveTtl, validateRepository } from './policy.ts';
import { generateDeployKeyPair } from './ssh-keypair.ts';

const MAX_WRAP_TTL_SECONDS = 3_600;

/** What the access policy decided for an allowed request. */
export interface Allowed {
  rule: string;
  owner: string;
  maxActiveKeys?: number;
}

/** A request checked and resolved: its host, TTL, delivery and repository identity, and who owns it. */
export interface Prepared {
  host: GitHost;
  ttlSeconds: number;
  delivery: Delivery;
  identity: string;
  requestHash: string;
  allowed: Allowed;
}

/** The request's content as a retry must repeat it, hashed for Idempotency-Key checks. */
function requestHashOf(prepared: Omit<Prepared, 'requestHash' | 'allowed'>, jobId: string): string {
  const { host, identity, ttlSeconds, delivery } = prepared;
  const content = { provider: host.id, repository: identity, jobId, ttlSeconds, delivery };
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

export function hostLookup(hosts: KeyServiceDeps['hosts']) {
  return (provider: string): GitHost => {
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
}

function policyRefusal(
  caller: Caller,
  request: PolicyRequest,
  reason: string,
  message: string,
  rule?: string,
) {
  return new RefusalError('forbidden-by-policy', message, {
    extra: { reason, ...(rule ? { rule } : {}) },
    denial: {
      actor: caller.actor,
      action: 'policy.denied',
      reason,
      details: { rule: rule ?? null, request, caller: caller.id },
      key: { provider: request.provider, repository: request.repository },
    },
  });
}

/**
 * Where the key's secret goes: a Job's key (only the controller binds one) in the Job's own folder,
 * which its manifest can name in advance; any other key under its owner's scope.
 */
function vaultPathOf(
  deps: KeyServiceDeps,
  request: IssueRequest,
  key: { owner: string; provider: string; delivery: Delivery; identity: string },
): string {
  const { binding } = request;
  if (binding?.kind === 'kubernetes-job' && key.delivery === 'vault') {
    return deps.secrets.jobPathFor(binding.namespace, binding.name, key.provider, key.identity);
  }
  return deps.secrets.pathFor(ownerScope(key.owner), request.jobId, key.provider, key.identity);
}

/** The pending row of a prepared request, as it is recorded before anything is created. */
function pendingRowOf(
  deps: KeyServiceDeps,
  caller: Caller,
  request: IssueRequest,
  prepared: Prepared,
): NewDeployKeyRow {
  const { host, identity, ttlSeconds, delivery, allowed, requestHash } = prepared;
  const now = deps.clock();
  const binding = request.binding ?? bindingOfCaller(caller);
  return {
    id: randomUUID(),
    provider: host.id,
    repository: request.repository,
    repository_key: identity,
    job_id: request.jobId,
    delivery,
    vault_path: vaultPathOf(deps, request, { owner: allowed.owner, provider: host.id, delivery, identity }),
    caller: caller.id,
    owner: allowed.owner,
    caller_details: JSON.stringify(caller.details),
    binding: binding ? JSON.stringify(binding) : null,
    binding_refs: binding ? bindingRefs(binding) : [],
    created_at: now,
    expires_at: new Date(now.getTime() + ttlSeconds * 1000),
    idempotency_key: request.idempotencyKey ?? null,
    request_hash: requestHash,
  };
}

interface Provision {
  caller: Caller;
  host: GitHost;
  pending: DeployKeyRow;
  ttlSeconds: number;
  /** Filled in as things are created, so a failure knows what to remove. */
  created: Created;
}

/** Creates the key pair, the host key and the Vault secret (and its grant or wrap), and the revoke job. */
export async function provision(
  deps: KeyServiceDeps,
  { caller, host, pending, ttlSeconds, created }: Provision,
) {
  const { id, job_id: jobId, delivery, expires_at: expiresAt } = pending;
  const vaultPath = pending.vault_path ?? '';
  const knownHosts = await host.knownHosts();
  const pair = generateDeployKeyPair(keyTitle(id, jobId));
  const { secrets } = deps;
  await createAtHostAndInVault({ host, secrets, pending, pair, knownHosts, callerId: caller.id, created });
  await grantVaultRead(deps, caller, pending, ttlSeconds);
  const wrapped =
    delivery === 'wrapped'
      ? await secrets.wrap(vaultPath, Math.min(ttlSeconds, MAX_WRAP_TTL_SECONDS))
      : undefined;
  if (wrapped) created.wrapAccessor = wrapped.accessor;
  await deps.queue.scheduleRevoke(id, expiresAt).catch((error: unknown) => {
    throw new QueueUnavailableError(error);
  });
  return { knownHosts, pair, wrapped };
}

type Replay = (row: DeployKeyRow, requestHash: string) => Promise<IssueResult>;

/** Checks the caller and the request against the configuration and the access policy. */
export async function prepare(
  deps: KeyServiceDeps,
  access: KeyAccess,
  hostFor: (provider: string) => GitHost,
  caller: Caller,
  request: IssueRequest,
): Promise<Prepared> {
  access.require(caller, 'issue');
  const host = hostFor(request.provider);
  validateRepository(host.type, request.repository);
  const ttlSeconds = resolveTtl(request.ttlSeconds, deps.settings.ttl);
  const delivery = request.delivery ?? 'vault';
  const accessRequest = { provider: host.id, repository: request.repository, ttlSeconds, delivery };
  const decision = await deps.authorize(caller, accessRequest);
  if (!decision.allowed) {
    throw policyRefusal(caller, accessRequest, decision.reason, decision.message, decision.rule);
  }
  const resolved = { host, ttlSeconds, delivery, identity: repositoryKey(request.repository) };
  return { ...resolved, requestHash: requestHashOf(resolved, request.jobId), allowed: decision };
}

/** The pending row, written atomically with the live-key limit; or the answer that replaces it. */
export async function recordPending(
  deps: KeyServiceDeps,
  replay: Replay,
  caller: Caller,
  request: IssueRequest,
  prepared: Prepared,
): Promise<DeployKeyRow | IssueResult> {
  const { host, ttlSeconds, delivery, allowed } = prepared;
  const { keys } = deps;
  const row = pendingRowOf(deps, caller, request, prepared);
  const inserted = await keys.insertPending(
    row,
    {
      actor: caller.actor,
      action: 'key.requested',
      details: {
        delivery,
        ttlSeconds,
        caller: caller.id,
        policy: { decision: 'allowed', rule: allowed.rule },
      },
    },
    allowed.maxActiveKeys === undefined
      ? undefined
      : { caller: caller.id, maxActiveKeys: allowed.maxActiveKeys },
  );
  const { repository, jobId } = request;
  switch (inserted.outcome) {
    case 'inserted':
      return inserted.row;
    case 'idempotent-replay':
      return replay(inserted.row, prepared.requestHash);
    case 'limit-reached':
      throw policyRefusal(
        caller,
        { provider: host.id, repository, ttlSeconds, delivery, jobId } as PolicyRequest,
        'too-many-active-keys',
        `too-many-active-keys: ${inserted.activeKeys} keys are active, the limit is ${allowed.maxActiveKeys} (rule ${allowed.rule})`,
        allowed.rule,
      );
    case 'live-key-exists':
      throw new RefusalError(
        'key-already-active',
        `job "${jobId}" already holds key ${inserted.row.id} for ${host.id} ${inserted.row.repository}; complete the job or revoke that key first`,
        { extra: { activeKeyId: inserted.row.id } },
      );
  }
}

/** The move to `active` once everything exists, and the `key.issued` event that records it. */
export function activation(
  caller: Caller,
  now: Date,
  pending: DeployKeyRow,
  created: Created,
  {
    pair,
    wrapped,
  }: { pair: { fingerprint: string; publicKey: string }; wrapped: { accessor: string } | undefined },
): [DeployKeyUpdate, KeyAudit] {
  const update: DeployKeyUpdate = {
    status: 'active',
    activated_at: now,
    host_key_id: created.hostKeyId,
    fingerprint: pair.fingerprint,
    public_key: pair.publicKey,
    wrap_accessor: wrapped?.accessor ?? null,
  };
  const details = { hostKeyId: created.hostKeyId, fingerprint: pair.fingerprint, delivery: pending.delivery };
  return [update, { actor: caller.actor, action: 'key.issued', details }];
}
