// A host that fails revokes for a while: the key stays `revoking`, is visible as overdue, the
// failures are recorded, and the revoke succeeds once the host is back, at the pace the host asks.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  auditCount,
  hostHasKey,
  type IssuedKey,
  issueKey,
  metricsPage,
  metricValue,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { eventually, type Harness, standInHosts, startHarness } from '../support/service-harness.ts';

// The longest rate-limit pause a call to GitHub waits out itself here (10 s unless configured).
const MAX_RETRY_AFTER_SECONDS = 2;

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({
    fileConfig: (standIns) => ({
      hosts: standInHosts(standIns, { github: { maxRetryAfterSeconds: MAX_RETRY_AFTER_SECONDS } }),
    }),
  });
});
afterEach(() => {
  harness.standIns.github.api.faults.clear();
});
afterAll(async () => {
  await harness?.close();
});

const row = async (key: IssuedKey) => (await harness.service.container.keys.findById(key.id))!;
const deletesAnswered = (status: number) =>
  harness.standIns.github.api.faults.stats().byStatus[String(status)] ?? 0;

/** Issues a short-lived key, breaks DELETEs, and waits until its revoke has failed `failures` times. */
async function revokeAgainstBrokenHost(
  jobId: string,
  fault: { status: number; headers?: Record<string, string> },
  failures: number,
) {
  const key = await issueKey(harness, {
    provider: 'github',
    repository: 'acme/models',
    jobId,
    ttlSeconds: 2,
  });
  harness.standIns.github.api.faults.add({ ...fault, method: 'DELETE' });
  const failing = await eventually(
    async () => {
      const current = await row(key);
      return current.status === 'revoking' && current.attempts >= failures && current;
    },
    { timeoutMs: 20_000, what: `${failures} failed revoke attempt(s)` },
  );
  expect(new Date() > failing.expires_at).toBe(true);
  expect(hostHasKey(harness, key)).toBe(true);
  expect(await vaultMetadataStatus(harness, key)).toBe(200);
  const view = await harness.api('GET', `/v1/keys/${key.id}`);
  expect(view.body.status).toBe('revoking');
  const overdue = await harness.api('GET', '/v1/keys?overdue=true');
  expect(overdue.body.items.map((item: IssuedKey) => item.id)).toContain(key.id);
  expect(metricValue(await metricsPage(harness), 'deploykey_keys_overdue')).toBeGreaterThanOrEqual(1);
  return { key, failing };
}

describe('a GitHub outage during revoke', () => {
  it('keeps the key revoking and overdue while DELETEs answer 500, then revokes it', async () => {
    const before = await metricsPage(harness);
    const { key, failing } = await revokeAgainstBrokenHost('outage-500', { status: 500 }, 2);
    expect(failing.last_error).toBe('host github: unavailable (500)');
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(0);

    harness.standIns.github.api.faults.clear();
    const view = await revokedView(harness, key.id);
    expect(view.revokeReason).toBe('expired');
    expect(hostHasKey(harness, key)).toBe(false);
    expect(await vaultMetadataStatus(harness, key)).toBe(404);
    const done = await row(key);
    expect(done.attempts).toBeGreaterThanOrEqual(failing.attempts);
    expect(done.last_error).toBeNull();
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);

    const after = await metricsPage(harness);
    const revoked = (page: string) =>
      metricValue(page, 'deploykey_keys_revoked_total', { reason: 'expired' });
    expect(revoked(after) - revoked(before)).toBe(1);
    const latency = (page: string) =>
      metricValue(page, 'deploykey_revoke_latency_seconds_count', { reason: 'expired' });
    expect(latency(after) - latency(before)).toBe(1);
    // The outage lasted at least two attempts, so the observed latency is over one second.
    expect(
      metricValue(after, 'deploykey_revoke_latency_seconds_bucket', { reason: 'expired', le: '1' }),
    ).toBeLessThan(latency(after));
    const failures = metricValue(after, 'deploykey_revoke_failures_total', { provider: 'github' });
    expect(failures).toBeGreaterThanOrEqual(failing.attempts);
    expect(metricValue(after, 'deploykey_keys_overdue')).toBe(0);
  });

  it('keeps the key revoking while DELETEs are rate limited (429, retry-after: 1), then revokes it', async () => {
    const { key, failing } = await revokeAgainstBrokenHost(
      'outage-429',
      { status: 429, headers: { 'retry-after': '1' } },
      1,
    );
    expect(failing.last_error).toBe('host github: rate-limited (429)');

    harness.standIns.github.api.faults.clear();
    const view = await revokedView(harness, key.id);
    expect(view.revokeReason).toBe('expired');
    expect(hostHasKey(harness, key)).toBe(false);
    expect(await vaultMetadataStatus(harness, key)).toBe(404);
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);
  });

  it('waits as long as a retry-after beyond its in-call bound before trying again', async () => {
    // Beyond what the host adapter waits out within one call, so the revoke job must wait.
    const retryAfterSeconds = MAX_RETRY_AFTER_SECONDS + 1;
    const key = await issueKey(harness, {
      provider: 'github',
      repository: 'acme/models',
      jobId: 'outage-retry-after',
      ttlSeconds: 1,
    });
    const limitedBefore = deletesAnswered(429);
    harness.standIns.github.api.faults.add({
      status: 429,
      headers: { 'retry-after': String(retryAfterSeconds) },
      method: 'DELETE',
      count: 1,
    });
    await eventually(async () => deletesAnswered(429) > limitedBefore, { what: 'the rate-limited DELETE' });
    const limitedAt = Date.now();
    const deletedBefore = deletesAnswered(204);

    await revokedView(harness, key.id, (retryAfterSeconds + 15) * 1000);
    expect(Date.now() - limitedAt).toBeGreaterThanOrEqual(retryAfterSeconds * 1000 - 500);
    // One rate-limited DELETE, then the one that succeeded: nothing in between.
    expect(deletesAnswered(429) - limitedBefore).toBe(1);
    expect(deletesAnswered(204) - deletedBefore).toBe(1);
    expect((await row(key)).attempts).toBe(1);
  });
});
