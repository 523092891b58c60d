// Key state changes that arrive together share a commit (one hold of the audit chain lock), yet each
// keeps its own outcome and its own audit event, and the chain stays whole and gap-free.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { walkAuditChain } from '../../src/audit/audit-verify.ts';
import { createKeyRepository, type KeyRepository } from '../../src/keys/key.repository.ts';
import { countingDb, createTestDatabase, pendingKeyRow, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let keys: KeyRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = createKeyRepository(database.db);
});
afterAll(async () => {
  await database?.drop();
});

const pendingRow = (jobId: string) => pendingKeyRow(jobId, 'token:group');

const requested = { actor: 'token:group', action: 'key.requested' };

/** Each audit event with the transaction that wrote it. */
const eventsWithTransactions = async () =>
  (
    await database.pool.query<{ seq: string; key_id: string | null; xid: string }>(
      'SELECT seq, key_id, xmin::text AS xid FROM audit_events ORDER BY seq',
    )
  ).rows;

it('commits concurrent state changes in fewer transactions than events, each audited once, chain whole', async () => {
  const rows = Array.from({ length: 60 }, (_, i) => pendingRow(`group-${i}`));
  const inserted = await Promise.all(rows.map((row) => keys.insertPending(row, requested)));
  expect(inserted.every((result) => result.outcome === 'inserted')).toBe(true);
  const moved = await Promise.all(
    rows.map((row) =>
      keys.transition(
        row.id,
        ['pending'],
        { status: 'active' },
        { actor: 'token:group', action: 'key.issued' },
      ),
    ),
  );
  expect(moved.map((row) => row?.status)).toEqual(rows.map(() => 'active'));

  const events = await eventsWithTransactions();
  expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => String(i + 1)));
  for (const row of rows) expect(events.filter((event) => event.key_id === row.id)).toHaveLength(2);
  expect(new Set(events.map((event) => event.xid)).size).toBeLessThan(events.length);
  expect(await walkAuditChain(database.db)).toMatchObject({ ok: true, checked: 120 });
});

it('gives a change that fails inside a group its own error, and the others their effect', async () => {
  const before = (await eventsWithTransactions()).length;
  const rows = Array.from({ length: 20 }, (_, i) => pendingRow(`mixed-${i}`));
  // The same job, provider and repository again while the first is live: the unique index refuses it.
  const duplicate = { ...pendingRow('mixed-7'), id: randomUUID() };
  const results = await Promise.allSettled([
    ...rows.map((row) => keys.insertPending(row, requested)),
    keys.insertPending(duplicate, requested),
    // A transition from a state the key is not in changes nothing and audits nothing.
    keys.transition(rows[0]!.id, ['revoking'], { status: 'revoked' }, { actor: 'x', action: 'key.revoked' }),
  ]);
  const outcomes = results.map((result) => (result.status === 'fulfilled' ? result.value : result.reason));
  expect(outcomes.slice(0, 20).every((outcome) => outcome?.outcome === 'inserted')).toBe(true);
  expect(outcomes[20]).toMatchObject({ outcome: 'live-key-exists' });
  expect(outcomes[21]).toBeUndefined();

  const events = await eventsWithTransactions();
  expect(events).toHaveLength(before + 20);
  expect(events.filter((event) => event.key_id === duplicate.id)).toHaveLength(0);
  expect(await walkAuditChain(database.db)).toMatchObject({ ok: true, checked: before + 20 });
});

/** The repository on a Kysely that counts the statements it sends. */
function countingRepository() {
  const { db, counter } = countingDb(database);
  return { repository: createKeyRepository(db), counter };
}

const eventsOf = async (keyId: string) =>
  (
    await database.pool.query<{ action: string; details: Record<string, unknown> }>(
      'SELECT action, details FROM audit_events WHERE key_id = $1 ORDER BY seq',
      [keyId],
    )
  ).rows;

it('runs changes of one shape on many keys as one statement, each caller getting its own row and event', async () => {
  const rows = Array.from({ length: 40 }, (_, i) => pendingRow(`merged-${i}`));
  await Promise.all(rows.map((row) => keys.insertPending(row, requested)));
  const { repository, counter } = countingRepository();
  const failed = await Promise.all(
    rows.map((row, i) =>
      repository.transition(
        row.id,
        ['pending'],
        { status: 'failed', failure_reason: `reason ${i}` },
        { actor: `caller-${i}`, action: 'key.issue_failed', details: { reason: `reason ${i}`, n: i } },
      ),
    ),
  );
  // One group, or two if a commit was already under way: each a transaction (begin with the chain
  // lock, the statement, commit), where one statement per change made 42.
  expect(counter.statements).toBeLessThanOrEqual(8);
  expect(failed.map((row) => row?.id)).toEqual(rows.map((row) => row.id));
  expect(failed.map((row) => row?.failure_reason)).toEqual(rows.map((_, i) => `reason ${i}`));
  for (const [i, row] of rows.entries()) {
    expect(await eventsOf(row.id)).toEqual([
      { action: 'key.requested', details: {} },
      { action: 'key.issue_failed', details: { reason: `reason ${i}`, n: i } },
    ]);
  }
  expect((await walkAuditChain(database.db)).ok).toBe(true);
});

it('never merges two changes of the same key: each applies as if run one after the other', async () => {
  const [first, ...others] = Array.from({ length: 6 }, (_, i) => pendingRow(`same-key-${i}`));
  await Promise.all([first!, ...others].map((row) => keys.insertPending(row, requested)));
  const markWhileIssuing = (id: string, reason: 'manual' | 'expired') =>
    keys.transition(
      id,
      ['pending'],
      { revoke_reason: reason, revoke_requested_at: new Date() },
      { actor: 'x', action: 'key.revoke_requested', details: { reason, whileIssuing: true } },
    );
  // Asked for together, they share a group; two of them are on one key.
  const results = await Promise.all([
    markWhileIssuing(others[0]!.id, 'manual'),
    markWhileIssuing(first!.id, 'manual'),
    ...others.slice(1).map((row) => markWhileIssuing(row.id, 'manual')),
    markWhileIssuing(first!.id, 'expired'),
  ]);
  expect(results.every((row) => row?.status === 'pending')).toBe(true);
  // Both requests on the key were recorded, in the order they were asked for.
  expect((await eventsOf(first!.id)).map((event) => event.details.reason)).toEqual([
    undefined,
    'manual',
    'expired',
  ]);
  expect(results.at(-1)?.revoke_reason).toBe('expired');
  expect((await walkAuditChain(database.db)).ok).toBe(true);
});

it('gives a change that breaks a merged statement its own error, and the others of its shape their effect', async () => {
  const rows = Array.from({ length: 10 }, (_, i) => pendingRow(`merged-bad-${i}`));
  await Promise.all(rows.map((row) => keys.insertPending(row, requested)));
  const results = await Promise.allSettled(
    rows.map((row, i) =>
      keys.transition(
        row.id,
        ['pending'],
        // Postgres refuses a NUL in text, so the one statement all ten would share fails.
        { status: 'failed', failure_reason: i === 4 ? 'bad \u0000 byte' : `reason ${i}` },
        { actor: 'x', action: 'key.issue_failed' },
      ),
    ),
  );
  expect(results.map((result) => result.status)).toEqual(
    rows.map((_, i) => (i === 4 ? 'rejected' : 'fulfilled')),
  );
  const statuses = await database.pool.query<{ id: string; status: string }>(
    'SELECT id, status FROM deploy_keys WHERE id = ANY($1::uuid[])',
    [rows.map((row) => row.id)],
  );
  const statusOf = new Map(statuses.rows.map((row) => [row.id, row.status]));
  expect(rows.map((row) => statusOf.get(row.id))).toEqual(
    rows.map((_, i) => (i === 4 ? 'pending' : 'failed')),
  );
  expect(await eventsOf(rows[4]!.id)).toHaveLength(1);
  expect((await walkAuditChain(database.db)).ok).toBe(true);
});

it('writes many new keys arriving together with one statement, each with its own binding and details', async () => {
  const rows = Array.from({ length: 30 }, (_, i) => ({
    ...pendingRow(`insert-${i}`),
    caller_details: JSON.stringify({ n: i, name: `caller "${i}"` }),
    binding: i % 2 ? JSON.stringify({ kind: 'github-run', runId: String(i) }) : null,
    binding_refs: i % 2 ? [`run:${i}`, `repo:{${i}}`] : [],
  }));
  const { repository, counter } = countingRepository();
  const results = await Promise.all(
    rows.map((row, i) => repository.insertPending(row, { ...requested, details: { i } })),
  );
  expect(results.map((result) => result.outcome)).toEqual(rows.map(() => 'inserted'));
  expect(results.map((result) => (result.outcome === 'inserted' ? result.row.id : undefined))).toEqual(
    rows.map((row) => row.id),
  );
  // One statement for all (or two, if a commit was under way): a transaction of three round trips.
  expect(counter.statements).toBeLessThanOrEqual(8);
  const stored = await database.pool.query<{
    id: string;
    caller_details: unknown;
    binding: unknown;
    binding_refs: string[];
    status: string;
  }>('SELECT id, caller_details, binding, binding_refs, status FROM deploy_keys WHERE id = ANY($1::uuid[])', [
    rows.map((row) => row.id),
  ]);
  const byId = new Map(stored.rows.map((row) => [row.id, row]));
  for (const [i, row] of rows.entries()) {
    expect(byId.get(row.id)).toEqual({
      id: row.id,
      caller_details: { n: i, name: `caller "${i}"` },
      binding: i % 2 ? { kind: 'github-run', runId: String(i) } : null,
      binding_refs: i % 2 ? [`run:${i}`, `repo:{${i}}`] : [],
      status: 'pending',
    });
    expect(await eventsOf(row.id)).toEqual([{ action: 'key.requested', details: { i } }]);
  }
  expect((await walkAuditChain(database.db)).ok).toBe(true);
});
