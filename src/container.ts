// Composition root: every long-lived dependency is made here, once, and handed down explicitly.
import type { Redis } from 'ioredis';
import type { AuditVerifier } from './audit/audit-verifier.ts';
import type { AuditCheckpoints } from './audit/checkpoint.ts';
import type { ApiTokens } from './auth/api-tokens.ts';
import { type Authenticator, createAuthenticator } from './auth/authenticator.ts';
import type { Config } from './config.ts';
import {
  createAudit,
  createClients,
  createKeyServiceFor,
  createWebhooksFor,
  readinessChecks,
  startWorkerIn,
} from './container-parts.ts';
import type { Db } from './db/database.ts';
import type { CredentialExpiryWatch } from './hosts/credential-expiry.ts';
import type { HostRegistry } from './hosts/host-registry.ts';
import type { KeyRepository } from './keys/key.repository.ts';
import type { KeyService } from './keys/key.service.ts';
import type { Logger } from './log.ts';
import { type Metrics, registerKeyGauges } from './metrics.ts';
import type { Reconciler } from './queue/reconciler.ts';
import type { RevokeScheduler } from './queue/revoke.queue.ts';
import { redisReady } from './redis-connection.ts';
import { systemClock } from './time.ts';
import type { SecretStore } from './vault/secret-store.ts';
import type { VaultClient } from './vault/vault-client.ts';
import type { WebhookReceiver } from './webhooks/webhook-receiver.ts';

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
  const clock = overrides.clock ?? systemClock;
  const clients = createClients(config, logger, clock);
  const { db, redis, metrics, hosts, serviceVault, vault, secrets, keys, revokeQueue, tokens } = clients;
  const { oidc, credentialExpiry } = clients;
  const keyService = createKeyServiceFor(config, { ...clients, clock, logger });

  registerKeyGauges(metrics, { keys, revokeQueue, clock });
  const readiness = readinessChecks(config, { db, redis, vault, serviceVault, credentialExpiry });

  const { auditCheckpoints, auditVerifier } = createAudit(config, { db, vault, clock, logger, metrics });

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
    webhooks: createWebhooksFor(config, overrides.env ?? process.env, {
      clock,
      db,
      metrics,
      keys,
      keyService,
    }),
    async connect() {
      await serviceVault.start();
      await credentialExpiry.start();
      await redisReady(redis, 5_000).catch((error: Error) =>
        logger.warn({ err: error.message }, 'Redis is not reachable yet; keys cannot be issued until it is'),
      );
    },
    startWorker() {
      const parts = { db, keys, hosts, keyService, revokeQueue, clock, logger, metrics, auditCheckpoints };
      const handle = startWorkerIn(config, parts);
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
