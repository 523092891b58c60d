// The repository's queries that find keys for callers and for job ends: listings with filters, a
// job's keys, and keys bound to a platform job.
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { KeyStatus } from '../model/schemas.ts';
import type { KeyRepository } from './key.repository.ts';
import { LIVE_STATUSES } from './live-key-limit.ts';
import { repositoryKey } from './ownership.ts';

type ListQueries = Pick<KeyRepository, 'list' | 'liveKeysOfJob' | 'jobExists' | 'liveBound'>;

/** Keys a job's end still has to act on: a `revoking` key is already on its way out. */
export const BOUND_LIVE_STATUSES: KeyStatus[] = ['pending', 'active'];

export function createKeyListQueries(db: Kysely<Database>): ListQueries {
  return {
    list(filter) {
      let query = db.selectFrom('deploy_keys').selectAll();
      if (filter.owners) query = query.where('owner', 'in', filter.owners.length ? filter.owners : ['']);
      if (filter.caller) query = query.where('caller', '=', filter.caller);
      if (filter.provider) query = query.where('provider', '=', filter.provider);
      if (filter.repository) query = query.where('repository_key', '=', repositoryKey(filter.repository));
      if (filter.jobId) query = query.where('job_id', '=', filter.jobId);
      if (filter.status) query = query.where('status', '=', filter.status);
      if (filter.overdueAt) {
        query = query
          .where('status', 'in', ['active', 'revoking'])
          .where('expires_at', '<', filter.overdueAt);
      }
      if (filter.after) {
        const { createdAt, id } = filter.after;
        query = query.where(sql<boolean>`(created_at, id) < (${createdAt}, ${id}::uuid)`);
      }
      return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
    },

    liveKeysOfJob(jobId, owners) {
      let query = db.selectFrom('deploy_keys').selectAll().where('job_id', '=', jobId);
      if (owners) query = query.where('owner', 'in', owners.length ? owners : ['']);
      return query.where('status', 'in', LIVE_STATUSES).orderBy('created_at').execute();
    },

    async jobExists(jobId, owners) {
      let query = db.selectFrom('deploy_keys').select('id').where('job_id', '=', jobId);
      if (owners) query = query.where('owner', 'in', owners.length ? owners : ['']);
      return (await query.limit(1).executeTakeFirst()) !== undefined;
    },

    liveBound(kind, createdBefore, limit) {
      return db
        .selectFrom('deploy_keys')
        .selectAll()
        .where('binding', 'is not', null)
        .where(sql<string>`binding->>'kind'`, '=', kind)
        .where('status', 'in', BOUND_LIVE_STATUSES)
        .where('created_at', '<', createdBefore)
        .orderBy('created_at')
        .limit(limit)
        .execute();
    },
  };
}
