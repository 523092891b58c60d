// Redis is only a scheduler: when it loses every revoke job, the reconciler rebuilds them from
// Postgres and every key is still revoked on time.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TEST_REDIS_URL } from '../support/redis.ts';
import {
  auditCount,
  hostHasKey,
  type IssuedKey,
  issueKey,
  type Provider,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

const KEYS = 20;
// The reconciler runs every second in the harness and re-creates a job before the key is due.
const REVOKE_BOUND_MS = 6_000;

let harness: Harness;
let redis: Redis;

beforeAll(async () => {
  harness = await startHarness();
  redis = new Redis(TEST_REDIS_URL);
});
afterAll(async () => {
  redis?.disconnect();
  await harness?.close();
});

/** Deletes every key under this test's own prefix (never FLUSHDB: other tests share this Redis). */
async function wipePrefix(prefix: string): Promise<string[]> {
  const deleted: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) {
      await redis.del(...keys);
      deleted.push(...keys);
    }
  } while (cursor !== '0');
  return deleted;
}

it('revokes all 20 keys by their expiry after Redis lost every job', async () => {
  const providers: Provider[] = ['github', 'gitlab'];
  const repositories = ['acme/models', 'acme/datasets'];
  const keys: IssuedKey[] = await Promise.all(
    Array.from({ length: KEYS }, (_, i) =>
      issueKey(harness, {
        provider: providers[i % 2]!,
        repository: repositories[Math.floor(i / 2) % 2]!,
        jobId: `redis-loss-${i}`,
        // Long enough that all 20 are still live when Redis is wiped, even on a busy machine: issuing
        // them takes about 0.2 s here when idle.
        ttlSeconds: 6 + (i % 3),
      }),
    ),
  );
  for (const key of keys) expect(hostHasKey(harness, key)).toBe(true);

  const deleted = await wipePrefix(harness.redisPrefix);
  const wipedAt = Date.now();
  // Every key's revoke job was in Redis and is now gone.
  for (const key of keys) expect(deleted).toContain(`${harness.redisPrefix}:revoke:revoke-${key.id}`);
  const live = await harness.database.pool.query<{ count: string }>(
    `SELECT count(*) AS count FROM deploy_keys WHERE status = 'active' AND expires_at > $1`,
    [new Date(wipedAt)],
  );
  expect(Number(live.rows[0]?.count)).toBe(KEYS);

  const lastExpiry = Math.max(...keys.map((key) => new Date(key.expiresAt).getTime()));
  const views = await Promise.all(
    keys.map((key) => revokedView(harness, key.id, lastExpiry - Date.now() + REVOKE_BOUND_MS + 5_000)),
  );
  for (const [i, view] of views.entries()) {
    const key = keys[i]!;
    expect(view.revokeReason).toBe('expired');
    const overdueMs = new Date(view.revokedAt).getTime() - new Date(view.expiresAt).getTime();
    expect(overdueMs, `key ${i} revoked ${overdueMs} ms after expiry`).toBeLessThan(REVOKE_BOUND_MS);
    expect(hostHasKey(harness, key)).toBe(false);
    expect(await vaultMetadataStatus(harness, key)).toBe(404);
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);
  }
  // Nothing but the reconciler enqueues revokes after the wipe; BullMQ's event stream, rebuilt
  // from nothing, shows it re-created every key's job.
  const events = await redis.xrange(`${harness.redisPrefix}:revoke:events`, '-', '+');
  const readded = new Set(
    events
      .map(([, fields]) =>
        Object.fromEntries(fields.flatMap((_, i) => (i % 2 ? [] : [[fields[i], fields[i + 1]]]))),
      )
      .filter((event) => event.event === 'added')
      .map((event) => event.jobId),
  );
  for (const key of keys) expect(readded).toContain(`revoke-${key.id}`);
});
