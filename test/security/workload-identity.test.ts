// Workloads that prove who they are with their platform's ID token (Kubernetes service accounts,
// GitHub Actions, GitLab CI) get keys only for what the sandbox policy grants that identity.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, type SecurityHarness, startSecurityHarness } from './security-harness.ts';

let h: SecurityHarness;
beforeAll(async () => {
  h = await startSecurityHarness();
});
afterAll(async () => {
  await h?.close();
});

let jobs = 0;
const ask = (token: string, provider: string, repository: string) =>
  h.call('POST', '/v1/keys', {
    body: { provider, repository, jobId: `workload-${++jobs}`, ttlSeconds: 600 },
    token,
  });

async function granted(token: string, provider: string, repository: string) {
  const answer = await ask(token, provider, repository);
  expect(answer.status, answer.text).toBe(201);
  expect(answer.body).toMatchObject({ provider, repository, status: 'active' });
  const state = h.harness.standIns[provider as 'github' | 'gitlab'].state;
  const keys = state.listKeys(state.findRepository(repository)!.id);
  expect(keys.map((key) => key.title).join('\n'), 'the key is at the host').toContain(answer.body.id);
  return answer;
}

async function refused(token: string, provider: string, repository: string, reason: string) {
  const githubBefore = h.githubRequests();
  const answer = await ask(token, provider, repository);
  expectProblem(answer, 403, 'forbidden-by-policy');
  expect(answer.body.reason).toBe(reason);
  expect(h.githubRequests(), 'refused before GitHub is asked').toBe(githubBefore);
  return answer;
}

describe('a Kubernetes service account token', () => {
  const serviceAccount = (namespace: string, serviceaccount = 'trainer') =>
    h.mint('kubernetes', { namespace, serviceaccount });

  it('from namespace training, account trainer, gets keys for acme/* on any host', async () => {
    const token = await serviceAccount('training');
    const answer = await granted(token, 'github', 'acme/models');
    await granted(token, 'gitlab', 'acme/datasets');
    const row = await h.harness.service.container.keys.findById(answer.body.id);
    expect(row?.caller).toBe('oidc:sandbox-oidc:system:serviceaccount:training:trainer');
    expect(row?.caller_details).toMatchObject({ kind: 'kubernetes' });
  });

  it('from namespace training asking outside acme/* is 403 repository-not-allowed', async () => {
    await refused(await serviceAccount('training'), 'github', 'other/models', 'repository-not-allowed');
  });

  it('from namespace default is 403 no-matching-rule', async () => {
    const answer = await refused(
      await serviceAccount('default'),
      'github',
      'acme/models',
      'no-matching-rule',
    );
    expect(answer.body.rule).toBeUndefined();
  });

  it('for another service account in namespace training is 403 no-matching-rule', async () => {
    await refused(await serviceAccount('training', 'intruder'), 'github', 'acme/models', 'no-matching-rule');
  });

  it('that also carries a flat "kubernetes.io.namespace" claim disagreeing with the real one is refused', async () => {
    // Two readings of the dot path disagree, so the claim counts as absent and the rule fails closed.
    const token = await h.mint('kubernetes', {
      namespace: 'default',
      serviceaccount: 'trainer',
      'kubernetes.io.namespace': 'training',
    });
    await refused(token, 'github', 'acme/models', 'no-matching-rule');
  });
});

describe('a GitHub Actions token for acme/models', () => {
  const token = () => h.mint('github-actions', { repository: 'acme/models' });

  it('gets a key for github acme/models', async () => {
    const answer = await granted(await token(), 'github', 'acme/models');
    const row = await h.harness.service.container.keys.findById(answer.body.id);
    expect(row?.caller).toBe('oidc:sandbox-oidc:repo:acme/models:ref:refs/heads/main');
    expect(row?.caller_details).toMatchObject({
      kind: 'github-actions',
      claims: { repository: 'acme/models' },
    });
  });

  it('is 403 provider-not-allowed for gitlab acme/models', async () => {
    await refused(await token(), 'gitlab', 'acme/models', 'provider-not-allowed');
  });

  it('is 403 repository-not-allowed for github acme/datasets', async () => {
    await refused(await token(), 'github', 'acme/datasets', 'repository-not-allowed');
  });

  it('whose repository claim holds glob characters matches only that literal text', async () => {
    const wildcard = await h.mint('github-actions', { repository: 'acme/*' });
    await refused(wildcard, 'github', 'acme/models', 'repository-not-allowed');
  });
});

describe('a GitLab CI token for project acme/datasets', () => {
  const token = () => h.mint('gitlab-ci', { project_path: 'acme/datasets' });

  it('gets a key on gitlab for acme/datasets', async () => {
    await granted(await token(), 'gitlab', 'acme/datasets');
  });

  it('is 403 repository-not-allowed for gitlab acme/models', async () => {
    await refused(await token(), 'gitlab', 'acme/models', 'repository-not-allowed');
  });

  it('is 403 provider-not-allowed for github acme/datasets', async () => {
    await refused(await token(), 'github', 'acme/datasets', 'provider-not-allowed');
  });
});

it('each allowed request is audited with the rule that allowed it', async () => {
  const rules = (await h.auditEvents('key.requested')).map((event) => event.details.policy);
  expect(rules).toEqual([
    { decision: 'allowed', rule: 'kubernetes-training-jobs' },
    { decision: 'allowed', rule: 'kubernetes-training-jobs' },
    { decision: 'allowed', rule: 'github-actions-own-repository' },
    { decision: 'allowed', rule: 'gitlab-ci-own-project' },
  ]);
  expect((await h.auditEvents('policy.denied')).length).toBe(9);
});

it('no token, minted JWT or private key appears in an error body or a log line', async () => {
  await h.expectNoLeaks();
});
