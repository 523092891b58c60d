// Reads of one key by id, coalesced: the reads asked for while one is under way go together in
// the next query. An idle service reads at once, as before; a busy worker (each of its revokes
// starts with a read) sends one query for many keys instead of one each. A read never starts
// before it was asked for, so it sees every change committed before that.
import type { Kysely } from 'kysely';
import type { Database, DeployKeyRow } from '../db/schema.ts';

/** Ids per query at most. */
const MAX_BATCH = 100;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Waiter {
  resolve(row: DeployKeyRow | undefined): void;
  reject(error: unknown): void;
}

export function createKeyLookup(db: Kysely<Database>): (id: string) => Promise<DeployKeyRow | undefined> {
  const waiting = new Map<string, Waiter[]>();
  let reading = false;

  const readBatch = async (ids: string[], waiters: Waiter[][]) => {
    try {
      const rows = await db.selectFrom('deploy_keys').selectAll().where('id', 'in', ids).execute();
      const byId = new Map(rows.map((row) => [row.id, row]));
      for (const [index, id] of ids.entries()) {
        for (const waiter of waiters[index] ?? []) waiter.resolve(byId.get(id));
      }
    } catch (error) {
      for (const waiter of waiters.flat()) waiter.reject(error);
    }
  };

  const drain = async () => {
    reading = true;
    try {
      while (waiting.size > 0) {
        const batch = [...waiting].slice(0, MAX_BATCH);
        for (const [id] of batch) waiting.delete(id);
        await readBatch(
          batch.map(([id]) => id),
          batch.map(([, waiters]) => waiters),
        );
      }
    } finally {
      reading = false;
    }
  };

  return (id) => {
    // No key has an id that is not a UUID; Postgres would refuse it, and the batch with it.
    if (!UUID.test(id)) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const waiters = waiting.get(id);
      if (waiters) waiters.push({ resolve, reject });
      else waiting.set(id, [{ resolve, reject }]);
      if (!reading) void drain();
    });
  };
}
