// The chain hash is completed inside Postgres (audit_append); it must be the very hash the
// application recomputes, for any text, under concurrent writers and across rolled-back appends.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { appendAuditEvent, chainHash, GENESIS_HASH } from '../../src/audit/audit.repository.ts';
import { walkAuditChain } from '../../src/audit/audit-verify.ts';
import { createKeyRepository } from '../../src/keys/key.repository.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

const AWKWARD = [
  'plain',
  'quote " backslash \\ slash /',
  'control \u0001\u001f tab \t newline \n return \r',
  'ünïcödé ✓ 日本語 \u2028\u2029 emoji 🔑',
  '',
];

it('stores the hash the application computes, starting from the genesis hash', async () => {
  const first = await database.db.transaction().execute((trx) =>
    appendAuditEvent(trx, {
      actor: 'token:a',
      action: 'key.requested',
      details: { nested: { b: 1, a: [2] } },
    }),
  );
  expect(first.seq).toBe('1');
  expect(first.prevHash).toBe(GENESIS_HASH);
  expect(first.hash).toBe(chainHash(GENESIS_HASH, first));

  for (const text of AWKWARD) {
    const event = await database.db.transaction().execute((trx) =>
      appendAuditEvent(trx, {
        actor: `token:${text}`,
        action: 'key.issued',
        keyId: '7c0b7a52-4a5e-4b8e-9d3e-2b9a1f1d6c11',
        provider: 'github',
        repository: text,
        jobId: text,
        details: { [text]: text, number: 1.5, flag: true, none: null, list: [text, { z: 1, a: 2 }] },
      }),
    );
    expect(event.hash).toBe(chainHash(event.prevHash, event));
  }
  expect(await walkAuditChain(database.db)).toMatchObject({ ok: true, checked: AWKWARD.length + 1 });
});

it('keeps one unbroken chain under concurrent writers and rolled-back appends', async () => {
  const before = (await walkAuditChain(database.db)).checked;
  const outcomes = await Promise.allSettled(
    Array.from({ length: 40 }, (_, i) =>
      database.db.transaction().execute(async (trx) => {
        await appendAuditEvent(trx, { actor: 'token:c', action: 'key.requested', jobId: `job-${i}` });
        if (i % 5 === 0) throw new Error('roll back');
      }),
    ),
  );
  expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toHaveLength(8);
  expect(await walkAuditChain(database.db)).toMatchObject({ ok: true, checked: before + 32 });
});

it("stamps each event with its writer's clock, also the events that ride on a key's change", async () => {
  const at = new Date('2031-02-03T04:05:06.789Z');
  expect((await appendAuditEvent(database.db, { actor: 'token:t', action: 'test.timed', at })).at).toEqual(
    at,
  );
  const keys = createKeyRepository(database.db, () => at);
  const id = randomUUID();
  await keys.insertPending(
    {
      id,
      provider: 'github',
      repository: 'acme/models',
      repository_key: 'acme/models',
      job_id: 'timed',
      delivery: 'vault',
      caller: 'token:t',
      owner: 'token:t',
      expires_at: new Date(at.getTime() + 600_000),
    },
    { actor: 'token:t', action: 'key.requested' },
  );
  await keys.recordEvent({ actor: 'token:t', action: 'access.denied', keyId: id });
  const { rows } = await database.pool.query<{ action: string; at: Date }>(
    "SELECT action, at FROM audit_events WHERE actor = 'token:t' ORDER BY seq",
  );
  expect(rows).toEqual(['test.timed', 'key.requested', 'access.denied'].map((action) => ({ action, at })));
  expect(await walkAuditChain(database.db)).toMatchObject({ ok: true });
});
