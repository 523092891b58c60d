// Vault auth down while keys are due: the service logs in with AppRole (5 s tokens, the policy in
// deploy/vault/), then its token is revoked while logins answer 503 and renewals are refused. The
// revoke jobs wait in the queue, retried and never failed for good, and complete once Vault auth
// is back: host key gone, Vault secret gone, key `revoked`, every step in the audit log.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REVOKE_ATTEMPTS, REVOKE_QUEUE, revokeJobId } from '../../src/queue/jobs.ts';
import { setUpVaultLogin } from '../chaos/vault-login.ts';
import { TEST_REDIS_URL } from '../support/redis.ts';
import {
  auditCount,
  auditDetails,
  hostHasKey,
  type IssuedKey,
  issueKey,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
let redis: Redis;
let queue: Queue;

beforeAll(async () => {
  harness = await startHarness({
    fileConfig: async (standIns) => ({
      vault: { auth: (await setUpVaultLogin(standIns, standIns.dataDir)).auth },
    }),
  });
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  queue = new Queue(REVOKE_QUEUE, { connection: redis, prefix: harness.redisPrefix });
});
afterAll(async () => {
  harness?.standIns.vault.auth.takeLoginDown(undefined);
  harness?.standIns.vault.auth.refuseRenewals(undefined);
  await queue?.close();
  redis?.disconnect();
  await harness?.close();
});

const row = async (key: IssuedKey) => (await harness.service.container.keys.findById(key.id))!;
const jobOf = async (key: IssuedKey) => (await queue.getJob(revokeJobId(key.id)))!;

describe('revokes while Vault auth is down', () => {
  it('wait in the queue, retried and never failed for good, and complete once Vault auth is back', async () => {
    const ready = await harness.api('GET', '/readyz');
    expect(ready.body.checks).toMatchObject({ vault: 'ok', 'vault-auth': 'ok' });
    const manual = await issueKey(harness, {
      provider: 'github',
      repository: 'acme/models',
      jobId: 'vault-auth-outage-manual',
      ttlSeconds: 600,
    });
    const expiring = await issueKey(harness, {
      provider: 'gitlab',
      repository: 'acme/models',
      jobId: 'vault-auth-outage-expiry',
      ttlSeconds: 2,
    });
    for (const key of [manual, expiring]) expect(await vaultMetadataStatus(harness, key)).toBe(200);

    // Vault auth goes down: no login, no renewal, and the token the service holds is revoked.
    const auth = harness.standIns.vault.auth;
    auth.takeLoginDown('unavailable');
    auth.refuseRenewals({ status: 403, errors: ['permission denied'] });
    expect(auth.revoke({ pathPrefix: 'auth/approle/' })).toBeGreaterThan(0);

    expect((await harness.api('DELETE', `/v1/keys/${manual.id}`)).status).toBe(202);
    for (const key of [manual, expiring]) {
      const failing = await eventually(
        async () => {
          const current = await row(key);
          return current.status === 'revoking' && current.attempts >= 2 && current;
        },
        { timeoutMs: 20_000, what: `two failed revoke attempts of ${key.provider}’s key` },
      );
      expect(failing.last_error).toMatch(/vault/i);
      // Retried, not dropped: the job is backing off (or running again), never failed for good.
      const job = await jobOf(key);
      expect(['delayed', 'waiting', 'active', 'prioritized']).toContain(await job.getState());
      expect(job.attemptsMade).toBeLessThan(REVOKE_ATTEMPTS);
      expect(await vaultMetadataStatus(harness, key)).toBe(200);
    }
    const down = await harness.api('GET', '/readyz');
    expect(down.status).toBe(503);
    expect(down.body.failed).toEqual(['vault-auth']);

    auth.takeLoginDown(undefined);
    auth.refuseRenewals(undefined);
    for (const [key, reason] of [
      [manual, 'manual'],
      [expiring, 'expired'],
    ] as const) {
      const view = await revokedView(harness, key.id, 30_000);
      expect(view).toMatchObject({ status: 'revoked', revokeReason: reason });
      expect(hostHasKey(harness, key)).toBe(false);
      expect(await vaultMetadataStatus(harness, key)).toBe(404);
      expect((await row(key)).last_error).toBeNull();
      expect(await auditCount(harness, key.id, 'key.revoke_requested')).toBe(1);
      expect(await auditDetails(harness, key.id, 'key.revoked')).toEqual([{ reason }]);
    }
    expect((await harness.api('GET', '/readyz')).status).toBe(200);
  }, 90_000);
});
