// The service's Redis connections: fail-fast for requests, blocking and patient for the worker.
import { Redis } from 'ioredis';

export function createRedis(url: string, options: { forWorker?: boolean } = {}): Redis {
  return new Redis(url, {
    connectTimeout: 2_000,
    // Fail fast instead of queueing commands while Redis is away: a key must never be handed out
    // whose revoke job silently waits in memory. Workers block on Redis and need unlimited retries.
    enableOfflineQueue: options.forWorker ?? false,
    maxRetriesPerRequest: options.forWorker ? null : 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}

/** Resolves once Redis is connected, or rejects after `timeoutMs`; commands sent before fail fast. */
export function redisReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`not connected (${redis.status})`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
