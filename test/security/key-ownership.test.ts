// A key belongs to the caller's full identity: issuer, subject, and the claims the rule that allowed
// it bound. GitHub lets a repository give every workflow run one `sub` (no ref in it), so here a
// feature-branch run has the same subject as the main-branch run whose keys it must not reach.
// Job ids and idempotency keys are the owner's own, so no caller can block or probe another.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Answer,
  expectProblem,
  OIDC_ISSUER,
  type SecurityHarness,
  startSecurityHarness,
} from './security-harness.ts';

const SUBJECT = 'repo:acme/models';
const allow = { providers: ['github'], repositories: ['acme/models'], deliveries: ['vault', 'response'] };
const POLICY = [
  { name: 'main-branch', match: { issuer: OIDC_ISSUER, claims: { ref: 'refs/heads/main' } }, allow },
  {
    name: 'release-branches',
    match: { issuer: OIDC_ISSUER, claims: { ref: 'refs/heads/release-*' } },
    allow,
  },
];

let h: SecurityHarness;
let main: string;
let release: string;
let stranger: string;
let mainKey: Answer;
beforeAll(async () => {
  h = await startSecurityHarness({ fileConfig: { policy: POLICY } });
  const run = (ref: string) => h.mint('github-actions', { repository: 'acme/models', ref, sub: SUBJECT });
  [main, release, stranger] = await Promise.all([
    run('refs/heads/main'),
    run('refs/heads/release-2'),
    run('refs/heads/feature-x'),
  ]);
  mainKey = await issue(main, 'build-1');
  expect(mainKey.status, mainKey.text).toBe(201);
});
afterAll(async () => {
  await h?.expectNoLeaks();
  await h?.close();
});

function issue(token: string, jobId: string, headers: Record<string, string> = {}, delivery = 'vault') {
  return h.call('POST', '/v1/keys', {
    body: { provider: 'github', repository: 'acme/models', jobId, ttlSeconds: 600, delivery },
    token,
    headers,
  });
}
const statusOf = async (id: string) => (await h.harness.service.container.keys.findById(id))?.status;
const denials = async () => (await h.auditEvents('access.denied')).map((event) => event.details.reason);

describe('a caller with the same subject that no rule accepts', () => {
  it('gets no key', async () => {
    expectProblem(await issue(stranger, 'build-2'), 403, 'forbidden-by-policy');
  });

  it('may not read, list or revoke the key of the workflow the policy accepts, and each refusal is audited', async () => {
    const before = (await denials()).length;
    for (const answer of [
      await h.call('GET', `/v1/keys/${mainKey.body.id}`, { token: stranger }),
      await h.call('GET', '/v1/keys', { token: stranger }),
      await h.call('DELETE', `/v1/keys/${mainKey.body.id}`, { token: stranger }),
      await h.call('POST', '/v1/jobs/build-1/complete', { token: stranger }),
    ]) {
      expectProblem(answer, 403, 'forbidden-by-policy');
      expect(answer.body.reason).toBe('no-matching-rule');
    }
    expect(await statusOf(mainKey.body.id)).toBe('active');
    expect((await denials()).slice(before)).toEqual(Array(4).fill('no-matching-rule'));
  });
});

describe('a caller with the same subject accepted by another rule', () => {
  it("finds the other owner's key exactly like one that does not exist, and the attempt is audited", async () => {
    const read = await h.call('GET', `/v1/keys/${mainKey.body.id}`, { token: release });
    const revoke = await h.call('DELETE', `/v1/keys/${mainKey.body.id}`, { token: release });
    expectProblem(read, 404, 'key-not-found');
    expectProblem(revoke, 404, 'key-not-found');
    expect((await h.call('GET', '/v1/keys', { token: release })).body.items).toEqual([]);
    expect(await statusOf(mainKey.body.id)).toBe('active');
    const attempts = (await h.auditEvents('access.denied')).filter(
      (event) => event.key_id === mainKey.body.id,
    );
    expect(attempts.map((event) => event.details.reason)).toEqual(['not-the-owner', 'not-the-owner']);
  });

  it('cannot take a job id first and so block the real job, nor learn that the job exists', async () => {
    const first = await issue(release, 'build-7');
    expect(first.status, first.text).toBe(201);
    const real = await issue(main, 'build-7');
    expect(real.status, real.text).toBe(201);
    expect(real.body.id).not.toBe(first.body.id);
    expect(real.body.vault.path).not.toBe(first.body.vault.path);
    // Completing "its" job touches only its own key.
    const completed = await h.call('POST', '/v1/jobs/build-7/complete', { token: release });
    expect(completed.body.keys.map((key: { id: string }) => key.id)).toEqual([first.body.id]);
    expect(await statusOf(real.body.id)).toBe('active');
  });

  it("replaying the other owner's Idempotency-Key gets its own key, never the other's", async () => {
    const headers = { 'idempotency-key': 'build-9-models' };
    const original = await issue(main, 'build-9', headers, 'response');
    expect(original.status, original.text).toBe(201);
    const replayed = await issue(release, 'build-9', headers, 'response');
    expect(replayed.status, replayed.text).toBe(201);
    expect(replayed.headers.get('idempotent-replayed')).toBeNull();
    expect(replayed.body.id).not.toBe(original.body.id);
    expect(replayed.body.privateKey).not.toBe(original.body.privateKey);
  });
});

describe('the owner', () => {
  it('reads, lists and revokes its key', async () => {
    expect((await h.call('GET', `/v1/keys/${mainKey.body.id}`, { token: main })).status).toBe(200);
    const listed = (await h.call('GET', '/v1/keys', { token: main })).body.items.map(
      (key: { id: string }) => key.id,
    );
    expect(listed).toContain(mainKey.body.id);
    expect((await h.call('DELETE', `/v1/keys/${mainKey.body.id}`, { token: main })).status).toBe(202);
  });
});
