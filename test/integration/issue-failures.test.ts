// A Git host that fails, throttles or does not know the repository: the caller gets an answer naming
// the host, and nothing is left behind (no host key, no Vault secret, the row ends `failed`).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  expectNothingLeftBehind,
  expectProblem,
  keysOfJob,
  ourHostKeys,
  type Provider,
} from '../support/issue-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterEach(() => {
  for (const provider of ['github', 'gitlab', 'gitea'] as const) {
    harness.standIns[provider].api.faults.clear();
    harness.standIns[provider].api.setRateLimit(undefined);
  }
});
afterAll(async () => {
  await harness?.close();
});

// Only the deploy-key create: listing (the undo, the reconciler's orphan scan) keeps working.
const CREATE_PATH: Record<Provider, string> = {
  github: '/repos/',
  gitlab: '/api/v4/projects/',
  gitea: '/api/v1/repos/',
};
// What each host sends with a rate limit: GitHub names the secondary limit, GitLab's Rack::Attack
// throttle a plain 429, Gitea's rate-limit guard (or the proxy in front of it) a line of text.
const RATE_LIMIT_BODY: Record<Provider, unknown> = {
  github: {
    message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
    documentation_url:
      'https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits',
  },
  gitlab: 'Retry later\n',
  gitea: 'Rate limit exceeded, please try again later\n',
};

let counter = 0;
const issue = (provider: Provider, what: string, repository = 'acme/models', on = harness) => {
  counter += 1;
  const jobId = `fail-${provider}-${what}-${counter}`;
  const body = { provider, repository, jobId, ttlSeconds: 600 };
  return on.api('POST', '/v1/keys', { body }).then((answer) => ({ answer, request: body }));
};

// A host that asks for a long wait holds all writes to it for that long, so such tests get a
// service of their own rather than stalling the ones after them.
async function withOwnHarness(test: (own: Harness) => Promise<void>) {
  const own = await startHarness();
  try {
    await test(own);
  } finally {
    await own.close();
  }
}

describe.each<Provider>(['github', 'gitlab', 'gitea'])('%s failing', (provider) => {
  const api = () => harness.standIns[provider].api;

  it('answers a host that keeps failing with 502 naming the host, leaving nothing behind', async () => {
    api().faults.add({ status: 500, method: 'POST', pathPrefix: CREATE_PATH[provider] });
    const before = api().faults.stats();
    const { answer, request } = await issue(provider, 'host500');
    const after = api().faults.stats();
    expectProblem(answer, 502, 'host-failed', new RegExp(provider));
    // The adapter retried within its bound before giving up.
    expect(after.injected - before.injected).toBeGreaterThan(1);
    const row = await expectNothingLeftBehind(harness, request);
    expect(row.failureReason).toMatch(new RegExp(`${provider}.*unavailable`));
  });

  it('answers a rate limit beyond the wait bound with 503 and Retry-After, and holds later writes without asking the host', async () => {
    await withOwnHarness(async (own) => {
      const ownApi = own.standIns[provider].api;
      ownApi.faults.add({
        status: 429,
        method: 'POST',
        pathPrefix: CREATE_PATH[provider],
        headers: { 'retry-after': '120' },
        body: RATE_LIMIT_BODY[provider],
      });
      const started = Date.now();
      const { answer, request } = await issue(provider, 'host429', 'acme/models', own);
      const answeredAt = Date.now();
      expect(answeredAt - started).toBeLessThan(10_000);
      expectProblem(answer, 503, 'host-rate-limited', new RegExp(`${provider}.*rate limit`));
      expect(answer.headers.get('retry-after')).toBe('120');
      const row = await expectNothingLeftBehind(own, request);
      expect(row.failureReason).toMatch(/rate-limited/);

      const asked = ownApi.faults.stats().injected;
      const { answer: next, request: nextRequest } = await issue(provider, 'held', 'acme/models', own);
      expectProblem(next, 503, 'host-rate-limited', new RegExp(provider));
      // Told to come back when its turn, after the host's wait, would fall within the queue bound;
      // the host's wait runs from its answer, so what has passed since then is already waited.
      const waited = Math.ceil((Date.now() - answeredAt) / 1000);
      expect(Number(next.headers.get('retry-after'))).toBeGreaterThanOrEqual(120 - 30 - waited);
      expect(ownApi.faults.stats().injected, 'the host was not asked again while it said wait').toBe(asked);
      // Refused before anything was recorded or created.
      expect(await keysOfJob(own, nextRequest.jobId)).toEqual([]);
      expect(ourHostKeys(own, provider, 'acme/models')).toEqual([]);
    });
  });

  it('waits out a short rate limit and issues the key', async () => {
    api().faults.add({
      status: 429,
      method: 'POST',
      pathPrefix: CREATE_PATH[provider],
      headers: { 'retry-after': '1' },
      body: RATE_LIMIT_BODY[provider],
      count: 1,
    });
    const before = api().faults.stats().injected;
    const started = Date.now();
    const { answer } = await issue(provider, 'short429');
    expect(answer.status, answer.text).toBe(201);
    expect(api().faults.stats().injected - before).toBe(1);
    expect(Date.now() - started, 'the retry honoured retry-after').toBeGreaterThanOrEqual(900);
    expect(
      ourHostKeys(harness, provider, 'acme/models').filter((k) => k.title.includes(answer.body.id)),
    ).toHaveLength(1);
  });

  it('answers a repository the host does not have with 404 naming it, leaving nothing behind', async () => {
    const { answer, request } = await issue(provider, 'unknown', 'acme/no-such-repo');
    expectProblem(answer, 404, 'repository-not-found', /"acme\/no-such-repo"/);
    expect(answer.body.detail).toContain(provider);
    await expectNothingLeftBehind(harness, request);
  });
});

it('answers a GitHub secondary rate limit (403 with retry-after) beyond the bound with 503', async () => {
  await withOwnHarness(async (own) => {
    // The service acts as a GitHub App: its installation token is minted (a POST) before the limit.
    await own.service.container.hosts.get('github')!.listDeployKeys('acme/models');
    // The stand-in's own secondary limiter: every write is over the limit, told to come back in 120 s.
    own.standIns.github.api.setRateLimit({ secondary: { writesPerSecond: 0, retryAfterSeconds: 120 } });
    const { answer, request } = await issue('github', 'secondary', 'acme/models', own);
    expect(own.standIns.github.api.faults.stats().byStatus['403'] ?? 0).toBe(1);
    expectProblem(answer, 503, 'host-rate-limited', /github.*rate limit/);
    expect(answer.headers.get('retry-after')).toBe('120');
    await expectNothingLeftBehind(own, request);
  });
});

it('answers a repository whose owner has not installed the GitHub App with 404 app-not-installed, creating nothing', async () => {
  const { state } = harness.standIns.github;
  const repository = state.addRepository('elsewhere/tools', '/nonexistent');
  const { answer, request } = await issue('github', 'not-installed', 'elsewhere/tools');
  expectProblem(answer, 404, 'app-not-installed', /"elsewhere\/tools"/);
  expect(answer.body.detail).toContain('install it there first');
  expect(state.listKeys(repository.id)).toEqual([]);
  // Refused before anything was recorded: no row for the job.
  expect(await keysOfJob(harness, request.jobId)).toEqual([]);
});
