// Reads of one key by id, coalesced (src/db/coalesced.ts): a busy worker, each of whose revokes
// starts with a read, sends one query for many keys instead of one each.
import type { Kysely } from 'kysely';
import { coalesced } from '../db/coalesced.ts';
import type { Database, DeployKeyRow } from '../db/schema.ts';

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
