// Three ways a key could outlive what its caller was allowed: a burst of issues slipping past the
// live-key limit, a revoke asked for while the key was still pending, and a wrapped key whose
// replayed request handed out more unwrap tokens (one of them working after the revoke).
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/service-harness.ts';
import {
  expectProblem,
  SECURITY_POLICY,
  type SecurityHarness,
  startSecurityHarness,
} from './security-harness.ts';

const LIMIT = 3;
let h: SecurityHarness;
let quota: string;
beforeAll(async () => {
  h = await startSecurityHarness({
    fileConfig: {
      policy: [
        {
          name: 'quota',
          // Not `*ci`: the unlimited test-callers rule would then allow whatever this rule's limit refuses.
          match: { issuer: 'api-token', token: 'quota-runner' },
          allow: { providers: ['github'], repositories: ['acme/*'], maxActiveKeys: LIMIT },
        },
        ...SECURITY_POLICY,
      ],
    },
  });
  quota = (
    await h.harness.service.container.tokens.create({ name: 'quota-runner', role: 'issuer', actor: 'test' })
  ).token;
  h.remember(quota);
});
afterAll(async () => {
  await h?.expectNoLeaks();
  await h?.close();
});

const db = () => h.harness.database.db;
const issue = (
  jobId: string,
  options: { token?: string; delivery?: string; headers?: Record<string, string> } = {},
) =>
  h.call('POST', '/v1/keys', {
    body: {
      provider: 'github',
      repository: 'acme/models',
      jobId,
      ttlSeconds: 600,
      delivery: options.delivery ?? 'vault',
    },
    ...(options.token ? { token: options.token } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });

describe('the live-key limit', () => {
  it(`holds under ${4 * LIMIT} concurrent issues: exactly ${LIMIT} are issued, the rest refused and audited`, async () => {
    const answers = await Promise.all(
      Array.from({ length: 4 * LIMIT }, (_, i) => issue(`quota-${i}`, { token: quota })),
    );
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([...Array(LIMIT).fill(201), ...Array(3 * LIMIT).fill(403)]);
    for (const refused of answers.filter((answer) => answer.status === 403)) {
      expectProblem(refused, 403, 'forbidden-by-policy');
      expect(refused.body.reason).toBe('too-many-active-keys');
    }
    const live = await db()
      .selectFrom('deploy_keys')
      .select('id')
      .where('caller', '=', 'token:quota-runner')
      .where('status', 'in', ['pending', 'active', 'revoking'])
      .execute();
    expect(live).toHaveLength(LIMIT);
    const denied = (await h.auditEvents('policy.denied')).filter(
      (event) => event.details.reason === 'too-many-active-keys',
    );
    expect(denied).toHaveLength(3 * LIMIT);
  });
});

describe('a revoke asked for while the key is pending', () => {
  it('is recorded, audited and carried out the moment the issue finishes', async () => {
    h.harness.standIns.github.api.faults.add({
      method: 'POST',
      pathPrefix: '/repos/',
      latencyMs: 1_500,
      count: 1,
    });
    const issuing = issue('pending-revoke');
    const pending = await eventually(
      async () => {
        const row = await db()
          .selectFrom('deploy_keys')
          .selectAll()
          .where('job_id', '=', 'pending-revoke')
          .executeTakeFirst();
        return row?.status === 'pending' ? row : undefined;
      },
      { what: 'the key to be pending' },
    );
    const revoke = await h.call('DELETE', `/v1/keys/${pending.id}`);
    expect(revoke.status, revoke.text).toBe(202);
    expect(revoke.body.status).toBe('pending');

    const issued = await issuing;
    expect(issued.status, issued.text).toBe(201);
    expect(['revoking', 'revoked']).toContain(issued.body.status);
    const revoked = await eventually(
      async () => {
        const answer = await h.call('GET', `/v1/keys/${pending.id}`);
        return answer.body.status === 'revoked' ? answer.body : undefined;
      },
      { what: 'the key to be revoked', timeoutMs: 10_000 },
    );
    expect(revoked.revokeReason).toBe('manual');
    const requested = (await h.auditEvents('key.revoke_requested')).filter(
      (event) => event.key_id === pending.id,
    );
    expect(requested[0]).toMatchObject({
      actor: 'token:ci',
      details: { reason: 'manual', whileIssuing: true },
    });
  });
});

describe('a wrapped key', () => {
  const unwrap = (token: string) =>
    vault({ endpoint: h.harness.standIns.vault.addr, token: h.harness.standIns.vault.token })
      .unwrap({ token })
      .then(
        (body: { data: { data: Record<string, string> } }) => body.data.data['ssh-privatekey'],
        () => undefined,
      );

  it('hands out its unwrap token once: a replay gets the accessor only, and revoking kills the token', async () => {
    const headers = { 'idempotency-key': 'wrapped-once' };
    const first = await issue('wrapped-1', { delivery: 'wrapped', headers });
    expect(first.status, first.text).toBe(201);
    expect(first.body.wrapToken).toEqual(expect.any(String));
    expect(first.body.wrapAccessor).toEqual(expect.any(String));

    const replays = await Promise.all(
      [1, 2, 3].map(() => issue('wrapped-1', { delivery: 'wrapped', headers })),
    );
    for (const replay of replays) {
      expect(replay.status, replay.text).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body.wrapToken).toBeUndefined();
      expect(replay.body.wrapAccessor).toBe(first.body.wrapAccessor);
    }

    expect((await h.call('DELETE', `/v1/keys/${first.body.id}`)).status).toBe(202);
    await eventually(
      async () => (await h.call('GET', `/v1/keys/${first.body.id}`)).body.status === 'revoked',
      {
        what: 'the key to be revoked',
      },
    );
    expect(
      await unwrap(first.body.wrapToken),
      'the wrap token unwraps nothing after the revoke',
    ).toBeUndefined();
  });
});
