// In-memory stand-ins for everything the key service depends on, each a plain object implementing
// the dependency's interface, so the domain's flows run in unit tests in milliseconds. They keep
// what a real dependency would hold (rows and their audit, host keys, Vault secrets, grants, wrap
// tokens, scheduled revoke jobs) so a test looks at the world after a flow, not at the calls made.
import type { DeployKeyRow, NewDeployKeyRow } from '../../src/db/schema.ts';
import { type GitHost, type HostDeployKey, HostError } from '../../src/hosts/git-host.ts';
import type { Caller } from '../../src/keys/caller.ts';
import type { KeyAudit, KeyRepository } from '../../src/keys/key.repository.ts';
import { assertMove } from '../../src/keys/key-lifecycle.ts';
import type { KeyServiceDeps } from '../../src/keys/key-service-deps.ts';
import { LIVE_STATUSES } from '../../src/keys/live-key-limit.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import type { KeyStatus } from '../../src/model/schemas.ts';
import type { KeySecret, SecretStore } from '../../src/vault/secret-store.ts';

/** The provisioning steps of an issue, each of which a test can make fail. */
export type IssueStep =
  | 'host-add'
  | 'vault-write'
  | 'kubernetes-grant'
  | 'wrap'
  | 'schedule-revoke'
  | 'activate';

/** Something an issue leaves at a dependency, as the fakes record its creation. */
export type Resource = 'host-key' | 'vault-secret' | 'kubernetes-grant' | 'wrap-token' | 'revoke-job';

export interface AuditRecord extends KeyAudit {
  keyId: string;
}

export interface KeyWorld {
  rows: Map<string, DeployKeyRow>;
  audit: AuditRecord[];
  /** Deploy keys at the host, by repository. */
  hostKeys: Map<string, HostDeployKey[]>;
  secrets: Map<string, { secret: KeySecret; keyId: string }>;
  grants: Set<string>;
  wrapTokens: Set<string>;
  scheduledRevokes: Map<string, Date>;
  revokesRunNow: string[];
  /** What the flows created, in order, whether or not it was removed again. */
  created: Resource[];
  /** Steps that throw this error instead of doing their work. */
  failing: Map<IssueStep, Error>;
  /** Removals that throw this error (an undo that cannot finish). */
  failingRemovals: Map<'host-key', Error>;
  /** Runs inside the host write, while the key is `pending`. */
  duringHostAdd?: (keyId: string) => Promise<void>;
}

export function createKeyWorld(): KeyWorld {
  return {
    rows: new Map(),
    audit: [],
    hostKeys: new Map(),
    secrets: new Map(),
    grants: new Set(),
    wrapTokens: new Set(),
    scheduledRevokes: new Map(),
    revokesRunNow: [],
    created: [],
    failing: new Map(),
    failingRemovals: new Map(),
  };
}

function failIfAsked(world: KeyWorld, step: IssueStep): void {
  const error = world.failing.get(step);
  if (error) throw error;
}

function rowOf(row: NewDeployKeyRow, now: Date): DeployKeyRow {
  return {
    ...row,
    status: 'pending',
    fingerprint: null,
    public_key: null,
    host_key_id: null,
    vault_path: row.vault_path ?? null,
    wrap_accessor: null,
    repository_key: row.repository_key ?? null,
    caller_details: JSON.parse(row.caller_details ?? '{}') as Record<string, unknown>,
    binding: row.binding ? (JSON.parse(row.binding) as DeployKeyRow['binding']) : null,
    binding_refs: row.binding_refs ?? [],
    created_at: new Date(row.created_at ?? now),
    activated_at: null,
    expires_at: new Date(row.expires_at),
    revoke_requested_at: null,
    revoked_at: null,
    revoke_reason: null,
    failure_reason: null,
    attempts: 0,
    last_error: null,
    idempotency_key: row.idempotency_key ?? null,
    request_hash: row.request_hash ?? null,
    updated_at: now,
  };
}

const unused = (name: string) => () => {
  throw new Error(`${name} is not used by these tests`);
};

const isLive = (row: DeployKeyRow) => (LIVE_STATUSES as readonly KeyStatus[]).includes(row.status);

/** The key repository's contract over a Map: guarded moves (by the lifecycle table) and their audit. */
export function fakeKeyRepository(world: KeyWorld, clock: () => Date): KeyRepository {
  const live = (row: NewDeployKeyRow) =>
    [...world.rows.values()].find(
      (other) =>
        isLive(other) &&
        other.owner === row.owner &&
        other.job_id === row.job_id &&
        other.provider === row.provider &&
        other.repository_key === row.repository_key,
    );
  const byIdempotencyKey = (owner: string, key: string) =>
    [...world.rows.values()].find((row) => row.owner === owner && row.idempotency_key === key);
  return {
    async insertPending(row, audit) {
      const first = row.idempotency_key ? byIdempotencyKey(row.owner, row.idempotency_key) : undefined;
      if (first) return { outcome: 'idempotent-replay', row: first };
      const existing = live(row);
      if (existing) return { outcome: 'live-key-exists', row: existing };
      const inserted = rowOf(row, clock());
      world.rows.set(inserted.id, inserted);
      world.audit.push({ ...audit, keyId: inserted.id });
      return { outcome: 'inserted', row: { ...inserted } };
    },
    findById: async (id) => {
      const row = world.rows.get(id);
      return row && { ...row };
    },
    findByIdempotencyKey: async (owner, key) => byIdempotencyKey(owner, key),
    async transition(id, from, update, audit) {
      assertMove(from, update.status);
      if (update.status === 'active') failIfAsked(world, 'activate');
      const row = world.rows.get(id);
      if (!row || !from.includes(row.status)) return undefined;
      const changed = { ...row, ...update, updated_at: clock() } as DeployKeyRow;
      world.rows.set(id, changed);
      world.audit.push({ ...audit, keyId: id });
      return { ...changed };
    },
    async recordAttempt(id, error) {
      const row = world.rows.get(id);
      if (row) world.rows.set(id, { ...row, attempts: row.attempts + 1, last_error: error });
    },
    liveKeysOfJob: async (jobId, owners) =>
      [...world.rows.values()].filter(
        (row) => isLive(row) && row.job_id === jobId && (!owners || owners.includes(row.owner)),
      ),
    jobExists: async (jobId, owners) =>
      [...world.rows.values()].some((row) => row.job_id === jobId && (!owners || owners.includes(row.owner))),
    list: unused('list'),
    liveKeysBoundTo: unused('liveKeysBoundTo'),
    liveBound: unused('liveBound'),
    liveExpiringBefore: unused('liveExpiringBefore'),
    pendingCreatedBefore: unused('pendingCreatedBefore'),
    repositoriesIssuedSince: unused('repositoriesIssuedSince'),
    liveIdsAmong: unused('liveIdsAmong'),
    countActive: unused('countActive'),
    countLiveForCaller: unused('countLiveForCaller'),
    recordEvent: unused('recordEvent'),
    countOverdue: unused('countOverdue'),
    // One test process, no concurrency to hold off: the work sees the Job's live keys.
    underJobGrantLock: async (job, work) =>
      work(
        [...world.rows.values()]
          .filter((row) => row.job_id === job.jobId && isLive(row))
          .map((row) => row.id),
      ),
  };
}

/** A GitHub-type host that knows the repositories it is given and keeps their deploy keys. */
export function fakeGitHost(world: KeyWorld, repositories: string[]): GitHost {
  let nextId = 1;
  const keysOf = (repository: string) => {
    const keys = world.hostKeys.get(repository.toLowerCase());
    if (!keys) throw new HostError('github', 'not-found', `no repository ${repository}`, { status: 404 });
    return keys;
  };
  for (const repository of repositories) world.hostKeys.set(repository.toLowerCase(), []);
  return {
    id: 'github',
    type: 'github',
    async addDeployKey(input) {
      const keys = keysOf(input.repository);
      const keyId = /deploykey-rotator:(\S+)/.exec(input.title)?.[1] ?? '';
      await world.duringHostAdd?.(keyId);
      failIfAsked(world, 'host-add');
      const key = {
        hostKeyId: String(nextId++),
        title: input.title,
        publicKey: input.publicKey,
        readOnly: true,
      };
      keys.push(key);
      world.created.push('host-key');
      return key;
    },
    checkCapacity() {},
    async checkAccess() {},
    async deleteDeployKey(repository, hostKeyId) {
      const removalFailure = world.failingRemovals.get('host-key');
      if (removalFailure) throw removalFailure;
      const keys = keysOf(repository);
      const index = keys.findIndex((key) => key.hostKeyId === hostKeyId);
      if (index < 0) return 'already-gone';
      keys.splice(index, 1);
      return 'deleted';
    },
    listDeployKeys: async (repository) => [...keysOf(repository)],
    ciJobStatus: async () => ({ state: 'unknown' }),
    knownHosts: async () => [
      'github.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    ],
    cloneUrl: (repository) => `git@github.test:${repository}.git`,
  };
}

/** Vault's KV v2 secrets, per-key Kubernetes grants and wrapping tokens, as the secret store sees them. */
export function fakeSecretStore(world: KeyWorld): SecretStore {
  let nextAccessor = 1;
  return {
    mount: 'secret',
    pathFor: (scope, jobId, provider, repository) =>
      `deploy-keys/${scope}/${jobId}/${provider}/${repository}`,
    async write(path, secret, metadata) {
      failIfAsked(world, 'vault-write');
      world.secrets.set(path, { secret, keyId: metadata.keyId });
      world.created.push('vault-secret');
    },
    async wrap(path) {
      failIfAsked(world, 'wrap');
      if (!world.secrets.has(path)) throw new Error(`nothing at ${path} to wrap`);
      const accessor = `accessor-${nextAccessor++}`;
      world.wrapTokens.add(accessor);
      world.created.push('wrap-token');
      return { token: `hvs.wrapped-${accessor}`, accessor };
    },
    async revokeWrapToken(accessor) {
      world.wrapTokens.delete(accessor);
    },
    async destroy(path, keyId) {
      const stored = world.secrets.get(path);
      if (!stored) return 'already-gone';
      if (keyId && stored.keyId !== keyId) return 'not-ours';
      world.secrets.delete(path);
      return 'destroyed';
    },
    read: async (path) => world.secrets.get(path)?.secret,
    async grantKubernetesRead(_path, grant) {
      failIfAsked(world, 'kubernetes-grant');
      world.grants.add(grant.keyId);
      world.created.push('kubernetes-grant');
      return `deploykey-${grant.keyId}`;
    },
    async removeKubernetesRead(keyId) {
      world.grants.delete(keyId);
    },
    jobPathFor: (namespace, jobName, provider, repository) =>
      `deploy-keys/kubernetes/${namespace}/${jobName}/${provider}/${repository}`,
    async grantJobRead(grant) {
      failIfAsked(world, 'kubernetes-grant');
      const role = `deploykey-job.${grant.namespace}.${grant.jobName}`;
      world.grants.add(role);
      world.created.push('kubernetes-grant');
      return role;
    },
    async removeJobRead(namespace, jobName) {
      world.grants.delete(`deploykey-job.${namespace}.${jobName}`);
    },
  };
}

function fakeRevokeQueue(world: KeyWorld): KeyServiceDeps['queue'] {
  return {
    async scheduleRevoke(keyId, at) {
      failIfAsked(world, 'schedule-revoke');
      world.scheduledRevokes.set(keyId, at);
      world.created.push('revoke-job');
    },
    async revokeNow(keyId) {
      world.revokesRunNow.push(keyId);
    },
    async cancel(keyId) {
      world.scheduledRevokes.delete(keyId);
    },
  };
}

export const NOW = new Date('2030-01-02T03:04:05.000Z');

/** The key service's dependencies over one world: a policy that allows every request, as owner `owner-1`. */
export function fakeKeyServiceDeps(world: KeyWorld, repositories = ['acme/models']): KeyServiceDeps {
  const clock = () => new Date(NOW);
  const host = fakeGitHost(world, repositories);
  return {
    keys: fakeKeyRepository(world, clock),
    hosts: { get: (id) => (id === host.id ? host : undefined), ids: () => [host.id] },
    secrets: fakeSecretStore(world),
    queue: fakeRevokeQueue(world),
    clock,
    metrics: createMetrics(),
    logger: createLogger('silent'),
    systemActor: 'system:test',
    authorize: async () => ({ allowed: true, rule: 'everyone', owner: 'owner-1' }),
    ownersOf: () => ['owner-1'],
    settings: {
      ttl: { minTtlSeconds: 60, maxTtlSeconds: 7_200, defaultTtlSeconds: 600 },
      pendingTimeoutSeconds: 120,
      kubernetesAudience: 'vault',
    },
  };
}

export function issuerCaller(details: Record<string, unknown> = { kind: 'api-token' }): Caller {
  return {
    id: 'token:ci',
    actor: 'token:ci',
    role: 'issuer',
    subject: { issuer: 'api-token', tokenName: 'ci', claims: {} },
    details,
  };
}

/** A Kubernetes workload's caller: a `vault` key issued to it gets a per-key Vault grant. */
export function kubernetesCaller(): Caller {
  return issuerCaller({
    kind: 'kubernetes',
    claims: { 'kubernetes.io': { namespace: 'training', serviceaccount: { name: 'trainer' } } },
  });
}
