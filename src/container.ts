// Composition root: every long-lived dependency is made here, once, and handed down explicitly.
import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { createDb, type Db } from './db/database.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';

export type ReadinessCheck = () => Promise<void>;

export interface Container {
  config: Config;
  logger: Logger;
  db: Db;
  redis: Redis;
  metrics: Metrics;
  readiness: Record<string, ReadinessCheck>;
  close(): Promise<void>;
}

export function createRedis(url: string, options: { forWorker?: boolean } = {}): Redis {
  return new Redis(url, {
    lazyConnect: false,
    connectTimeout: 2_000,
    // Fail fast instead of queueing commands while Redis is away: a key must never be handed out
    // whose revoke job silently waits in memory. Workers block on Redis and need unlimited retries.
    enableOfflineQueue: options.forWorker ?? false,
    maxRetriesPerRequest: options.forWorker ? null : 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}

async function checkVault(addr: string): Promise<void> {
  // 429 is a healthy standby node, as Vault documents for sys/health.
  const response = await fetch(new URL('/v1/sys/health', addr), { signal: AbortSignal.timeout(2_000) });
  if (response.status !== 200 && response.status !== 429) {
    throw new Error(`sys/health answered ${response.status}`);
  }
}

export function createContainer(config: Config, logger: Logger): Container {
  const db = createDb(config.databaseUrl);
  const redis = createRedis(config.redisUrl);
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection problem'));
  const metrics = createMetrics();

  const readiness: Record<string, ReadinessCheck> = {
    postgres: () => db.ping(),
    redis: async () => {
      await redis.ping();
    },
    vault: () => checkVault(config.vault.addr),
  };

  return {
    config,
    logger,
    db,
    redis,
    metrics,
    readiness,
    async close() {
      redis.disconnect();
      await db.close();
    },
  };
}
