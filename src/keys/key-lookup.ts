// Reads of keys that many callers make at once, coalesced (src/coalesced.ts): a busy worker,
// each of whose revokes starts with a read by id, and a burst of job ends, each looking up the
// keys bound to its job, send one query for many instead of one each.
import { type Kysely, sql } from 'kysely';
import { coalesced } from '../coalesced.ts';
import type { Database, DeployKeyRow } from '../db/schema.ts';
import { BOUND_LIVE_STATUSES } from './key-list-queries.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createKeyLookup(db: Kysely<Database>): (id: string) => Promise<DeployKeyRow | undefined> {
  const read = coalesced(async (ids: string[]) => {
    const rows = await db.selectFrom('deploy_keys').selectAll().where('id', 'in', ids).execute();
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id));
  });
  // No key has an id that is not a UUID; Postgres would refuse it, and the batch with it.
  return (id) => (UUID.test(id) ? read(id) : Promise.resolve(undefined));
}

/** Pending and active keys bound to each ref asked for, oldest first. */
export function createBoundKeysLookup(db: Kysely<Database>): (ref: string) => Promise<DeployKeyRow[]> {
  return coalesced(async (refs: string[]) => {
    const rows = await db
      .selectFrom('deploy_keys')
      .selectAll()
      .where(sql<boolean>`binding_refs && ${refs}::text[]`)
      .where('status', 'in', BOUND_LIVE_STATUSES)
      .orderBy('created_at')
      .execute();
    return refs.map((ref) => rows.filter((row) => row.binding_refs.includes(ref)));
  });
}
