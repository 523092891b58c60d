// Postgres is the source of truth and Redis only a scheduler, so this loop runs from a timer and
// takes a Postgres advisory lock (one pass at a time across replicas). It keeps working when Redis
// has lost every job, which a Redis-scheduled repeatable job could not promise.
import { appendAuditEvent } from '../audit/audit.repository.ts';
import type { Db } from '../db/database.ts';
import { isUnreadableOwnTitle, keyIdFromTitle } from '../hosts/git-host.ts';
import { SYSTEM_ACTOR } from '../keys/caller.ts';
import type { KeyService } from '../keys/key.service.ts';
import type { KeyServiceDeps } from '../keys/key-service-deps.ts';
import type { Logger } from '../log.ts';
import type { Timers } from '../time.ts';
import type { CiSweep } from './ci-sweep.ts';
import type { RevokeScheduler } from './revoke.queue.ts';

const RECONCILER_LOCK = 0x64_6b_72_72_65_63;
// Keys whose revoke job a pass makes sure of, and stuck issues it undoes (each undo calls the host).
const ENQUEUE_BATCH = 10_000;
const UNDO_BATCH = 1_000;
// Enqueueing is one Redis round trip per key; this many in flight keeps a pass over a full batch
// short without flooding Redis.
const ENQUEUE_CONCURRENCY = 32;

/** Runs `task` for every item, at most `limit` at a time. */
async function forEachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>) {
  let next = 0;
  const lane = async () => {
    for (let index = next++; index < items.length; index = next++) await task(items[index] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export interface ReconcilerSettings {
  periodSeconds: number;
  pendingTimeoutSeconds: number;
  /** How often hosts are listed for orphans; listing costs host API quota. */
  orphanScanSeconds: number;
  /** Repositories that got a key within this window are scanned for orphans. */
  orphanLookbackSeconds: number;
}

export interface ReconcileReport {
  skipped: boolean;
  scheduled: number;
  revokesStarted: number;
  pendingUndone: number;
  orphansRemoved: number;
  /** Host keys with our title prefix but no readable key id: skipped, never deleted. */
  unreadableTitles: number;
  /** CI jobs the sweep asked their host about, and keys of ended ones it revoked. */
  jobsChecked: number;
  jobEndRevokes: number;
  errors: number;
}

export interface ReconcilerDeps {
  db: Db;
  keys: KeyServiceDeps['keys'];
  hosts: KeyServiceDeps['hosts'];
  keyService: Pick<KeyService, 'undoIssue'>;
  queue: Pick<RevokeScheduler, 'scheduleRevoke' | 'revokeNow'>;
  clock: () => Date;
  /** The period between passes runs on these. */
  timers: Timers;
  logger: Logger;
  settings: ReconcilerSettings;
  /** Asks hosts about CI jobs whose end no webhook announced; without it no host is asked. */
  ciSweep?: CiSweep;
}

const emptyReport = (): ReconcileReport => ({
  skipped: false,
  scheduled: 0,
  revokesStarted: 0,
  pendingUndone: 0,
  orphansRemoved: 0,
  unreadableTitles: 0,
  jobsChecked: 0,
  jobEndRevokes: 0,
  errors: 0,
});

/** Every key due before the next pass, and every key `revoking`, has its revoke job in the queue. */
async function ensureRevokes(deps: ReconcilerDeps, report: ReconcileReport) {
  const { keys, queue, clock, logger, settings } = deps;
  const now = clock();
  // Keys due before the next pass get their delayed job (re)created: after Redis lost its data
  // they are still revoked on time instead of one period late.
  const horizon = new Date(now.getTime() + 2 * settings.periodSeconds * 1000);
  const due = await keys.liveExpiringBefore(horizon, ENQUEUE_BATCH);
  const revoking = await keys.list({ status: 'revoking', limit: ENQUEUE_BATCH });
  const rows = [...new Map([...due, ...revoking].map((row) => [row.id, row])).values()];
  await forEachLimited(rows, ENQUEUE_CONCURRENCY, async (row) => {
    try {
      if (row.status === 'revoking' || row.expires_at <= now) {
        await queue.revokeNow(row.id);
        report.revokesStarted += 1;
      } else {
        await queue.scheduleRevoke(row.id, row.expires_at);
        report.scheduled += 1;
      }
    } catch (error) {
      report.errors += 1;
      logger.warn({ keyId: row.id, err: (error as Error).message }, 'reconciler could not enqueue a revoke');
    }
  });
}

/** Deletes host keys with our title whose key is not live, repository by repository. */
async function removeOrphans(deps: ReconcilerDeps, report: ReconcileReport) {
  const { keys, hosts, clock, logger, settings } = deps;
  const since = new Date(clock().getTime() - settings.orphanLookbackSeconds * 1000);
  for (const { provider, repository } of await keys.repositoriesIssuedSince(since)) {
    const host = hosts.get(provider);
    if (!host) continue;
    try {
      const listed = await host.listDeployKeys(repository);
      // A title with our prefix but no readable key id may be anyone's: it is left alone, and
      // it must not stop the scan of the keys that are ours.
      for (const key of listed.filter((entry) => isUnreadableOwnTitle(entry.title))) {
        report.unreadableTitles += 1;
        logger.warn(
          { provider, repository, hostKeyId: key.hostKeyId },
          'orphan scan skipped a deploy key whose title has our prefix but no key id',
        );
      }
      const ours = listed
        .map((key) => ({ key, keyId: keyIdFromTitle(key.title) }))
        .filter((entry): entry is { key: typeof entry.key; keyId: string } => entry.keyId !== undefined);
      const live = await keys.liveIdsAmong(ours.map((entry) => entry.keyId));
      for (const { key, keyId } of ours) {
        if (live.has(keyId)) continue;
        // Gone already: its own revoke removed it after the listing, so there was no orphan.
        if ((await host.deleteDeployKey(repository, key.hostKeyId)) === 'already-gone') continue;
        await deps.db.db.transaction().execute((trx) =>
          appendAuditEvent(trx, {
            actor: SYSTEM_ACTOR,
            action: 'key.orphan_removed',
            at: clock(),
            keyId,
            provider,
            repository,
            details: { hostKeyId: key.hostKeyId, title: key.title, reason: 'orphan' },
          }),
        );
        report.orphansRemoved += 1;
      }
    } catch (error) {
      report.errors += 1;
      logger.warn(
        { provider, repository, err: (error as Error).message },
        'orphan scan failed for a repository',
      );
    }
  }
}

export function createReconciler(deps: ReconcilerDeps) {
  const { keys, clock, logger, settings } = deps;
  let lastOrphanScan = 0;
  let cancelTimer: (() => void) | undefined;
  let running: Promise<ReconcileReport> | undefined;
  let stopped = false;

  async function undoStuckPending(report: ReconcileReport) {
    const before = new Date(clock().getTime() - settings.pendingTimeoutSeconds * 1000);
    for (const row of await keys.pendingCreatedBefore(before, UNDO_BATCH)) {
      if (await deps.keyService.undoIssue(row, 'interrupted before it was issued')) report.pendingUndone += 1;
      else report.errors += 1;
    }
  }

  async function pass(options: { orphans?: boolean } = {}): Promise<ReconcileReport> {
    const report = emptyReport();
    const client = await deps.db.pool.connect();
    try {
      const { rows } = await client.query('SELECT pg_try_advisory_lock($1) AS locked', [RECONCILER_LOCK]);
      if (!rows[0]?.locked) return { ...report, skipped: true };
      try {
        await ensureRevokes(deps, report);
        await undoStuckPending(report);
        const orphansDue = clock().getTime() - lastOrphanScan >= settings.orphanScanSeconds * 1000;
        if (options.orphans ?? orphansDue) {
          lastOrphanScan = clock().getTime();
          await removeOrphans(deps, report);
        }
        await deps.ciSweep?.pass(report);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [RECONCILER_LOCK]);
      }
    } finally {
      client.release();
    }
    const { revokesStarted, pendingUndone, orphansRemoved, unreadableTitles, jobEndRevokes, errors } = report;
    if (revokesStarted + pendingUndone + orphansRemoved + unreadableTitles + jobEndRevokes + errors > 0) {
      logger.info(report, 'reconciler pass');
    }
    return report;
  }

  /** One pass now; concurrent callers share the pass in flight. */
  function runOnce(options: { orphans?: boolean } = {}): Promise<ReconcileReport> {
    running ??= pass(options).finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule() {
    if (stopped) return;
    cancelTimer = deps.timers.after(settings.periodSeconds * 1000, () => {
      runOnce()
        .catch((error: Error) => logger.error({ err: error.message }, 'reconciler pass failed'))
        .finally(schedule);
    });
  }

  return {
    runOnce,
    start() {
      stopped = false;
      runOnce()
        .catch((error: Error) => logger.error({ err: error.message }, 'reconciler pass failed'))
        .finally(schedule);
    },
    async stop() {
      stopped = true;
      cancelTimer?.();
      await running?.catch(() => {});
    },
  };
}

export type Reconciler = ReturnType<typeof createReconciler>;
