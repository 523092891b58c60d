// The lock around a Job's shared Vault role. The controller issues a Job's keys and workers revoke
// them, in several processes and at the same time; the role must exist while any of the Job's keys
// is pending or active, and go with the last. Each grant and each removal takes this Postgres lock
// (per Job) and, under it, looks at the Job's live keys, so a removal that raced an issue either saw
// the new key's row, or ran before the grant that writes the role again.
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { KeyRepository } from './key.repository.ts';

export interface JobGrantRef {
  /** The job id the controller records the Job's keys under (`<namespace>:<name>`). */
  jobId: string;
  namespace: string;
  name: string;
}

export function createJobGrantLock(db: Kysely<Database>): Pick<KeyRepository, 'underJobGrantLock'> {
  return {
    underJobGrantLock(job, work) {
      // The transaction only holds the lock: it writes nothing, so Vault calls inside it are safe.
      return db.transaction().execute(async (trx) => {
        const lock = `deploykey-job-grant:${job.namespace}/${job.name}`;
        await sql`SELECT pg_advisory_xact_lock(hashtextextended(${lock}, 0))`.execute(trx);
        const live = await trx
          .selectFrom('deploy_keys')
          .select('id')
          .where('job_id', '=', job.jobId)
          .where(sql<string>`binding->>'kind'`, '=', 'kubernetes-job')
          .where(sql<string>`binding->>'namespace'`, '=', job.namespace)
          .where(sql<string>`binding->>'name'`, '=', job.name)
          .where('status', 'in', ['pending', 'active'])
          .execute();
        return work(live.map((row) => row.id));
      });
    },
  };
}
