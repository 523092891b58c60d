// What an authenticated caller may ask for: a request outside its policy rule is refused with 403
// naming the reason, audited, and decided before any Git host is called.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/service-harness.ts';
import {
  type Answer,
  expectProblem,
  type SecurityHarness,
  startSecurityHarness,
} from './security-harness.ts';

let h: SecurityHarness;
beforeAll(async () => {
  h = await startSecurityHarness();
});
afterAll(async () => {
  await h?.close();
});

let jobs = 0;
const ask = (token: string, body: Record<string, unknown>) =>
  h.call('POST', '/v1/keys', { body: { ttlSeconds: 600, ...body, jobId: `policy-${++jobs}` }, token });
const githubActions = (repository = 'acme/models') => h.mint('github-actions', { repository });
const keyRows = async () =>
  (await h.harness.database.db.selectFrom('deploy_keys').select('id').execute()).length;

/** Asks, and asserts a 403 for `reason` that wrote no key, called no Git host, and was audited. */
async function denied(
  token: string,
  body: Record<string, unknown>,
  reason: string,
  rule: string | undefined,
): Promise<Answer> {
  const [rowsBefore, deniedBefore] = [await keyRows(), (await h.auditEvents('policy.denied')).length];
  const githubBefore = h.githubRequests();
  const answer = await ask(token, body);
  expectProblem(answer, 403, 'forbidden-by-policy');
  expect(answer.body.reason).toBe(reason);
  expect(answer.body.rule).toBe(rule);
  expect(answer.body.detail).toMatch(new RegExp(`^${reason}: `));
  expect(h.githubRequests(), 'the policy decides before any GitHub call').toBe(githubBefore);
  expect(await keyRows(), 'a denied request writes no key').toBe(rowsBefore);

  const events = await h.auditEvents('policy.denied');
  expect(events).toHaveLength(deniedBefore + 1);
  expect(events.at(-1)).toMatchObject({
    provider: body.provider,
    repository: body.repository,
    key_id: null,
    details: {
      reason,
      rule: rule ?? null,
      request: { provider: body.provider, repository: body.repository },
    },
  });
  return answer;
}

describe('a GitHub Actions workflow of acme/models', () => {
  it('gets a key for its own repository, and the audit names the rule that allowed it', async () => {
    const answer = await ask(await githubActions(), { provider: 'github', repository: 'acme/models' });
    expect(answer.status, answer.text).toBe(201);
    const requested = await h.auditEvents('key.requested');
    expect(requested.at(-1)).toMatchObject({
      key_id: answer.body.id,
      details: { policy: { decision: 'allowed', rule: 'github-actions-own-repository' } },
    });
  });

  it('asking for another repository is 403 repository-not-allowed', async () => {
    const answer = await denied(
      await githubActions(),
      { provider: 'github', repository: 'acme/datasets' },
      'repository-not-allowed',
      'github-actions-own-repository',
    );
    expect(answer.body.detail).toContain('acme/datasets');
  });

  it('asking for a TTL over the rule maximum is 403 ttl-too-long', async () => {
    const answer = await denied(
      await githubActions(),
      { provider: 'github', repository: 'acme/models', ttlSeconds: 7_200 },
      'ttl-too-long',
      'github-actions-own-repository',
    );
    expect(answer.body.detail).toContain('3600');
  });

  it('asking for the private key in the response where the rule does not allow it is 403', async () => {
    await denied(
      await h.mint('kubernetes', { namespace: 'training', serviceaccount: 'trainer' }),
      { provider: 'github', repository: 'acme/models', delivery: 'response' },
      'delivery-not-allowed',
      'kubernetes-training-jobs',
    );
  });
});

describe('a repository that does not exist', () => {
  it('is refused exactly like an existing one, so the caller learns nothing, and GitHub is never asked', async () => {
    const token = await githubActions();
    const existing = await denied(
      token,
      { provider: 'github', repository: 'acme/datasets' },
      'repository-not-allowed',
      'github-actions-own-repository',
    );
    const missing = await denied(
      token,
      { provider: 'github', repository: 'acme/no-such-repository' },
      'repository-not-allowed',
      'github-actions-own-repository',
    );
    const { detail: _a, instance: _b, ...sameShape } = existing.body;
    expect(missing.body).toMatchObject(sameShape);
    expect(missing.body.detail.replace('acme/no-such-repository', 'X')).toBe(
      existing.body.detail.replace('acme/datasets', 'X'),
    );
  });

  it('is refused for a caller no rule applies to, before GitHub is asked', async () => {
    const token = await h.mint('kubernetes', { namespace: 'default', serviceaccount: 'trainer' });
    await denied(token, { provider: 'github', repository: 'ghost/none' }, 'no-matching-rule', undefined);
  });
});

describe('the active-key limit', () => {
  it('refuses a key over the limit with 403 too-many-active-keys and allows one again after a revoke', async () => {
    const quota = () => h.mint('kubernetes', { namespace: 'quota', serviceaccount: 'trainer' });
    const first = await ask(await quota(), { provider: 'github', repository: 'acme/models' });
    expect(first.status, first.text).toBe(201);
    expect((await h.auditEvents('key.requested')).at(-1)?.details).toMatchObject({
      policy: { rule: 'kubernetes-quota' },
    });

    const answer = await denied(
      await quota(),
      { provider: 'github', repository: 'acme/datasets' },
      'too-many-active-keys',
      'kubernetes-quota',
    );
    expect(answer.body.detail).toMatch(/limit is 1/);

    const token = await quota();
    expect((await h.call('DELETE', `/v1/keys/${first.body.id}`, { token })).status).toBe(202);
    await eventually(
      async () => (await h.call('GET', `/v1/keys/${first.body.id}`, { token })).body.status === 'revoked',
      { what: 'the first key to be revoked' },
    );
    const again = await ask(token, { provider: 'github', repository: 'acme/datasets' });
    expect(again.status, again.text).toBe(201);
  });
});

it('every denial in this file is in the audit log with its reason and rule', async () => {
  const events = await h.auditEvents('policy.denied');
  expect(events.map((e) => e.details.reason)).toEqual([
    'repository-not-allowed',
    'ttl-too-long',
    'delivery-not-allowed',
    'repository-not-allowed',
    'repository-not-allowed',
    'no-matching-rule',
    'too-many-active-keys',
  ]);
  for (const event of events) expect(event.details).toHaveProperty('rule');
  expect(events.every((e) => String(e.actor).startsWith('sandbox-oidc:'))).toBe(true);
});

it('no token, minted JWT or private key appears in an error body or a log line', async () => {
  await h.expectNoLeaks();
});
