// Key state changes that arrive together share a commit (one hold of the audit chain lock), yet each
// keeps its own outcome and its own audit event, and the chain stays whole and gap-free.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { walkAuditChain } from '../../src/audit/audit-verify.ts';
import type { NewDeployKeyRow } from '../../src/db/schema.ts';
import { createKeyRepository, type KeyRepository } from '../../src/keys/key.repository.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let keys: KeyRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = createKeyRepository(database.db);
});
afterAll(async () => {
  await database?.drop();
});

const pendingRow = (jobId: string): NewDeployKeyRow => ({
  id: randomUUID(),
  provider: 'github',
  repository: 'acme/models',
  repository_key: 'acme/models',
  job_id: jobId,
  delivery: 'vault',
  caller: 'token:group',
  owner: 'token:group',
  expires_at: new Date(Date.now() + 600_000),
});

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
