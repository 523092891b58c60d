// The repository's read-only queries for the periodic passes (expiry, stuck issues, orphans, gauges).
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { KeyRepository } from './key.repository.ts';
import { LIVE_STATUSES } from './live-key-limit.ts';

type SweepQueries = Pick<
  KeyRepository,
  | 'liveExpiringBefore'
  | 'pendingCreatedBefore'
  | 'repositoriesIssuedSince'
  | 'liveIdsAmong'
  | 'countActive'
  | 'countOverdue'
>;

export function createKeySweepQueries(db: Kysely<Database>): SweepQueries {
  return {
    liveExpiringBefore(before, limit) {
      return db
        .selectFrom('deploy_keys')
        .selectAll()
        .where('status', 'in', ['active', 'revoking'])
        .where('expires_at', '<', before)
        .orderBy('expires_at')
        .limit(limit)
        .execute();
    },

    pendingCreatedBefore(before, limit) {
      return db
        .selectFrom('deploy_keys')
        .selectAll()
        .where('status', '=', 'pending')
        .where('created_at', '<', before)
        .orderBy('created_at')
        .limit(limit)
        .execute();
    },

    repositoriesIssuedSince(since) {
      // One entry per repository however many spellings it was asked for in: each costs a listing.
      return db
        .selectFrom('deploy_keys')
        .select((eb) => ['provider', eb.fn.min('repository').as('repository')])
        .where('created_at', '>=', since)
        .groupBy(['provider', sql`coalesce(repository_key, lower(repository))`])
        .execute() as Promise<{ provider: string; repository: string }[]>;
    },

    async liveIdsAmong(ids) {
      if (ids.length === 0) return new Set();
      const rows = await db
        .selectFrom('deploy_keys')
        .select('id')
        .where('id', 'in', ids)
        .where('status', 'in', LIVE_STATUSES)
        .execute();
      return new Set(rows.map((row) => row.id));
    },

    async countActive() {
      const row = await db
        .selectFrom('deploy_keys')
        .select((eb) => eb.fn.countAll<string>().as('count'))
        .where('status', '=', 'active')
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },

    async countOverdue(now) {
      const row = await db
        .selectFrom('deploy_keys')
        .select((eb) => eb.fn.countAll<string>().as('count'))
        .where('status', 'in', ['active', 'revoking'])
        .where('expires_at', '<', now)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },
  };
}
