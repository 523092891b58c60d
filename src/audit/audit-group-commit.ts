// Group commit for audited statements. Every audit append holds the chain lock until its transaction
// commits, so appends one per transaction run at most one commit (one WAL flush) at a time. Here
// the statements asked for in the same turn of the event loop, or while a commit is under way,
// run together in the next transaction: the chain lock is taken once and one flush makes the
// whole group durable. Each statement still changes its row and appends its event together, the
// chain format is unchanged, and the seqs stay gap-free: a group that fails is rolled back whole,
// and its statements are then run one by one, each in its own transaction as without grouping,
// so each gets its own outcome.
//
// Statements of one shape on different rows (say, many keys moving from `revoking` to `revoked`)
// are also merged into one statement: every round trip to Postgres costs CPU on both sides, and a
// group of N such changes then costs three round trips instead of N + 3. Every statement of a group
// was asked for while none of the others had an answer yet, so any order among them is one the
// callers could have seen; two on the same row are never merged, so each sees the other's effect.
import { type CompiledQuery, type Kysely, sql } from 'kysely';
import { AUDIT_CHAIN_LOCK } from './audit.repository.ts';

/** A statement that may run merged with others of its kind into one statement. */
export interface MergeableStatement<Input = unknown> {
  /** Statements merge only with others of the same kind: the same shape, other inputs. */
  kind: string;
  /** The row the statement changes; two statements on one row are never merged. */
  target: string;
  input: Input;
  /**
   * One statement doing what each input's statement would do. Every row it returns carries
   * `merge_slot`, the index of the input it answers; the group hands each caller its own rows.
   */
  merge(inputs: Input[]): CompiledQuery;
}

type Statement = CompiledQuery | MergeableStatement;

interface Waiting {
  statement: Statement;
  resolve(rows: unknown[]): void;
  reject(error: unknown): void;
}

interface Planned {
  query: CompiledQuery;
  members: Waiting[];
  merged: boolean;
}

/** Statements per transaction at most: bounds how long one group holds the chain lock. */
const MAX_GROUP = 64;

// One round trip opens the transaction and takes the chain lock: a query without parameters goes
// as a simple query, which may hold several statements.
const BEGIN_AND_LOCK = sql.raw(`BEGIN; SELECT pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`);

export interface GroupCommit {
  /** Runs one audited statement in the next group and returns its rows once that group commits. */
  execute<Row>(statement: Statement): Promise<Row[]>;
}

const isMergeable = (statement: Statement): statement is MergeableStatement => 'merge' in statement;

/** The group as statements to run: mergeable ones of a kind together, as long as their rows differ. */
function planOf(group: Waiting[]): Planned[] {
  const planned: Planned[] = [];
  const open = new Map<string, { members: Waiting[]; targets: Set<string> }[]>();
  for (const item of group) {
    const { statement } = item;
    if (!isMergeable(statement)) {
      planned.push({ query: statement, members: [item], merged: false });
      continue;
    }
    const batches = open.get(statement.kind) ?? [];
    open.set(statement.kind, batches);
    let batch = batches.find((candidate) => !candidate.targets.has(statement.target));
    if (!batch) {
      batch = { members: [], targets: new Set() };
      batches.push(batch);
      // Its query is made once the batch is complete, below.
      planned.push({ query: undefined as unknown as CompiledQuery, members: batch.members, merged: true });
    }
    batch.members.push(item);
    batch.targets.add(statement.target);
  }
  for (const entry of planned) {
    if (!entry.merged) continue;
    const statements = entry.members.map((member) => member.statement as MergeableStatement);
    entry.query = (statements[0] as MergeableStatement).merge(statements.map((statement) => statement.input));
  }
  return planned;
}

/** Each member's rows: a merged statement's rows by their `merge_slot`, which the callers never see. */
function handOut(entry: Planned, rows: Record<string, unknown>[], results: Map<Waiting, unknown[]>) {
  if (!entry.merged) {
    results.set(entry.members[0] as Waiting, rows);
    return;
  }
  const bySlot = entry.members.map(() => [] as unknown[]);
  for (const { merge_slot: slot, ...row } of rows) bySlot[Number(slot)]?.push(row);
  for (const [index, member] of entry.members.entries()) results.set(member, bySlot[index] ?? []);
}

export function createGroupCommit<Database>(db: Kysely<Database>): GroupCommit {
  const queue: Waiting[] = [];
  let flushing = false;

  // Every group, even of one, takes the chain lock before any row lock: two groups can then never
  // wait for each other's rows while holding the chain.
  const runGroup = async (group: Waiting[]): Promise<void> => {
    const results = new Map<Waiting, unknown[]>();
    try {
      await db.connection().execute(async (connection) => {
        await BEGIN_AND_LOCK.execute(connection);
        try {
          for (const entry of planOf(group)) {
            const { rows } = await connection.executeQuery<Record<string, unknown>>(entry.query);
            handOut(entry, rows, results);
          }
          await sql`COMMIT`.execute(connection);
        } catch (error) {
          await sql`ROLLBACK`.execute(connection).catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      if (group.length === 1) group[0]!.reject(error);
      else for (const item of group) await runGroup([item]);
      return;
    }
    for (const item of group) item.resolve(results.get(item) ?? []);
  };

  const flush = async () => {
    try {
      while (queue.length > 0) await runGroup(queue.splice(0, MAX_GROUP));
    } finally {
      flushing = false;
    }
  };

  return {
    execute<Row>(statement: Statement) {
      return new Promise<Row[]>((resolve, reject) => {
        queue.push({ statement, resolve: resolve as (rows: unknown[]) => void, reject });
        if (flushing) return;
        flushing = true;
        // After the callbacks of this turn of the event loop, so changes asked for together share a group.
        setImmediate(flush);
      });
    },
  };
}
