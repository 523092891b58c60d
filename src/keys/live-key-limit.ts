// The per-caller live-key limit: how live keys are counted for it, and the locks that make the count
// and the insert that follows it one step.
import { type Kysely, sql, type Transaction } from 'kysely';
import { AUDIT_CHAIN_LOCK } from '../audit/audit.repository.ts';
import type { Database } from '../db/schema.ts';
import type { KeyStatus } from '../model/schemas.ts';

export const LIVE_STATUSES: KeyStatus[] = ['pending', 'active', 'revoking'];

// Stops at `upTo` rows of the partial index deploy_keys_caller_live: a limit only needs to know
// whether the caller is below it, so the cost is bounded by the limit, not by the live keys.
export async function countLive(
  executor: Kysely<Database> | Transaction<Database>,
  caller: string,
  upTo: number,
) {
  const row = await executor
    .selectFrom((eb) =>
      eb
        .selectFrom('deploy_keys')
        .select(sql<number>`1`.as('one'))
        .where('caller', '=', caller)
        .where('status', 'in', LIVE_STATUSES)
        .limit(upTo)
        .as('live'),
    )
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/**
 * The chain lock first, as group commit takes it (src/audit/audit-group-commit.ts), so a
 * transaction holding rows never waits for the chain while a group waits for its rows; then the
 * caller's own lock, so concurrent issues cannot both pass the count.
 */
export async function lockForLimitedInsert(trx: Transaction<Database>, caller: string) {
  await sql`SELECT pg_advisory_xact_lock(${sql.lit(AUDIT_CHAIN_LOCK)})`.execute(trx);
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`deploykey-live-keys:${caller}`}, 0))`.execute(
    trx,
  );
}
