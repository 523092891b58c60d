// The revoke job of a key is due at the key's expiry as the service's clock tells it, not as the
// machine's clock does: a service run on another clock (a test's, a skewed node's) revokes on time.
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REVOKE_QUEUE, revokeJobId } from '../../src/queue/jobs.ts';
import { createRevokeScheduler, type RevokeScheduler } from '../../src/queue/revoke.queue.ts';
import { createTestRedisPrefix, TEST_REDIS_URL } from '../support/redis.ts';

const SERVICE_NOW = new Date('2031-05-01T12:00:00.000Z');

let redis: Redis;
let prefix: ReturnType<typeof createTestRedisPrefix>;
let revokes: RevokeScheduler;
beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  prefix = createTestRedisPrefix();
  revokes = createRevokeScheduler(redis, prefix.prefix, () => SERVICE_NOW);
});
afterAll(async () => {
  await revokes.close();
  await prefix.cleanup();
  redis.disconnect();
});

/** The delay BullMQ stored with the key's revoke job. */
async function delayOf(keyId: string): Promise<number> {
  return Number(await redis.hget(`${prefix.prefix}:${REVOKE_QUEUE}:${revokeJobId(keyId)}`, 'delay'));
}

describe('revoke scheduling', () => {
  it('delays a key’s revoke until its expiry on the service’s clock', async () => {
    const keyId = randomUUID();
    await revokes.scheduleRevoke(keyId, new Date(SERVICE_NOW.getTime() + 90_000));
    expect(await delayOf(keyId)).toBe(90_000);
    expect((await revokes.depth()).delayed).toBe(1);
  });

  it('runs at once the revoke of a key already expired on that clock', async () => {
    const keyId = randomUUID();
    await revokes.scheduleRevoke(keyId, new Date(SERVICE_NOW.getTime() - 5_000));
    expect(await delayOf(keyId)).toBe(0);
  });
});

describe('revoking now', () => {
  const stateOf = async (keyId: string) => {
    const queue = new Queue(REVOKE_QUEUE, { connection: redis, prefix: prefix.prefix });
    try {
      return await (await queue.getJob(revokeJobId(keyId)))?.getState();
    } finally {
      await queue.close();
    }
  };

  it('brings forward a revoke waiting for the key’s expiry, once however often asked', async () => {
    const keyId = randomUUID();
    await revokes.scheduleRevoke(keyId, new Date(SERVICE_NOW.getTime() + 3_600_000));
    expect(await stateOf(keyId)).toBe('delayed');
    await Promise.all([revokes.revokeNow(keyId), revokes.revokeNow(keyId)]);
    expect(await stateOf(keyId)).toBe('waiting');
    await revokes.revokeNow(keyId);
    expect(await stateOf(keyId)).toBe('waiting');
  });

  it('adds a revoke for a key that has none', async () => {
    const keyId = randomUUID();
    await revokes.revokeNow(keyId);
    expect(await stateOf(keyId)).toBe('waiting');
  });
});
