// GET /v1/stats: keys issued and revoked per hour and revoke latency, computed in Postgres, for
// auditors only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../support/issue-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.close();
});

const auditor = () => ({ token: harness.tokens.auditor! });

describe('GET /v1/stats', () => {
  it("counts this hour's issued and revoked keys and measures job-end-to-revoked latency", async () => {
    for (const repository of ['acme/models', 'acme/datasets']) {
      const issued = await harness.api('POST', '/v1/keys', {
        body: { provider: 'github', repository, jobId: 'stats-1', ttlSeconds: 600 },
      });
      expect(issued.status).toBe(201);
    }
    await harness.api('POST', '/v1/keys', {
      body: { provider: 'gitlab', repository: 'acme/models', jobId: 'stats-2' },
    });
    expect((await harness.api('POST', '/v1/jobs/stats-1/complete')).status).toBe(202);
    await eventually(
      async () =>
        (await harness.api('GET', '/v1/keys?jobId=stats-1')).body.items.every(
          (k: { status: string }) => k.status === 'revoked',
        ),
      { what: 'job stats-1 revoked' },
    );

    const answer = await harness.api('GET', '/v1/stats', auditor());
    expect(answer.status).toBe(200);
    expect(answer.body.hours).toHaveLength(25);
    const now = answer.body.hours.at(-1);
    expect(now).toMatchObject({ issued: 3, revoked: 2 });
    expect(now.latencyP50Seconds).toBeGreaterThanOrEqual(0);
    expect(now.latencyP99Seconds).toBeGreaterThanOrEqual(now.latencyP50Seconds);
    expect(now.latencyP99Seconds).toBeLessThan(30);
    expect(answer.body.hours.slice(0, -1).every((h: { issued: number }) => h.issued === 0)).toBe(true);
    expect(answer.body.latency).toMatchObject({ count: 2, p50Seconds: expect.any(Number) });

    const earlier = await harness.api(
      'GET',
      '/v1/stats?from=2020-01-01T00:00:00Z&to=2020-01-01T03:00:00Z',
      auditor(),
    );
    expect(earlier.body.hours.map((h: { issued: number }) => h.issued)).toEqual([0, 0, 0]);
    expect(earlier.body.latency).toEqual({ count: 0, p50Seconds: null, p99Seconds: null });
  });

  it('is for auditors: an issuer gets 403, a backwards or over-long range 400', async () => {
    expectProblem(await harness.api('GET', '/v1/stats'), 403, 'role-not-allowed', /auditor/);
    expectProblem(
      await harness.api('GET', '/v1/stats?from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z', auditor()),
      400,
      'invalid-range',
      /at most 31 days/,
    );
    expectProblem(
      await harness.api('GET', '/v1/stats?from=2024-01-01T00:00:00Z&to=2024-03-01T00:00:00Z', auditor()),
      400,
      'invalid-range',
      /at most 31 days/,
    );
  });
});
