// Names a caller controls (repository, jobId) end up in host API paths, Vault paths and key titles,
// so traversal, encoded separators, NUL and over-long values are refused with 400 up front — even
// for a caller whose policy allows every repository.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, type SecurityHarness, startSecurityHarness } from './security-harness.ts';

let h: SecurityHarness;
beforeAll(async () => {
  h = await startSecurityHarness();
});
afterAll(async () => {
  await h?.close();
});

const state = async () => ({
  rows: (await h.harness.database.db.selectFrom('deploy_keys').select('id').execute()).length,
  audit: (await h.harness.database.db.selectFrom('audit_events').select('seq').execute()).length,
  github: h.githubRequests(),
  gitlab: h.harness.standIns.gitlab.api.faults.stats().total,
  vault: h.harness.standIns.vault.faults.stats().total,
});

/** Asserts a 400 problem that left no trace: no row, no audit event, no host or Vault request. */
async function rejected(send: () => Promise<Awaited<ReturnType<SecurityHarness['call']>>>) {
  const before = await state();
  const answer = await send();
  expectProblem(answer, 400);
  expect(await state()).toEqual(before);
  return answer;
}

let jobs = 0;
const issue = (body: Record<string, unknown>) =>
  h.call('POST', '/v1/keys', {
    body: {
      provider: 'github',
      repository: 'acme/models',
      jobId: `input-${++jobs}`,
      ttlSeconds: 600,
      ...body,
    },
  });

const badRepositories: [string, string][] = [
  ['a ".." segment', 'acme/../models'],
  ['a leading ".."', '../acme/models'],
  ['a trailing ".."', 'acme/..'],
  ['a URL-encoded slash', 'acme%2Fmodels'],
  ['an encoded ".." segment', 'acme/%2E%2E'],
  ['a NUL', 'acme/models\u0000.git'],
  ['a NUL alone', 'acme/\u0000'],
  ['an over-long name', `acme/${'m'.repeat(600)}`],
];

describe('a repository name', () => {
  it.each(badRepositories)('with %s is 400 on GitHub', async (_what, repository) => {
    const answer = await rejected(() => issue({ repository }));
    expect(answer.body.detail).not.toContain('\u0000');
  });

  it.each(badRepositories)('with %s is 400 on GitLab', async (_what, repository) => {
    await rejected(() => issue({ provider: 'gitlab', repository }));
  });

  it('that is plain still gets its key, so the refusals are not blanket ones', async () => {
    const answer = await issue({ repository: 'acme/models' });
    expect(answer.status, answer.text).toBe(201);
  });
});

const badJobIds: [string, string][] = [
  ['".."', '..'],
  ['"."', '.'],
  ['a slash', 'job/../x'],
  ['a URL-encoded slash', 'job%2F1'],
  ['a NUL', 'job\u00001'],
  ['129 characters', 'j'.repeat(129)],
];

describe('a jobId', () => {
  it.each(badJobIds)('with %s is 400 when asking for a key', async (_what, jobId) => {
    await rejected(() =>
      h.call('POST', '/v1/keys', {
        body: { provider: 'github', repository: 'acme/models', jobId, ttlSeconds: 600 },
      }),
    );
  });

  it.each(badJobIds)('with %s is 400 when completing a job', async (_what, jobId) => {
    await rejected(() => h.raw('POST', `/v1/jobs/${encodeURIComponent(jobId)}/complete`));
  });

  it.each(badJobIds)('with %s is 400 as a list filter', async (_what, jobId) => {
    await rejected(() => h.call('GET', `/v1/keys?jobId=${encodeURIComponent(jobId)}`));
  });
});

describe('a key id', () => {
  it.each([
    ['an encoded traversal', '..%2F..%2Fadmin%2Ftokens'],
    ['a NUL', `${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(11)}%00`],
    ['an over-long value', 'a'.repeat(300)],
  ])('with %s is 400 on GET and DELETE', async (_what, id) => {
    await rejected(() => h.call('GET', `/v1/keys/${id}`));
    await rejected(() => h.call('DELETE', `/v1/keys/${id}`));
  });
});

it('no token, minted JWT or private key appears in an error body or a log line', async () => {
  await h.expectNoLeaks();
});
