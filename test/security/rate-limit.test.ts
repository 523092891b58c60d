// One caller cannot flood the service: past its budget it gets 429 problem+json with Retry-After,
// counted per caller identity (not per token or address), while other callers carry on.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectProblem, type SecurityHarness, startSecurityHarness } from './security-harness.ts';

let h: SecurityHarness;
beforeAll(async () => {
  h = await startSecurityHarness({ fileConfig: { rateLimit: { max: 3, timeWindowSeconds: 60 } } });
});
afterAll(async () => {
  await h?.close();
});

const issue = (token: string, jobId: string) =>
  h.call('POST', '/v1/keys', {
    body: { provider: 'github', repository: 'acme/models', jobId, ttlSeconds: 600 },
    token,
  });

it('the 4th request by one caller within the window is 429 with Retry-After; nothing is issued', async () => {
  const ci = h.harness.tokens.ci!;
  for (const path of ['/v1/keys', '/v1/keys?status=active']) {
    expect((await h.call('GET', path, { token: ci })).status).toBe(200);
  }
  expect((await issue(ci, 'rate-1')).status).toBe(201);

  const githubBefore = h.githubRequests();
  const limited = await issue(ci, 'rate-2');
  expectProblem(limited, 429, 'rate-limited');
  const retryAfter = Number(limited.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(h.githubRequests(), 'a limited request never reaches GitHub').toBe(githubBefore);
  const rows = await h.harness.database.db.selectFrom('deploy_keys').select('job_id').execute();
  expect(rows.map((r) => r.job_id)).toEqual(['rate-1']);

  expectProblem(await h.call('GET', '/v1/keys', { token: ci }), 429, 'rate-limited');
});

it('another caller is unaffected', async () => {
  const other = h.harness.tokens['other-ci']!;
  expect((await h.call('GET', '/v1/keys', { token: other })).status).toBe(200);
  expect((await issue(other, 'rate-other-1')).status).toBe(201);
});

it('a workload is counted by identity, so minting fresh tokens does not reset its budget', async () => {
  const fresh = () => h.mint('github-actions', { repository: 'acme/models' });
  for (let i = 0; i < 3; i++)
    expect((await h.call('GET', '/v1/keys', { token: await fresh() })).status).toBe(200);
  expectProblem(await h.call('GET', '/v1/keys', { token: await fresh() }), 429, 'rate-limited');
  const otherRepository = await h.mint('github-actions', { repository: 'acme/datasets' });
  expect((await h.call('GET', '/v1/keys', { token: otherRepository })).status).toBe(200);
});

it('an auditor reading statistics is on the same per-caller budget: the 4th GET /v1/stats is 429', async () => {
  const auditor = h.harness.tokens.auditor!;
  for (let i = 0; i < 3; i++) expect((await h.call('GET', '/v1/stats', { token: auditor })).status).toBe(200);
  const limited = await h.call('GET', '/v1/stats', { token: auditor });
  expectProblem(limited, 429, 'rate-limited');
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
});

it('no token, minted JWT or private key appears in an error body or a log line', async () => {
  await h.expectNoLeaks();
});
