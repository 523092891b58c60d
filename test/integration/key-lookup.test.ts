// Reads of keys by id that arrive together go to Postgres as one query, yet each caller gets its
// own key (or nothing), and a read never misses a change committed before it was asked for.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NewDeployKeyRow } from '../../src/db/schema.ts';
import { createKeyRepository, type KeyRepository } from '../../src/keys/key.repository.ts';
import { countingDb, createTestDatabase, pendingKeyRow, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let keys: KeyRepository;
let counter: { statements: number };

beforeAll(async () => {
  database = await createTestDatabase();
  const counting = countingDb(database);
  counter = counting.counter;
  keys = createKeyRepository(counting.db);
});
afterAll(async () => {
  await database?.drop();
});

const pendingRow = (jobId: string) => pendingKeyRow(jobId, 'token:lookup');

it('answers many reads asked for together with few queries, each with its own key or nothing', async () => {
  const rows = Array.from({ length: 50 }, (_, i) => pendingRow(`lookup-${i}`));
  await Promise.all(rows.map((row) => keys.insertPending(row, { actor: 'x', action: 'key.requested' })));
  const missing = randomUUID();
  counter.statements = 0;
  const found = await Promise.all([
    ...rows.map((row) => keys.findById(row.id)),
    keys.findById(rows[3]!.id),
    keys.findById(missing),
    keys.findById('not-a-key-id'),
  ]);
  expect(found.slice(0, 50).map((row) => row?.job_id)).toEqual(rows.map((row) => row.job_id));
  expect(found[50]?.id).toBe(rows[3]!.id);
  expect(found[51]).toBeUndefined();
  expect(found[52]).toBeUndefined();
  // Asked for together, they go in one query, or two if a read was already under way.
  expect(counter.statements).toBeLessThanOrEqual(3);
});

it('sees a change committed before the read was asked for, even while other reads are under way', async () => {
  const row = pendingRow('lookup-after-change');
  await keys.insertPending(row, { actor: 'x', action: 'key.requested' });
  const before = keys.findById(row.id);
  const changed = await keys.transition(
    row.id,
    ['pending'],
    { status: 'failed', failure_reason: 'test' },
    { actor: 'x', action: 'key.issue_failed' },
  );
  expect(changed?.status).toBe('failed');
  const [earlier, after] = await Promise.all([before, keys.findById(row.id)]);
  expect(earlier?.id).toBe(row.id);
  expect(after?.status).toBe('failed');
});

it('finds the live keys bound to each of many jobs asked for together, each job its own and no other', async () => {
  const bound = (jobId: string, refs: string[]): NewDeployKeyRow => ({
    ...pendingRow(jobId),
    binding: JSON.stringify({ kind: 'github-run' }),
    binding_refs: refs,
  });
  const rows = [
    bound('bound-a1', ['run:a', 'job:a1']),
    bound('bound-a2', ['run:a', 'job:a2']),
    bound('bound-b1', ['run:b', 'job:b1']),
    bound('bound-c1', ['run:c', 'job:c1']),
  ];
  for (const row of rows) await keys.insertPending(row, { actor: 'x', action: 'key.requested' });
  // A key that is already on its way out is not the job end's to act on.
  await keys.transition(
    rows[3]!.id,
    ['pending'],
    { status: 'failed' },
    { actor: 'x', action: 'key.issue_failed' },
  );
  counter.statements = 0;
  const found = await Promise.all(
    ['run:a', 'job:a2', 'run:b', 'run:c', 'run:none', 'run:a'].map((ref) => keys.liveKeysBoundTo(ref)),
  );
  expect(found.map((keysOfJob) => keysOfJob.map((row) => row.job_id))).toEqual([
    ['bound-a1', 'bound-a2'],
    ['bound-a2'],
    ['bound-b1'],
    [],
    [],
    ['bound-a1', 'bound-a2'],
  ]);
  expect(counter.statements).toBeLessThanOrEqual(2);
});
