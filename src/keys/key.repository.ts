import type { Kysely } from 'kysely';
import { type AuditEventInput, appendAuditEvent } from '../audit/audit.repository.ts';
import { createGroupCommit, type GroupCommit } from '../audit/audit-group-commit.ts';
import type { Database, DeployKeyRow, DeployKeyUpdate, NewDeployKeyRow } from '../db/schema.ts';
import type { KeyStatus } from '../model/schemas.ts';
import { type Clock, systemClock } from '../time.ts';
import { createJobGrantLock, type JobGrantRef } from './job-grant-lock.ts';
import { assertMove } from './key-lifecycle.ts';
import { createKeyListQueries } from './key-list-queries.ts';
import { createBoundKeysLookup, createKeyLookup } from './key-lookup.ts';
import { createKeySweepQueries } from './key-sweep-queries.ts';
import { auditedWrite, insertStatement, transitionStatement } from './key-transitions.ts';
import { countLive, LIVE_STATUSES, lockForLimitedInsert } from './live-key-limit.ts';

export type KeyAudit = Omit<AuditEventInput, 'keyId' | 'provider' | 'repository' | 'jobId' | 'at'>;

export interface KeyListFilter {
  caller?: string;
  /** Only keys of these owners (an issuer's own); undefined: every key. */
  owners?: string[];
  provider?: string;
  repository?: string;
  jobId?: string;
  status?: KeyStatus;
  overdueAt?: Date;
  after?: { createdAt: Date; id: string };
  limit: number;
}

export type InsertPendingResult =
  | { outcome: 'inserted'; row: DeployKeyRow }
  | { outcome: 'idempotent-replay'; row: DeployKeyRow }
  | { outcome: 'live-key-exists'; row: DeployKeyRow }
  | { outcome: 'limit-reached'; activeKeys: number };

/** A cap on the caller's live keys, held atomically with the insert. */
export interface LiveKeyLimit {
  caller: string;
  maxActiveKeys: number;
}

const UNIQUE_VIOLATION = '23505';

export interface KeyRepository {
  /**
   * Writes the pending row and its audit event. With a limit, the caller's live keys are counted
   * and the row written under one per-caller lock, so concurrent issues cannot both pass the count.
   */
  insertPending(row: NewDeployKeyRow, audit: KeyAudit, limit?: LiveKeyLimit): Promise<InsertPendingResult>;
  findById(id: string): Promise<DeployKeyRow | undefined>;
  findByIdempotencyKey(owner: string, idempotencyKey: string): Promise<DeployKeyRow | undefined>;
  /**
   * Moves a key to a new state only if it is in one of `from`, writing the audit event in the same
   * transaction. Returns undefined (and audits nothing) when the key was not in such a state, so a
   * transition that runs twice takes effect and is audited once.
   */
  transition(
    id: string,
    from: KeyStatus[],
    update: DeployKeyUpdate,
    audit: KeyAudit,
  ): Promise<DeployKeyRow | undefined>;
  recordAttempt(id: string, error: string): Promise<void>;
  list(filter: KeyListFilter): Promise<DeployKeyRow[]>;
  liveKeysOfJob(jobId: string, owners?: string[]): Promise<DeployKeyRow[]>;
  jobExists(jobId: string, owners?: string[]): Promise<boolean>;
  /** Pending and active keys whose binding has the lookup string `ref` (src/keys/binding.ts). */
  liveKeysBoundTo(ref: string): Promise<DeployKeyRow[]>;
  /** Pending and active keys bound to a job of `kind`, created before `createdBefore`, oldest first. */
  liveBound(kind: string, createdBefore: Date, limit: number): Promise<DeployKeyRow[]>;
  /** Live keys whose expiry is before `before`, oldest first. */
  liveExpiringBefore(before: Date, limit: number): Promise<DeployKeyRow[]>;
  pendingCreatedBefore(before: Date, limit: number): Promise<DeployKeyRow[]>;
  repositoriesIssuedSince(since: Date): Promise<{ provider: string; repository: string }[]>;
  /** Key ids with a key that may legitimately still exist at the host. */
  liveIdsAmong(ids: string[]): Promise<Set<string>>;
  countActive(): Promise<number>;
  /**
   * The caller's live keys, counted up to `upTo` at most: the largest limit of the rules that apply
   * (liveKeyCap), so an issue costs the same with ten or ten thousand live keys. No limit: 0, uncounted.
   */
  countLiveForCaller(caller: string, upTo: number | undefined): Promise<number>;
  /** An audit event that goes with no key state change (e.g. a denied request). */
  recordEvent(event: AuditEventInput): Promise<void>;
  countOverdue(now: Date): Promise<number>;
  /**
   * Runs `work` holding the lock of one Job's shared Vault role (src/keys/job-grant-lock.ts),
   * given the ids of the Job's pending and active keys as seen under the lock.
   */
  underJobGrantLock<T>(job: JobGrantRef, work: (liveKeyIds: string[]) => Promise<T>): Promise<T>;
}

/**
 * The insert alone, group-committed with the other changes that arrive with it (one statement
 * writes the row and appends its audit event); or, with a limit, the count and the insert under
 * the caller's lock in a transaction of its own.
 */
async function insertWithin(
  db: Kysely<Database>,
  group: GroupCommit,
  row: NewDeployKeyRow,
  audit: KeyAudit,
  limit: LiveKeyLimit | undefined,
  at: Date,
): Promise<InsertPendingResult> {
  if (!limit) {
    const [inserted] = await group.execute<DeployKeyRow>(insertStatement(db, row, audit, at));
    if (!inserted) throw new Error('the insert returned no row');
    return { outcome: 'inserted', row: inserted };
  }
  return db.transaction().execute(async (trx) => {
    await lockForLimitedInsert(trx, limit.caller);
    const activeKeys = await countLive(trx, limit.caller, limit.maxActiveKeys);
    if (activeKeys >= limit.maxActiveKeys) return { outcome: 'limit-reached', activeKeys };
    const insert = trx.insertInto('deploy_keys').values(row).returningAll();
    const inserted = (await auditedWrite(insert, audit, at).execute(trx)).rows[0];
    if (!inserted) throw new Error('the insert returned no row');
    return { outcome: 'inserted', row: inserted };
  });
}

const findByIdempotencyKey = (db: Kysely<Database>, owner: string, idempotencyKey: string) =>
  db
    .selectFrom('deploy_keys')
    .selectAll()
    .where('owner', '=', owner)
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();

/** The live key of the same owner, job and repository that a unique index says exists. */
const findLive = (db: Kysely<Database>, row: NewDeployKeyRow) =>
  db
    .selectFrom('deploy_keys')
    .selectAll()
    .where('owner', '=', row.owner)
    .where('job_id', '=', row.job_id)
    .where('provider', '=', row.provider)
    .where('repository_key', '=', row.repository_key ?? null)
    .where('status', 'in', LIVE_STATUSES)
    .executeTakeFirst();

/** `clock` stamps the audit events of the changes; the system's by default. */
export function createKeyRepository(db: Kysely<Database>, clock: Clock = systemClock): KeyRepository {
  const group = createGroupCommit(db);
  const findById = createKeyLookup(db);

  return {
    async insertPending(row, audit, limit) {
      try {
        return await insertWithin(db, group, row, audit, limit, clock());
      } catch (error) {
        if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
        // A retry with the same Idempotency-Key may break either unique index first: the first
        // request's row is what it wants, whichever did.
        if (row.idempotency_key) {
          const first = await findByIdempotencyKey(db, row.owner, row.idempotency_key);
          if (first) return { outcome: 'idempotent-replay', row: first };
        }
        const live = await findLive(db, row);
        if (live) return { outcome: 'live-key-exists', row: live };
        throw error;
      }
    },

    findById,
    liveKeysBoundTo: createBoundKeysLookup(db),
    findByIdempotencyKey: (owner, idempotencyKey) => findByIdempotencyKey(db, owner, idempotencyKey),

    async transition(id, from, update, audit) {
      assertMove(from, update.status);
      return (
        await group.execute<DeployKeyRow>(transitionStatement(db, id, from, update, audit, clock()))
      )[0];
    },

    async recordAttempt(id, error) {
      await db
        .updateTable('deploy_keys')
        .set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: error.slice(0, 500) }))
        .where('id', '=', id)
        .execute();
    },

    ...createKeyListQueries(db),
    ...createKeySweepQueries(db),
    ...createJobGrantLock(db),

    countLiveForCaller: async (caller, upTo) => (upTo === undefined ? 0 : countLive(db, caller, upTo)),

    async recordEvent(event) {
      await appendAuditEvent(db, { at: clock(), ...event });
    },
  };
}

export type { DeployKeyRow };
export { LIVE_STATUSES };
