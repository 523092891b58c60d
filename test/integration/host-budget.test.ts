// A burst of issue requests against a GitHub stand-in with a secondary write limit: the service keeps
// under its configured budget instead of hammering the host, answers every request with a key or a
// 503 with Retry-After, shares the budget between callers in turn, and leaves nothing behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceSettingsFor } from '../../sandbox/stand-ins.ts';
import { ourHostKeys } from '../support/issue-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

const REPOSITORY = 'acme/models';
// Five writes a second, queued at most three seconds, against a host that refuses a sixth.
const BUDGET = { concurrency: 4, minIntervalMs: 0, requestsPerMinute: 300, maxQueueSeconds: 3 };
const HOST_WRITES_PER_SECOND = 6;

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness({
    fileConfig: (standIns) => ({
      hosts: serviceSettingsFor(standIns).hosts.map((host) =>
        host.id === 'github' ? { ...host, writes: BUDGET } : host,
      ),
    }),
  });
  // The service acts as a GitHub App: its installation is looked up and its token minted once,
  // before the burst, so the burst measures the write budget alone.
  await harness.service.container.hosts.get('github')!.listDeployKeys(REPOSITORY);
  harness.standIns.github.api.setRateLimit({
    secondary: { writesPerSecond: HOST_WRITES_PER_SECOND, retryAfterSeconds: 60 },
  });
});
afterAll(async () => {
  await harness?.close();
});

const issue = (jobId: string, token?: string) =>
  harness.api('POST', '/v1/keys', {
    body: { provider: 'github', repository: REPOSITORY, jobId, ttlSeconds: 600 },
    ...(token ? { token } : {}),
  });

describe('a burst beyond the host budget', () => {
  it('gets a key or 503 with Retry-After for every request, shares the budget between callers, and leaves nothing behind', async () => {
    const burst = Array.from({ length: 45 }, (_, i) => issue(`burst-sweep-${i}`));
    // Another caller arrives while the sweep's requests queue.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const other = Array.from({ length: 4 }, (_, i) => issue(`burst-other-${i}`, harness.tokens['other-ci']));
    const sweepAnswers = await Promise.all(burst);
    const otherAnswers = await Promise.all(other);
    const answers = [...sweepAnswers, ...otherAnswers];

    for (const answer of answers) {
      expect([201, 503], answer.text).toContain(answer.status);
      if (answer.status === 503) {
        expect(answer.body.code).toBe('host-rate-limited');
        expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
    }
    const issued = answers.filter((answer) => answer.status === 201);
    // About the queue bound's worth of budget (3 s at 5 a second, plus the first second's) got keys.
    expect(issued.length).toBeGreaterThanOrEqual(12);
    expect(answers.filter((answer) => answer.status === 503).length).toBeGreaterThan(0);
    // The late caller's few requests are served in turn with the sweep's, not after all of them.
    expect(otherAnswers.map((answer) => answer.status)).toEqual([201, 201, 201, 201]);
    // The host never had to refuse us.
    expect(harness.standIns.github.api.faults.stats().byStatus['403'] ?? 0).toBe(0);

    const hostKeys = ourHostKeys(harness, 'github', REPOSITORY);
    expect(hostKeys.map((key) => key.title.split(' ')[0]).sort()).toEqual(
      issued.map((answer) => `deploykey-rotator:${answer.body.id}`).sort(),
    );
    // Most refusals come before anything is recorded; one refused once queued ends `failed`.
    const rows = await harness.database.pool.query<{ status: string; n: string }>(
      "SELECT status, count(*) AS n FROM deploy_keys WHERE job_id LIKE 'burst-%' GROUP BY status",
    );
    const byStatus = Object.fromEntries(rows.rows.map((row) => [row.status, Number(row.n)]));
    expect(byStatus.active).toBe(issued.length);
    expect(Object.keys(byStatus).filter((status) => status !== 'active' && status !== 'failed')).toEqual([]);
    expect(byStatus.failed ?? 0).toBeLessThanOrEqual(answers.length - issued.length);
    // Refused together, told to come back at different times rather than all at once.
    const retryAfters = answers
      .filter((answer) => answer.status === 503)
      .map((answer) => Number(answer.headers.get('retry-after')));
    expect(Math.max(...retryAfters)).toBeGreaterThan(Math.min(...retryAfters));
  });
});
