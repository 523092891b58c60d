// Every authorization decision is in the audit log, refusals included: a caller probing what its
// role or identity does not allow leaves a trace security teams can find, with the reason.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectProblem, type SecurityHarness, startSecurityHarness } from './security-harness.ts';

let h: SecurityHarness;
let tokens: Record<string, string>;
let theirs: string;
beforeAll(async () => {
  h = await startSecurityHarness();
  tokens = h.harness.tokens;
  const issued = await h.call('POST', '/v1/keys', {
    body: { provider: 'github', repository: 'acme/models', jobId: 'refusals-1', ttlSeconds: 600 },
    token: tokens['other-ci']!,
  });
  expect(issued.status, issued.text).toBe(201);
  theirs = issued.body.id;
});
afterAll(async () => {
  await h?.expectNoLeaks();
  await h?.close();
});

it('audits each refusal with the actor, the reason and the request', async () => {
  const refusals: [string, string, Parameters<SecurityHarness['call']>[2], number, string][] = [
    [
      'POST',
      '/v1/keys',
      {
        token: tokens.auditor!,
        body: { provider: 'github', repository: 'acme/models', jobId: 'x', ttlSeconds: 600 },
      },
      403,
      'role-not-allowed',
    ],
    [
      'POST',
      '/v1/admin/tokens',
      { token: tokens.ci!, body: { name: 'mine', role: 'admin' } },
      403,
      'role-not-allowed',
    ],
    ['GET', '/v1/audit/events', { token: tokens.ci! }, 403, 'role-not-allowed'],
    ['DELETE', `/v1/keys/${theirs}`, { token: tokens.auditor! }, 403, 'role-not-allowed'],
    ['DELETE', `/v1/keys/${theirs}`, { token: tokens.ci! }, 404, 'key-not-found'],
  ];
  for (const [method, path, options, status, code] of refusals) {
    expectProblem(await h.call(method, path, options), status, code);
  }
  const denied = await h.auditEvents('access.denied');
  expect(denied.map((event) => [event.actor, event.details.reason, event.details.route])).toEqual([
    ['token:auditor', 'role-not-allowed', 'POST /v1/keys'],
    ['token:ci', 'role-not-allowed', 'POST /v1/admin/tokens'],
    ['token:ci', 'role-not-allowed', 'GET /v1/audit/events'],
    ['token:auditor', 'role-not-allowed', 'DELETE /v1/keys/:id'],
    ['token:ci', 'not-the-owner', 'DELETE /v1/keys/:id'],
  ]);
  // The attempt on another caller's key is on that key's record, where its owner looks.
  expect(denied.at(-1)).toMatchObject({ key_id: theirs, repository: 'acme/models', job_id: 'refusals-1' });
  expect((await h.harness.service.container.keys.findById(theirs))?.status).toBe('active');
});

it('audits nothing for a request without credentials, which names no one', async () => {
  const before = (await h.auditEvents('access.denied')).length;
  expectProblem(await h.call('GET', '/v1/audit/events', { token: null }), 401, 'unauthorized');
  expect(await h.auditEvents('access.denied')).toHaveLength(before);
});
