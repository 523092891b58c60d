// Group commit for audited statements. Every audit append holds the chain lock until its transaction
// commits, so appends one per transaction run at most one commit (one WAL flush) at a time. Here
// the statements that arrive while a commit is under way wait for it, and then run together in
// one transaction: the chain lock is taken once and one flush makes the whole group durable. Each
// statement still changes its row and appends its event together, the chain format is unchanged,
// and the seqs stay gap-free: a group that fails is rolled back whole, and its statements are then
// run one by one, each in its own transaction as without grouping, so each gets its own outcome.
import { type CompiledQuery, type Kysely, sql } from 'kysely';
import { AUDIT_CHAIN_LOCK } from './audit.repository.ts';

interface Waiting {
  query: CompiledQuery;
  resolve(rows: unknown[]): void;
  reject(error: unknown): void;
}

/** Statements per transaction at most: bounds how long one group holds the chain lock. */
const MAX_GROUP = 64;

export interface GroupCommit {
  /** Runs one audited statement in the next group and returns its rows once that group commits. */
  execute<Row>(query: CompiledQuery): Promise<Row[]>;
}

export function createGroupCommit<Database>(db: Kysely<Database>): GroupCommit {
  const queue: Waiting[] = [];
  let flushing = false;

  // Every group, even of one, takes the chain lock before any row lock: two groups can then never
  // wait for each other's rows while holding the chain.
  const runGroup = async (group: Waiting[]): Promise<void> => {
    let results: unknown[][];
    try {
      results = await db.transaction().execute(async (trx) => {
        await sql`SELECT pg_advisory_xact_lock(${sql.lit(AUDIT_CHAIN_LOCK)})`.execute(trx);
        const rows: unknown[][] = [];
        for (const item of group) rows.push((await trx.executeQuery(item.query)).rows);
        return rows;
      });
    } catch (error) {
      if (group.length === 1) group[0]!.reject(error);
      else for (const item of group) await runGroup([item]);
      return;
    }
    for (const [index, item] of group.entries()) item.resolve(results[index] ?? []);
  };

  const flush = async () => {
    flushing = true;
    try {
      while (queue.length > 0) await runGroup(queue.splice(0, MAX_GROUP));
    } finally {
      flushing = false;
    }
  };

  return {
    execute<Row>(query: CompiledQuery) {
      return new Promise<Row[]>((resolve, reject) => {
        queue.push({ query, resolve: resolve as (rows: unknown[]) => void, reject });
        if (!flushing) void flush();
      });
    },
  };
}
