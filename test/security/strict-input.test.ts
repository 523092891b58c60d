// Input the contract's checks once let through to Postgres, which then failed with a 500: instants
// that do not exist, cursors beyond bigint, NUL in filters, hand-made key cursors, and a token whose
// claims carry a NUL. Each is a 400 (or, for the token, a 401) problem now, and refusing the token
// is audited like any other refusal of a known caller.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, type SecurityHarness, startSecurityHarness } from './security-harness.ts';

let h: SecurityHarness;
beforeAll(async () => {
  h = await startSecurityHarness();
});
afterAll(async () => {
  await h?.expectNoLeaks();
  await h?.close();
});

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

const asAuditor: [string, string][] = [
  ['a leap second in from', '/v1/audit/events?from=2020-01-01T23:59:60Z'],
  ['a leap second in to, on the export', '/v1/audit/events/export?to=2020-06-30T23:59:60Z'],
  ['a cursor beyond 19 digits of bigint', '/v1/audit/events?cursor=9999999999999999999'],
  ['a cursor one past the largest bigint', '/v1/audit/events?cursor=9223372036854775808'],
  ['a NUL in actor', '/v1/audit/events?actor=a%00b'],
  ['a NUL in action', '/v1/audit/events?action=a%00b'],
  ['a NUL in repository', '/v1/audit/events?repository=a%00b'],
  ['a NUL in jobId, on the export', '/v1/audit/events/export?jobId=a%00b'],
  ['an escape character in actor', '/v1/audit/events?actor=%1B%5B2J'],
  ['a NUL in provider', '/v1/keys?provider=a%00b'],
  ['a NUL in repository of the key list', '/v1/keys?repository=a%00b'],
  ['a NUL in caller', '/v1/keys?caller=a%00b'],
  [
    'a key cursor with a date before any Postgres knows',
    `/v1/keys?cursor=${cursorOf(['-271821-04-20T00:00:00.000Z', '00000000-0000-0000-0000-000000000000'])}`,
  ],
  [
    'a key cursor whose id is 36 dashes',
    `/v1/keys?cursor=${cursorOf(['2026-01-01T00:00:00.000Z', '-'.repeat(36)])}`,
  ],
];

describe('a query parameter', () => {
  it.each(asAuditor)('with %s is a 400 problem', async (_what, path) => {
    const answer = await h.call('GET', path, { token: h.harness.tokens.auditor! });
    expectProblem(answer, 400);
    expect(answer.text).not.toContain('\u0000');
  });

  it('that is the largest bigint is still a valid cursor', async () => {
    const answer = await h.call('GET', '/v1/audit/events?cursor=9223372036854775807&order=desc', {
      token: h.harness.tokens.auditor!,
    });
    expect(answer.status, answer.text).toBe(200);
  });
});

describe('a token whose claims carry a NUL', () => {
  it('is refused with 401, and the refusal is audited', async () => {
    const token = await h.mint('github-actions', {
      repository: 'acme/models',
      sub: 'repo:acme/models:ref:refs/heads/main\u0000x',
    });
    const answer = await h.call('POST', '/v1/keys', {
      body: { provider: 'github', repository: 'acme/models', jobId: 'nul-sub', ttlSeconds: 600 },
      token,
    });
    expectProblem(answer, 401, 'unauthorized');
    expect(answer.body.reason).toBe('invalid-claims');
    const [denied] = await h.auditEvents('access.denied');
    expect(denied).toMatchObject({ details: { reason: 'invalid-claims' } });
    expect(denied?.actor).toMatch(/^sandbox-oidc:repo:acme\/models:ref:refs\/heads\/main\\u0000x$/);
  });
});
