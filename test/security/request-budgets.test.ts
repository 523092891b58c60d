// What one client can make the service spend: an expensive auditor route has a small budget of its
// own and shares one chain walk between concurrent requests, and guessing tokens from one address
// is throttled with 429 and Retry-After after a few failures.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAuditEvent } from '../../src/audit/audit.repository.ts';
import {
  type Answer,
  expectProblem,
  type SecurityHarness,
  startSecurityHarness,
} from './security-harness.ts';

const EXPENSIVE_MAX = 5;
const FAILED_AUTH_MAX = 20;
let h: SecurityHarness;
beforeAll(async () => {
  h = await startSecurityHarness({
    fileConfig: {
      rateLimit: {
        max: 1_000,
        timeWindowSeconds: 60,
        expensiveMax: EXPENSIVE_MAX,
        failedAuthMax: FAILED_AUTH_MAX,
      },
    },
  });
});
afterAll(async () => {
  await h?.expectNoLeaks();
  await h?.close();
});

const asAuditor = (path: string) => h.call('GET', path, { token: h.harness.tokens.auditor! });
function byStatus(answers: Answer[]): Record<number, number> {
  const count: Record<number, number> = {};
  for (const answer of answers) count[answer.status] = (count[answer.status] ?? 0) + 1;
  return count;
}

describe('GET /v1/audit/verify', () => {
  it('shares one walk between concurrent requests and answers the rest of a burst with 429', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, () => asAuditor('/v1/audit/verify')));
    expect(byStatus(answers)).toEqual({ 200: EXPENSIVE_MAX, 429: 30 - EXPENSIVE_MAX });
    const walked = new Set(answers.filter((a) => a.status === 200).map((a) => a.body.verifiedAt));
    expect(walked.size, 'one walk served every verification of the burst').toBe(1);
    for (const refused of answers.filter((a) => a.status === 429)) {
      expectProblem(refused, 429, 'rate-limited');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // The budget is the route's own: the event list is still open to the same auditor.
    expect((await asAuditor('/v1/audit/events?limit=1')).status).toBe(200);
  });
});

describe('GET /v1/audit/events/export', () => {
  it('has its own budget too', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => asAuditor('/v1/audit/events/export')));
    expect(byStatus(answers)).toEqual({ 200: EXPENSIVE_MAX, 429: 10 - EXPENSIVE_MAX });
  });
});

describe('a verification', () => {
  it('is walked again once the chain has grown', async () => {
    const admin = (path: string) => h.call('GET', path, { token: h.harness.tokens.admin! });
    const first = await admin('/v1/audit/verify');
    const again = await admin('/v1/audit/verify');
    expect(first.body.verifiedAt).toEqual(expect.any(String));
    expect(again.body.verifiedAt).toBe(first.body.verifiedAt);
    await appendAuditEvent(h.harness.database.db, { actor: 'test', action: 'test.grow', details: {} });
    const grown = await admin('/v1/audit/verify');
    expect(grown.body.checked).toBe(first.body.checked + 1);
  });
});

// Last: it throttles this test's own address for the rest of the window.
describe('failed authentication', () => {
  it(`is throttled per address after ${FAILED_AUTH_MAX} failures, before the token is looked at`, async () => {
    const guesses = [];
    for (let i = 0; i < 3 * FAILED_AUTH_MAX; i += 1) {
      guesses.push(
        await h.call('GET', '/v1/keys', { token: `dkr_${randomBytes(32).toString('base64url')}` }),
      );
    }
    const statuses = guesses.map((answer) => answer.status);
    expect(statuses.slice(0, FAILED_AUTH_MAX)).toEqual(Array(FAILED_AUTH_MAX).fill(401));
    expect(statuses.slice(FAILED_AUTH_MAX)).toEqual(Array(2 * FAILED_AUTH_MAX).fill(429));
    const throttled = guesses.at(-1)!;
    expectProblem(throttled, 429, 'authentication-throttled');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(throttled.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    // Everyone at that address waits, whatever they present, until the window ends.
    expectProblem(await h.call('GET', '/v1/keys'), 429, 'authentication-throttled');
  });
});
