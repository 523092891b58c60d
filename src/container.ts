// Composition root: every long-lived dependency is made here, once, and handed down explicitly.
import type { Redis } from 'ioredis';
import {
  AUDIT_VERIFY_MAX_AGE_SECONDS,
  type AuditVerifier,
  createAuditVerifier,
} from './audit/audit-verifier.ts';
import { type AuditCheckpoints, createAuditCheckpoints } from './audit/checkpoint.ts';
import { createVaultCheckpointStore } from './audit/checkpoint-store.ts';
import { createAccessPolicy } from './auth/access-policy.ts';
import { type ApiTokens, createApiTokens } from './auth/api-tokens.ts';
import { type Authenticator, createAuthenticator } from './auth/authenticator.ts';
import { createOidcVerifier } from './auth/oidc.ts';
import type { Config } from './config.ts';
import { createDb, type Db } from './db/database.ts';
import { type CredentialExpiryWatch, createCredentialExpiryWatch } from './hosts/credential-expiry.ts';
import { createHostRegistry, type HostRegistry } from './hosts/host-registry.ts';
import { createRedisPacing } from './hosts/shared-pacing.ts';
import { type Caller, SYSTEM_ACTOR } from './keys/caller.ts';
import { createKeyRepository, type KeyRepository } from './keys/key.repository.ts';
import { createKeyService, type KeyService } from './keys/key.service.ts';
import type { Authorize, OwnersOf } from './keys/key-service-deps.ts';
import { ownerIdentity } from './keys/ownership.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics, recordChainVerdict, registerKeyGauges } from './metrics.ts';
import { createCiSweep } from './queue/ci-sweep.ts';
import { createReconciler, type Reconciler } from './queue/reconciler.ts';
import { createRevokeWorker } from './queue/revoke.processor.ts';
import { createRevokeScheduler, type RevokeScheduler } from './queue/revoke.queue.ts';
import { createRedis, redisReady } from './redis-connection.ts';
import { systemTimers } from './time.ts';
import type { SecretStore } from './vault/secret-store.ts';
import { createServiceVault } from './vault/service-vault.ts';
import type { VaultClient } from './vault/vault-client.ts';
import { createVaultSecretStore } from './vault/vault-secret-store.ts';
import { refOfJobEnd } from './webhooks/job-end.ts';
import type { WebhookReceiver } from './webhooks/webhook-receiver.ts';
import { createWebhooks } from './webhooks/webhook-wiring.ts';

export type ReadinessCheck = () => Promise<void>;

export interface Container {
  config: Config;
  logger: Logger;
  clock: () => Date;
  db: Db;
  redis: Redis;
  metrics: Metrics;
  hosts: HostRegistry;
  /** When the service's own host tokens expire (gauge, warning, readiness `host-token:<id>`). */
  credentialExpiry: CredentialExpiryWatch;
  /** The one Vault client; the secret store and the audit checkpoints go through it. */
  vault: VaultClient;
  secrets: SecretStore;
  keys: KeyRepository;
  revokeQueue: RevokeScheduler;
  keyService: KeyService;
  tokens: ApiTokens;
  authenticate: Authenticator;
  /** Signed audit checkpoints in Vault (audit wiring); written from the worker role. */
  auditCheckpoints: AuditCheckpoints;
  /** Verification for the API: one walk shared by concurrent requests, reused while the head holds. */
  auditVerifier: AuditVerifier;
  readiness: Record<string, ReadinessCheck>;
  /** Job-end webhooks from the CI platforms (src/webhooks). */
  webhooks: WebhookReceiver;
  /** Waits (bounded) for Redis to connect, so the first requests after start-up find the queue ready. */
  connect(): Promise<void>;
  /** Starts the revoke worker, the reconciler and the audit checkpointer in this process. */
  startWorker(): WorkerHandle;
  close(): Promise<void>;
}

export interface WorkerHandle {
  reconciler: Reconciler;
  /** Lets in-flight revokes finish, then stops. */
  stop(): Promise<void>;
}

export interface ContainerOverrides {
  clock?: () => Date;
  authenticate?: Authenticator;
  /** Where webhook secrets are read from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export function createContainer(
  config: Config,
  logger: Logger,
  overrides: ContainerOverrides = {},
): Container {
  const clock = overrides.clock ?? (() => new Date());
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
  const keys = createKeyRepository(db.db);
  const revokeQueue = createRevokeScheduler(redis, config.redisPrefix, clock);
  const tokens = createApiTokens(db.db, clock);
  const policy = createAccessPolicy(config.policy);
  const oidc = createOidcVerifier({
    issuers: config.auth.oidcIssuers,
    audience: config.auth.audience,
    clockSkewSeconds: config.auth.clockSkewSeconds,
    logger,
  });
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
    return { allowed: true, rule: decision.rule, owner, maxActiveKeys: decision.maxActiveKeys };
  };
  const ownersOf: OwnersOf = (caller) => [...new Set(bindingsOf(caller).map((binding) => binding.owner))];
  const keyService = createKeyService({
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

  registerKeyGauges(metrics, { keys, revokeQueue, clock });
  const credentialExpiry = createCredentialExpiryWatch({
    hostConfigs: config.hosts,
    hosts,
    metrics,
    logger,
    clock,
    timers: systemTimers,
  });

  const readiness: Record<string, ReadinessCheck> = {
    postgres: () => db.ping(),
    redis: () => redisReady(redis, 1_000).then(async () => void (await redis.ping())),
    vault: () => vault.health(),
    ...(config.vault.auth.method === 'token' ? {} : { 'vault-auth': async () => serviceVault.check() }),
    ...credentialExpiry.readiness,
  };

  // audit wiring: checkpoints of the audit chain, anchored in Vault.
  const auditCheckpoints = createAuditCheckpoints({
    db,
    store: createVaultCheckpointStore({
      vault,
      kvMount: config.vault.kvMount,
      pathPrefix: config.vault.pathPrefix,
    }),
    signingKey: config.audit.signingKey,
    clock,
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

  const workerHandles: WorkerHandle[] = [];

  return {
    config,
    logger,
    clock,
    db,
    redis,
    metrics,
    hosts,
    credentialExpiry,
    vault,
    secrets,
    keys,
    revokeQueue,
    keyService,
    tokens,
    authenticate: overrides.authenticate ?? createAuthenticator({ tokens, oidc }),
    auditCheckpoints,
    auditVerifier,
    readiness,
    webhooks: createWebhooks({
      hosts: config.hosts,
      env: overrides.env ?? process.env,
      clock,
      db,
      registry: metrics.registry,
      recordEvent: (event) => keys.recordEvent(event),
      endBoundKeys: async (end, actor, details) =>
        (await keyService.revokeBound(refOfJobEnd(end), 'job-ended', actor, details)).length,
    }),
    async connect() {
      await serviceVault.start();
      await credentialExpiry.start();
      await redisReady(redis, 5_000).catch((error: Error) =>
        logger.warn({ err: error.message }, 'Redis is not reachable yet; keys cannot be issued until it is'),
      );
    },
    startWorker() {
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
      const handle: WorkerHandle = {
        reconciler,
        async stop() {
          await reconciler.stop();
          await auditCheckpoints.stop();
          await worker.close();
          workerRedis.disconnect();
        },
      };
      workerHandles.push(handle);
      return handle;
    },
    async close() {
      for (const handle of workerHandles.splice(0)) await handle.stop();
      serviceVault.stop();
      credentialExpiry.stop();
      await revokeQueue.close().catch(() => {});
      redis.disconnect();
      await db.close();
    },
  };
}
