// The admin token API: only admins reach it, a new token's value is shown once (in the 201) and
// works until revoked, and no listing ever shows a token value or its hash.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Answer,
  expectProblem,
  type SecurityHarness,
  startSecurityHarness,
} from './security-harness.ts';

let h: SecurityHarness;
let admin: string;
beforeAll(async () => {
  h = await startSecurityHarness();
  admin = h.harness.tokens.admin!;
});
afterAll(async () => {
  await h?.close();
});

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const create = (body: Record<string, unknown>, token = admin) =>
  h.call('POST', '/v1/admin/tokens', { body, token });
const issueWith = (token: string, jobId: string) =>
  h.call('POST', '/v1/keys', {
    body: { provider: 'github', repository: 'acme/models', jobId, ttlSeconds: 600 },
    token,
  });

describe('who reaches /v1/admin/tokens', () => {
  const attempts: [string, string, Record<string, unknown> | undefined][] = [
    ['GET', '/v1/admin/tokens', undefined],
    ['POST', '/v1/admin/tokens', { name: 'sneaky-ci', role: 'admin' }],
    ['DELETE', '/v1/admin/tokens/admin', undefined],
  ];

  it.each(['ci', 'auditor'])('a caller with the %s token gets 403 on every route', async (name) => {
    for (const [method, path, body] of attempts) {
      const answer = await h.call(method, path, { body, token: h.harness.tokens[name]! });
      expectProblem(answer, 403, 'role-not-allowed');
    }
  });

  it('a workload identity gets 403, and nobody without a token gets past 401', async () => {
    const workload = await h.mint('github-actions', { repository: 'acme/models' });
    for (const [method, path, body] of attempts) {
      expectProblem(await h.call(method, path, { body, token: workload }), 403, 'role-not-allowed');
      expectProblem(await h.call(method, path, { body, token: null }), 401, 'unauthorized');
    }
  });

  it('none of those attempts created or revoked a token', async () => {
    const rows = await h.harness.database.db.selectFrom('api_tokens').selectAll().execute();
    expect(rows.map((r) => r.name).sort()).toEqual(['admin', 'auditor', 'ci', 'other-ci']);
    expect(rows.every((r) => r.revoked_at === null)).toBe(true);
  });
});

describe('a token created through the admin API', () => {
  let created: Answer;
  beforeAll(async () => {
    created = await create({ name: 'deploy-ci', role: 'issuer', expiresInSeconds: 3_600 });
  });

  it('is shown once, in the 201 answer, which no cache may keep', async () => {
    expect(created.status, created.text).toBe(201);
    expect(created.body.token).toMatch(/^dkr_[A-Za-z0-9_-]{43}$/);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.body).toMatchObject({ name: 'deploy-ci', role: 'issuer', createdBy: 'token:admin' });
  });

  it('is stored only as its hash', async () => {
    const row = await h.harness.database.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('name', '=', 'deploy-ci')
      .executeTakeFirstOrThrow();
    expect(row.token_sha256).toBe(sha256(created.body.token));
    expect(JSON.stringify(row)).not.toContain(created.body.token);
    const audit = await h.auditEvents('token.created');
    expect(JSON.stringify(audit)).not.toContain(created.body.token);
    expect(JSON.stringify(audit)).not.toContain(row.token_sha256);
  });

  it('works as the caller it names', async () => {
    const issued = await issueWith(created.body.token, 'admin-api-1');
    expect(issued.status, issued.text).toBe(201);
    const row = await h.harness.service.container.keys.findById(issued.body.id);
    expect(row?.caller).toBe('token:deploy-ci');
  });

  it('cannot be created a second time under the same name, and the refusal carries no value', async () => {
    const again = await create({ name: 'deploy-ci', role: 'admin' });
    expectProblem(again, 409, 'token-name-taken');
    expect(again.body.token).toBeUndefined();
  });

  it('cannot have its value chosen by the caller, nor an unknown role', async () => {
    expectProblem(await create({ name: 'chosen-ci', role: 'issuer', token: 'dkr_chosen' }), 400);
    expectProblem(await create({ name: 'root-ci', role: 'root' }), 400);
    expectProblem(await create({ name: '../admin', role: 'issuer' }), 400);
  });

  it('does not let its holder create tokens', async () => {
    expectProblem(
      await create({ name: 'next-ci', role: 'admin' }, created.body.token),
      403,
      'role-not-allowed',
    );
  });

  it('stops working once revoked, and revoking again changes nothing', async () => {
    const revoked = await h.call('DELETE', `/v1/admin/tokens/${created.body.id}`, { token: admin });
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expect(revoked.body.token).toBeUndefined();
    expectProblem(await issueWith(created.body.token, 'admin-api-2'), 401, 'unauthorized');

    const twice = await h.call('DELETE', '/v1/admin/tokens/deploy-ci', { token: admin });
    expect(twice.body.revokedAt).toBe(revoked.body.revokedAt);
    expect(await h.auditEvents('token.revoked')).toHaveLength(1);
    expectProblem(await h.call('DELETE', '/v1/admin/tokens/no-such-token', { token: admin }), 404);
  });
});

it('GET /v1/admin/tokens never shows a token value or a hash', async () => {
  const listed = await h.call('GET', '/v1/admin/tokens', { token: admin });
  expect(listed.status).toBe(200);
  expect(listed.body.items.map((t: { name: string }) => t.name)).toEqual(
    expect.arrayContaining(['admin', 'auditor', 'ci', 'other-ci', 'deploy-ci']),
  );
  const fields = ['createdAt', 'createdBy', 'expiresAt', 'id', 'lastUsedAt', 'name', 'revokedAt', 'role'];
  for (const item of listed.body.items) expect(Object.keys(item).sort()).toEqual(fields);
  const rows = await h.harness.database.db.selectFrom('api_tokens').select('token_sha256').execute();
  for (const { token_sha256 } of rows) expect(listed.text).not.toContain(token_sha256);
  expect(listed.text).not.toMatch(/dkr_/);
});

it('no token, minted JWT or private key appears in an error body or a log line', async () => {
  await h.expectNoLeaks();
});
