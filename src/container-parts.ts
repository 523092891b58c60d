// The pieces the composition root (src/container.ts) is made of: the clients, who may do what, the
// audit chain's checkpoints and verification, readiness, webhooks and the worker role's loops.
import type { Redis } from 'ioredis';
import { AUDIT_VERIFY_MAX_AGE_SECONDS, createAuditVerifier } from './audit/audit-verifier.ts';
import { type AuditCheckpoints, createAuditCheckpoints } from './audit/checkpoint.ts';
import { createVaultCheckpointStore } from './audit/checkpoint-store.ts';
import type { OwnersOf } from './auth/access.ts';
import { createAccessPolicy } from './auth/access-policy.ts';
import { createApiTokens } from './auth/api-tokens.ts';
import { createOidcVerifier } from './auth/oidc.ts';
import type { Config } from './config.ts';
import type { ReadinessCheck, WorkerHandle } from './container.ts';
import { createDb, type Db } from './db/database.ts';
import { type CredentialExpiryWatch, createCredentialExpiryWatch } from './hosts/credential-expiry.ts';
import { createHostRegistry, type HostRegistry } from './hosts/host-registry.ts';
import { createRedisPacing } from './hosts/shared-pacing.ts';
import { type Caller, SYSTEM_ACTOR } from './keys/caller.ts';
import { createKeyRepository, type KeyRepository } from './keys/key.repository.ts';
import { createKeyService, type KeyService } from './keys/key.service.ts';
import type { Authorize } from './keys/key-service-deps.ts';
import { ownerIdentity } from './keys/ownership.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics, recordChainVerdict } from './metrics.ts';
import { createCiSweep } from './queue/ci-sweep.ts';
import { createReconciler } from './queue/reconciler.ts';
import { createRevokeWorker } from './queue/revoke.processor.ts';
import { createRevokeScheduler, type RevokeScheduler } from './queue/revoke.queue.ts';
import { createRedis, redisReady } from './redis-connection.ts';
import { systemTimers } from './time.ts';
import type { SecretStore } from './vault/secret-store.ts';
import { createServiceVault, type ServiceVault } from './vault/service-vault.ts';
import type { VaultClient } from './vault/vault-client.ts';
import { createVaultSecretStore } from './vault/vault-secret-store.ts';
import { refOfJobEnd } from './webhooks/job-end.ts';
import { createWebhooks } from './webhooks/webhook-wiring.ts';

/** One client per dependency: Postgres, Redis, the Git hosts, Vault, and what reads through them. */
export function createClients(config: Config, logger: Logger, clock: () => Date) {
  const db = createDb(config.databaseUrl);
  const redis = createRedis(config.redisUrl);
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection problem'));
  const metrics = createMetrics();
  const hosts = createHostRegistry(config.hosts, {
    metrics,
    logger,
    clock,
    timers: systemTimers,
    sharedPacing: createRedisPacing(redis, config.redisPrefix),
  });
  const serviceVault = createServiceVault(config.vault, { clock, timers: systemTimers, logger });
  const vault = serviceVault.client;
  const secrets = createVaultSecretStore({
    vault,
    kvMount: config.vault.kvMount,
    pathPrefix: config.vault.pathPrefix,
    kubernetesAuthMount: config.vault.kubernetesAuthMount,
  });
  const keys = createKeyRepository(db.db, clock);
  const revokeQueue = createRevokeScheduler(redis, config.redisPrefix, clock);
  const tokens = createApiTokens(db.db, clock);
  const oidc = createOidcVerifier({
    issuers: config.auth.oidcIssuers,
    audience: config.auth.audience,
    clockSkewSeconds: config.auth.clockSkewSeconds,
    logger,
    clock,
  });
  const credentialExpiry = createCredentialExpiryWatch({
    hostConfigs: config.hosts,
    hosts,
    metrics,
    logger,
    clock,
    timers: systemTimers,
  });
  return {
    db,
    redis,
    metrics,
    hosts,
    credentialExpiry,
    serviceVault,
    vault,
    secrets,
    keys,
    revokeQueue,
    tokens,
    oidc,
  };
}

/** Who may do what: the access policy's decision with the caller's live keys, and its owners. */
export function createAccess(
  config: Config,
  keys: KeyRepository,
): { authorize: Authorize; ownersOf: OwnersOf } {
  const policy = createAccessPolicy(config.policy);
  const bindingsOf = (caller: Caller) =>
    policy.bindings(caller.subject).map((binding) => ({
      rule: binding.rule,
      owner: ownerIdentity(caller.id, binding.claims),
    }));
  const authorize: Authorize = async (caller, request) => {
    const activeKeys = await keys.countLiveForCaller(caller.id, policy.liveKeyCap(caller.subject));
    const decision = policy.decide(caller.subject, request, activeKeys);
    if (!decision.allowed) return decision;
    const owner = bindingsOf(caller).find((binding) => binding.rule === decision.rule)?.owner ?? caller.id;
    return { ...decision, owner };
  };
  const ownersOf: OwnersOf = (caller) => [...new Set(bindingsOf(caller).map((binding) => binding.owner))];
  return { authorize, ownersOf };
}

interface AuditParts {
  db: Db;
  vault: VaultClient;
  clock: () => Date;
  logger: Logger;
  metrics: Metrics;
}

/** Checkpoints of the audit chain, anchored in Vault, and the API's shared verification. */
export function createAudit(config: Config, { db, vault, clock, logger, metrics }: AuditParts) {
  const auditCheckpoints = createAuditCheckpoints({
    db,
    store: createVaultCheckpointStore({
      vault,
      kvMount: config.vault.kvMount,
      pathPrefix: config.vault.pathPrefix,
    }),
    signingKey: config.audit.signingKey,
    clock,
    timers: systemTimers,
    logger,
    periodSeconds: config.audit.checkpointPeriodSeconds,
    everyEvents: config.audit.checkpointEveryEvents,
    onChainChecked: (badEventCount) => recordChainVerdict(metrics, 'tail', badEventCount),
  });

  const auditVerifier = createAuditVerifier({
    db: db.db,
    checkpoints: auditCheckpoints,
    clock,
    maxAgeSeconds: AUDIT_VERIFY_MAX_AGE_SECONDS,
    onChainChecked: (badEventCount) => recordChainVerdict(metrics, 'full', badEventCount),
  });
  return { auditCheckpoints, auditVerifier };
}

interface WorkerParts {
  db: Db;
  keys: KeyRepository;
  hosts: HostRegistry;
  keyService: KeyService;
  revokeQueue: RevokeScheduler;
  clock: () => Date;
  logger: Logger;
  metrics: Metrics;
  auditCheckpoints: AuditCheckpoints;
}

/** The revoke worker, the reconciler (with its CI sweep) and the checkpointer, started in this process. */
export function startWorkerIn(config: Config, parts: WorkerParts): WorkerHandle {
  const { db, keys, hosts, keyService, revokeQueue, clock, logger, metrics, auditCheckpoints } = parts;
  const workerRedis = createRedis(config.redisUrl, { forWorker: true });
  workerRedis.on('error', () => {});
  const worker = createRevokeWorker({
    connection: workerRedis,
    prefix: config.redisPrefix,
    concurrency: config.worker.concurrency,
    lockSeconds: config.worker.lockSeconds,
    stalledCheckSeconds: config.worker.stalledCheckSeconds,
    keyService,
    logger,
  });
  const reconciler = createReconciler({
    db,
    keys,
    hosts,
    keyService,
    queue: revokeQueue,
    clock,
    timers: systemTimers,
    logger,
    settings: config.reconciler,
    ciSweep: createCiSweep({ keys, hosts, keyService, clock, logger, metrics }, config.reconciler),
  });
  reconciler.start();
  auditCheckpoints.start();
  return {
    reconciler,
    async stop() {
      await reconciler.stop();
      await auditCheckpoints.stop();
      await worker.close();
      workerRedis.disconnect();
    },
  };
}

interface KeyServiceParts {
  keys: KeyRepository;
  hosts: HostRegistry;
  secrets: SecretStore;
  revokeQueue: RevokeScheduler;
  metrics: Metrics;
  clock: () => Date;
  logger: Logger;
}

/** The key service over the clients, deciding with the access policy. */
export function createKeyServiceFor(config: Config, parts: KeyServiceParts): KeyService {
  const { keys, hosts, secrets, revokeQueue, metrics, clock, logger } = parts;
  const { authorize, ownersOf } = createAccess(config, keys);
  return createKeyService({
    keys,
    hosts,
    secrets,
    queue: revokeQueue,
    clock,
    metrics,
    logger,
    systemActor: SYSTEM_ACTOR,
    authorize,
    ownersOf,
    settings: {
      ttl: config.keys,
      pendingTimeoutSeconds: config.reconciler.pendingTimeoutSeconds,
      kubernetesAudience: config.vault.kubernetesAudience,
    },
  });
}

interface WebhookParts {
  clock: () => Date;
  db: Db;
  metrics: Metrics;
  keys: KeyRepository;
  keyService: KeyService;
}

/** Job-end webhooks from the CI platforms: they can only end the keys bound to that job. */
export function createWebhooksFor(config: Config, env: NodeJS.ProcessEnv, parts: WebhookParts) {
  const { clock, db, metrics, keys, keyService } = parts;
  return createWebhooks({
    hosts: config.hosts,
    env,
    clock,
    db,
    registry: metrics.registry,
    recordEvent: (event) => keys.recordEvent(event),
    endBoundKeys: async (end, actor, details) =>
      (await keyService.revokeBound(refOfJobEnd(end), 'job-ended', actor, details)).length,
  });
}

interface ReadinessParts {
  db: Db;
  redis: Redis;
  vault: VaultClient;
  serviceVault: ServiceVault;
  credentialExpiry: CredentialExpiryWatch;
}

/** What `/readyz` asks: each dependency, the service's Vault login, and its host tokens. */
export function readinessChecks(config: Config, parts: ReadinessParts): Record<string, ReadinessCheck> {
  const { db, redis, vault, serviceVault, credentialExpiry } = parts;
  return {
    postgres: () => db.ping(),
    redis: () => redisReady(redis, 1_000).then(async () => void (await redis.ping())),
    vault: () => vault.health(),
    ...(config.vault.auth.method === 'token' ? {} : { 'vault-auth': async () => serviceVault.check() }),
    ...credentialExpiry.readiness,
  };
}
