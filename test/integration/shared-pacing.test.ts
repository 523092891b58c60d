// API replicas and the worker are separate processes writing to the same host: through Redis they
// keep one budget between them, and a wait the host asked of one holds the others too.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostScheduler, type HostBudget } from '../../src/hosts/host-scheduler.ts';
import { createRedisPacing } from '../../src/hosts/shared-pacing.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { systemClock, systemTimers } from '../../src/time.ts';
import { createTestRedisPrefix, TEST_REDIS_URL } from '../support/redis.ts';

const BUDGET: HostBudget = {
  concurrency: 4,
  minIntervalMs: 100,
  requestsPerMinute: 10_000,
  maxQueueSeconds: 30,
};

let redis: Redis;
let prefix: { prefix: string; cleanup(): Promise<void> };
beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  prefix = createTestRedisPrefix();
});
afterAll(async () => {
  await prefix.cleanup();
  redis.disconnect();
});

/** One process's scheduler for the host `github`, sharing pacing through the test's Redis prefix. */
const processScheduler = () =>
  createHostScheduler({
    hostId: 'github',
    budget: BUDGET,
    logger: createLogger('silent'),
    metrics: createMetrics(),
    // Redis's clock times the shared budget, so these stay real.
    clock: systemClock,
    timers: systemTimers,
    shared: createRedisPacing(redis, prefix.prefix),
  });

describe('a host budget shared through Redis', () => {
  it('keeps two processes’ writes together within one budget', async () => {
    const starts: number[] = [];
    const write = async () => {
      starts.push(performance.now());
    };
    const [a, b] = [processScheduler(), processScheduler()];
    const asked = performance.now();
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 === 0 ? a : b).schedule({ kind: 'issue', caller: `c${i}` }, write),
      ),
    );
    starts.sort((x, y) => x - y);
    // Each alone would start its three writes 100 ms apart, side by side with the other's: two at
    // once, then two more 100 ms later. Together the k-th write may not start before k slots have
    // passed. A busy machine only ever starts a write late, so this bound holds under any load,
    // where a bound on each gap would not (one late start shortens the gap after it).
    for (const [k, at] of starts.entries()) expect(at - asked).toBeGreaterThanOrEqual(k * 100 - 5);
  });

  it('holds another process’s writes while the host has asked one of them to wait', async () => {
    const [a, b] = [processScheduler(), processScheduler()];
    a.observe(429, new Headers({ 'retry-after': '1' }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const asked = performance.now();
    let startedAt = 0;
    await b.schedule({ kind: 'revoke' }, async () => {
      startedAt = performance.now();
    });
    expect(startedAt - asked).toBeGreaterThanOrEqual(900);
  });

  it('reserves the starts of writes queued together in fewer round trips, still one interval apart', async () => {
    const pacing = createRedisPacing(redis, prefix.prefix);
    let reservations = 0;
    const scheduler = createHostScheduler({
      hostId: 'github-burst',
      budget: BUDGET,
      logger: createLogger('silent'),
      metrics: createMetrics(),
      clock: systemClock,
      timers: systemTimers,
      shared: {
        ...pacing,
        reserve(...args) {
          reservations += 1;
          return pacing.reserve(...args);
        },
      },
    });
    const starts: number[] = [];
    const asked = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, () =>
        scheduler.schedule({ kind: 'revoke' }, async () => {
          starts.push(performance.now());
        }),
      ),
    );
    starts.sort((x, y) => x - y);
    for (const [k, at] of starts.entries()) expect(at - asked).toBeGreaterThanOrEqual(k * 100 - 5);
    expect(reservations).toBeLessThan(8);
  });
});
