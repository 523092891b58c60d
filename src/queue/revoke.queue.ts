import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Clock } from '../time.ts';
import { REVOKE_JOB, REVOKE_JOB_OPTIONS, REVOKE_QUEUE, type RevokeJobData, revokeJobId } from './jobs.ts';

export interface RevokeScheduler {
  /** Schedules the revoke of a key at `at`. Throws when Redis cannot take the job. */
  scheduleRevoke(keyId: string, at: Date): Promise<void>;
  /** Makes the key's revoke run now: promotes a delayed job, restarts a spent one, or adds one. */
  revokeNow(keyId: string): Promise<void>;
  /** Removes a scheduled revoke that is no longer needed (the issue was undone). */
  cancel(keyId: string): Promise<void>;
  depth(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export function createRevokeScheduler(connection: Redis, prefix: string, clock: Clock): RevokeScheduler {
  const queue = new Queue<RevokeJobData>(REVOKE_QUEUE, { connection, prefix });
  // A Queue reports connection trouble as events; callers see it as the failed add.
  queue.on('error', () => {});

  const add = (keyId: string, delayMs: number) =>
    queue.add(
      REVOKE_JOB,
      { keyId },
      { ...REVOKE_JOB_OPTIONS, jobId: revokeJobId(keyId), delay: Math.max(0, delayMs) },
    );

  const restart = async (job: Job<RevokeJobData>, keyId: string) => {
    const state = await job.getState();
    if (state === 'delayed') {
      // A job that already ran is backing off, at least as long as the host's retry-after asked;
      // only a job still waiting for the key's expiry is brought forward.
      if (job.attemptsMade > 0) return;
      await job.promote().catch(async () => {
        // It left the delayed set between the two calls: it is running or about to.
      });
    } else if (state === 'failed') {
      // A fresh round of attempts with its own backoff, rather than one attempt per reconciler pass.
      await job.retry('failed', { resetAttemptsMade: true });
    } else if (state === 'completed' || state === 'unknown') {
      await job.remove().catch(() => {});
      await add(keyId, 0);
    }
  };

  return {
    async scheduleRevoke(keyId, at) {
      await add(keyId, at.getTime() - clock().getTime());
    },
    async revokeNow(keyId) {
      const job = await queue.getJob(revokeJobId(keyId));
      if (!job) {
        await add(keyId, 0);
        return;
      }
      // The usual case, a revoke still waiting for the key's expiry, takes one call; promote
      // refuses a job that is not delayed, and only then is its state asked for.
      if (
        job.attemptsMade === 0 &&
        (await job.promote().then(
          () => true,
          () => false,
        ))
      )
        return;
      await restart(job, keyId);
    },
    async cancel(keyId) {
      const job = await queue.getJob(revokeJobId(keyId));
      await job?.remove().catch(() => {});
    },
    depth: () => queue.getJobCounts('waiting', 'delayed', 'active', 'failed', 'prioritized'),
    close: () => queue.close(),
  };
}
