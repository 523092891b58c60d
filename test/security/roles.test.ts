// What each role may do with keys: auditors read everything and change nothing; an issuer sees
// and touches only its own keys, and another caller's key looks exactly like one that never existed.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Answer,
  expectProblem,
  type SecurityHarness,
  startSecurityHarness,
} from './security-harness.ts';

let h: SecurityHarness;
let mine: Answer;
let theirs: Answer;
let tokens: Record<string, string>;
beforeAll(async () => {
  h = await startSecurityHarness();
  tokens = h.harness.tokens;
  const issue = (token: string, jobId: string, repository: string) =>
    h.call('POST', '/v1/keys', { body: { provider: 'github', repository, jobId, ttlSeconds: 600 }, token });
  mine = await issue(tokens.ci!, 'roles-ci-job', 'acme/models');
  theirs = await issue(tokens['other-ci']!, 'roles-other-job', 'acme/datasets');
  expect([mine.status, theirs.status]).toEqual([201, 201]);
});
afterAll(async () => {
  await h?.close();
});

const statusOf = async (id: string) => (await h.harness.service.container.keys.findById(id))?.status;
const listIds = async (token: string, query = '') =>
  ((await h.call('GET', `/v1/keys${query}`, { token })).body.items as { id: string }[]).map((k) => k.id);

describe('an auditor', () => {
  it('cannot issue a key (403)', async () => {
    const answer = await h.call('POST', '/v1/keys', {
      body: { provider: 'github', repository: 'acme/models', jobId: 'auditor-1', ttlSeconds: 600 },
      token: tokens.auditor!,
    });
    expectProblem(answer, 403, 'role-not-allowed');
    expect(await h.auditEvents('key.requested')).toHaveLength(2);
  });

  it('cannot revoke a key (403) nor complete a job (403), and the key stays active', async () => {
    const githubBefore = h.githubRequests();
    expectProblem(
      await h.call('DELETE', `/v1/keys/${mine.body.id}`, { token: tokens.auditor! }),
      403,
      'role-not-allowed',
    );
    expectProblem(
      await h.call('POST', '/v1/jobs/roles-ci-job/complete', { token: tokens.auditor! }),
      403,
      'role-not-allowed',
    );
    expect(await statusOf(mine.body.id)).toBe('active');
    expect(h.githubRequests()).toBe(githubBefore);
  });

  it("lists every caller's keys and reads any key", async () => {
    const ids = await listIds(tokens.auditor!);
    expect(ids).toEqual(expect.arrayContaining([mine.body.id, theirs.body.id]));
    for (const key of [mine, theirs]) {
      const answer = await h.call('GET', `/v1/keys/${key.body.id}`, { token: tokens.auditor! });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ id: key.body.id, repository: key.body.repository });
      expect(answer.body.privateKey).toBeUndefined();
    }
  });
});

describe("an issuer facing another caller's key", () => {
  const other = () => tokens['other-ci']!;

  it('gets 404 on GET, exactly as for a key that never existed', async () => {
    const hidden = await h.call('GET', `/v1/keys/${mine.body.id}`, { token: other() });
    const unknownId = randomUUID();
    const missing = await h.call('GET', `/v1/keys/${unknownId}`, { token: other() });
    expectProblem(hidden, 404, 'key-not-found');
    expectProblem(missing, 404, 'key-not-found');
    expect(hidden.body.detail.replace(mine.body.id, 'ID')).toBe(missing.body.detail.replace(unknownId, 'ID'));
    expect(hidden.text).not.toContain('acme/models');
  });

  it('does not see it in its list, whatever the filter', async () => {
    expect(await listIds(other())).toEqual([theirs.body.id]);
    expect(await listIds(other(), '?jobId=roles-ci-job')).toEqual([]);
    expect(await listIds(other(), '?repository=acme/models&status=active')).toEqual([]);
    expect(await listIds(tokens.ci!)).toEqual([mine.body.id]);
  });

  it('cannot revoke it (404) nor complete its job (404), and the key stays active at the host', async () => {
    const githubBefore = h.githubRequests();
    expectProblem(
      await h.call('DELETE', `/v1/keys/${mine.body.id}`, { token: other() }),
      404,
      'key-not-found',
    );
    expectProblem(
      await h.call('POST', '/v1/jobs/roles-ci-job/complete', { token: other() }),
      404,
      'job-not-found',
    );
    expect(h.githubRequests()).toBe(githubBefore);
    expect(await statusOf(mine.body.id)).toBe('active');
    const repo = h.harness.standIns.github.state.findRepository('acme/models')!;
    expect(h.harness.standIns.github.state.listKeys(repo.id)).toHaveLength(1);
    expect(await h.auditEvents('key.revoke_requested')).toHaveLength(0);
  });

  it('using the same job id gets a key of its own, and neither blocks nor sees the other', async () => {
    const same = await h.call('POST', '/v1/keys', {
      body: { provider: 'github', repository: 'acme/models', jobId: 'roles-ci-job', ttlSeconds: 600 },
      token: other(),
    });
    expect(same.status, same.text).toBe(201);
    expect(same.body.id).not.toBe(mine.body.id);
    expect(same.body.vault.path).not.toBe(mine.body.vault.path);
    expect(await listIds(other(), '?jobId=roles-ci-job')).toEqual([same.body.id]);
    expect(await statusOf(mine.body.id)).toBe('active');
    expect((await h.call('DELETE', `/v1/keys/${same.body.id}`, { token: other() })).status).toBe(202);
  });

  it('a workload identity is a caller of its own and sees neither API-token caller keys', async () => {
    const workload = await h.mint('github-actions', { repository: 'acme/models' });
    expect(await listIds(workload)).toEqual([]);
    expectProblem(await h.call('GET', `/v1/keys/${mine.body.id}`, { token: workload }), 404, 'key-not-found');
    expectProblem(
      await h.call('DELETE', `/v1/keys/${mine.body.id}`, { token: workload }),
      404,
      'key-not-found',
    );
  });
});

describe('the owner and an admin', () => {
  it('the owner reads its key and completes its own job', async () => {
    expect((await h.call('GET', `/v1/keys/${mine.body.id}`)).status).toBe(200);
    const done = await h.call('POST', '/v1/jobs/roles-ci-job/complete');
    expect(done.status, done.text).toBe(202);
    expect(done.body.keys.map((k: { id: string }) => k.id)).toEqual([mine.body.id]);
    expect(await statusOf(theirs.body.id), "another caller's key is untouched").toBe('active');
  });

  it('an admin cannot issue keys but may revoke any caller’s key', async () => {
    const issued = await h.call('POST', '/v1/keys', {
      body: { provider: 'github', repository: 'acme/models', jobId: 'admin-1', ttlSeconds: 600 },
      token: tokens.admin!,
    });
    expectProblem(issued, 403, 'role-not-allowed');
    const revoked = await h.call('DELETE', `/v1/keys/${theirs.body.id}`, { token: tokens.admin! });
    expect(revoked.status, revoked.text).toBe(202);
    const event = (await h.auditEvents('key.revoke_requested')).find((e) => e.key_id === theirs.body.id);
    expect(event?.actor).toBe('token:admin');
  });
});

it('no token, minted JWT or private key appears in an error body or a log line', async () => {
  await h.expectNoLeaks();
});
