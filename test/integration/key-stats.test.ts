// GET /v1/stats: keys issued and revoked per hour and revoke latency, computed in Postgres, for
// auditors only. The service runs on an injected clock set to fixed hours, so which hour a key
// lands in never depends on when the test runs.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../support/issue-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

// The clock runs at real speed from whatever moment `setClock` last named.
let offsetMs = 0;
const setClock = (iso: string) => {
  offsetMs = Date.parse(iso) - Date.now();
};
const clock = () => new Date(Date.now() + offsetMs);

let harness: Harness;
beforeAll(async () => {
  setClock('2030-06-01T09:40:00Z');
  harness = await startHarness({ overrides: { clock } });
});
afterAll(async () => {
  await harness?.close();
});

const auditor = () => ({ token: harness.tokens.auditor! });
type Hour = { start: string; issued: number; revoked: number; latencyP50Seconds: number | null };
const byStart = (hours: Hour[]) => Object.fromEntries(hours.map((hour) => [hour.start, hour]));

describe('GET /v1/stats', () => {
  it('counts keys in the hour they were issued and the hour they were revoked, over the last 24 hours', async () => {
    for (const repository of ['acme/models', 'acme/datasets']) {
      const issued = await harness.api('POST', '/v1/keys', {
        body: { provider: 'github', repository, jobId: 'stats-1', ttlSeconds: 3600 },
      });
      expect(issued.status).toBe(201);
    }
    const other = await harness.api('POST', '/v1/keys', {
      body: { provider: 'gitlab', repository: 'acme/models', jobId: 'stats-2', ttlSeconds: 3600 },
    });
    expect(other.status).toBe(201);

    setClock('2030-06-01T10:15:00Z');
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
    expect(answer.body.from).toMatch(/^2030-05-31T10:15:/);
    expect(answer.body.to).toMatch(/^2030-06-01T10:15:/);
    // 10:15 yesterday to 10:15 today touches 25 hours.
    expect(answer.body.hours).toHaveLength(25);
    const hours = byStart(answer.body.hours);
    expect(hours['2030-06-01T09:00:00.000Z']).toMatchObject({
      issued: 3,
      revoked: 0,
      latencyP50Seconds: null,
    });
    const revokedHour = hours['2030-06-01T10:00:00.000Z']!;
    expect(revokedHour).toMatchObject({ issued: 0, revoked: 2 });
    expect(revokedHour.latencyP50Seconds).toBeGreaterThanOrEqual(0);
    expect(revokedHour.latencyP50Seconds).toBeLessThan(30);
    const total = (field: 'issued' | 'revoked') =>
      answer.body.hours.reduce((sum: number, hour: Hour) => sum + hour[field], 0);
    expect([total('issued'), total('revoked')]).toEqual([3, 2]);
    expect(answer.body.latency).toMatchObject({ count: 2, p50Seconds: expect.any(Number) });

    const earlier = await harness.api(
      'GET',
      '/v1/stats?from=2030-06-01T06:00:00Z&to=2030-06-01T09:00:00Z',
      auditor(),
    );
    expect(earlier.body.hours.map((h: Hour) => [h.start, h.issued])).toEqual([
      ['2030-06-01T06:00:00.000Z', 0],
      ['2030-06-01T07:00:00.000Z', 0],
      ['2030-06-01T08:00:00.000Z', 0],
    ]);
    expect(earlier.body.latency).toEqual({ count: 0, p50Seconds: null, p99Seconds: null });
  });

  it('measures latency from the job end or request to revoked, and from the expiry when that came first', async () => {
    // Revoked keys with known timestamps: latencies 10 s, 30 s and 100 s in one hour, and in the
    // next a revoke asked for 10 minutes after the key's expiry, which counts from the expiry.
    const revokedKeys = [
      { requested: '2020-01-01T00:10:00Z', expires: '2020-01-01T01:00:00Z', revoked: '2020-01-01T00:10:10Z' },
      { requested: '2020-01-01T00:20:00Z', expires: '2020-01-01T01:00:00Z', revoked: '2020-01-01T00:20:30Z' },
      { requested: null, expires: '2020-01-01T00:30:00Z', revoked: '2020-01-01T00:31:40Z' },
      { requested: '2020-01-01T01:10:00Z', expires: '2020-01-01T01:00:00Z', revoked: '2020-01-01T01:10:05Z' },
    ];
    await harness.database.db
      .insertInto('deploy_keys')
      .values(
        revokedKeys.map((key, i) => ({
          id: randomUUID(),
          provider: 'github',
          repository: 'acme/models',
          job_id: `stats-fixed-${i}`,
          status: 'revoked' as const,
          delivery: 'vault' as const,
          caller: 'token:ci',
          owner: 'token:ci',
          repository_key: 'acme/models',
          activated_at: '2020-01-01T00:05:00Z',
          expires_at: key.expires,
          revoke_requested_at: key.requested,
          revoked_at: key.revoked,
        })),
      )
      .execute();

    const answer = await harness.api(
      'GET',
      '/v1/stats?from=2020-01-01T00:00:00Z&to=2020-01-01T02:00:00Z',
      auditor(),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.hours).toEqual([
      // percentile_cont over 10, 30, 100: p99 lies 98% of the way from 30 to 100.
      {
        start: '2020-01-01T00:00:00.000Z',
        issued: 4,
        revoked: 3,
        latencyP50Seconds: 30,
        latencyP99Seconds: expect.closeTo(98.6, 6),
      },
      {
        start: '2020-01-01T01:00:00.000Z',
        issued: 0,
        revoked: 1,
        latencyP50Seconds: 605,
        latencyP99Seconds: 605,
      },
    ]);
    expect(answer.body.latency).toEqual({
      count: 4,
      p50Seconds: 65,
      p99Seconds: expect.closeTo(589.85, 6),
    });

    // A range that starts inside an hour counts only what happened from its start on.
    const partial = await harness.api(
      'GET',
      '/v1/stats?from=2020-01-01T00:30:00Z&to=2020-01-01T01:30:00Z',
      auditor(),
    );
    expect(partial.body.hours.map((h: Hour) => [h.start, h.issued, h.revoked])).toEqual([
      ['2020-01-01T00:00:00.000Z', 0, 1],
      ['2020-01-01T01:00:00.000Z', 0, 1],
    ]);
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
