// Reacts to Jobs: a new Job that asks for keys gets them (or a denial), a Job that ended or went
// away has its keys revoked. Every reaction is idempotent, so a re-list may repeat any of them.
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import type { DeployKeyRow } from '../db/schema.ts';
import type { Logger } from '../log.ts';
import { DENIED_ANNOTATION, KEY_IDS_ANNOTATION, wantsKeys } from './annotations.ts';
import { boundObjects } from './bound-objects.ts';
import type { JobEnd, JobKeys } from './job-keys.ts';
import { type JobLookup, jobReader } from './job-lookup.ts';
import { answerJob, createRetrySchedule, refOf, revokeJobKeys } from './job-reactions.ts';
import { endOf } from './job-status.ts';
import { createWriteback } from './job-writeback.ts';

export interface JobControllerDeps {
  kubeconfig: KubeConfig;
  jobKeys: JobKeys;
  logger: Logger;
  clock: () => Date;
}

/** One reaction per Job at a time; the next waits for the one before. */
function createPerJobQueue(logger: Logger) {
  const busy = new Map<string, Promise<void>>();
  const run = (uid: string, task: () => Promise<void>): Promise<void> => {
    const previous = busy.get(uid) ?? Promise.resolve();
    const next = previous
      .then(task)
      .catch((error: Error) => logger.error({ err: error.message, uid }, 'Kubernetes Job reaction failed'))
      .finally(() => {
        if (busy.get(uid) === next) busy.delete(uid);
      });
    busy.set(uid, next);
    return next;
  };
  return Object.assign(run, { underWay: () => Promise.all([...busy.values()]) });
}

/**
 * Every live key the controller issued whose Job `find` no longer shows, or shows ended, is
 * revoked: this catches ends and deletions no watch event reported (the controller was down, or
 * its watch was cut or stalled). A Job `find` cannot answer for is left for the next sweep.
 */
async function sweepBound(
  live: DeployKeyRow[],
  find: JobLookup,
  logger: Logger,
  revoke: (uid: string, job: V1Job, end: JobEnd, condition: string) => Promise<void>,
): Promise<void> {
  const unanswered: { uid: string; err: string }[] = [];
  for (const bound of boundObjects(live, 'kubernetes-job')) {
    let job: V1Job | undefined;
    try {
      job = await find(bound);
    } catch (error) {
      unanswered.push({ uid: bound.uid, err: (error as Error).message });
      continue;
    }
    const { uid, namespace, name } = bound;
    const ended = job && endOf(job);
    if (!job || job.metadata?.uid !== uid) {
      await revoke(uid, { metadata: { uid, namespace, name } }, 'job-deleted', 'Deleted');
    } else if (ended) await revoke(uid, job, 'job-ended', ended);
  }
  if (unanswered.length > 0) {
    logger.warn({ count: unanswered.length, first: unanswered[0] }, 'sweep could not ask about some Jobs');
  }
}

export function createJobController(deps: JobControllerDeps) {
  const { jobKeys, logger } = deps;
  const reactions = { jobKeys, logger, writeback: createWriteback(deps.kubeconfig, deps.clock) };
  const fetchJob = jobReader(deps.kubeconfig.makeApiClient(BatchV1Api));
  const serialized = createPerJobQueue(logger);
  // Jobs answered by this replica; after a restart the Job's own annotation says so.
  const answered = new Set<string>();
  // A Job whose answer failed on a dependency (host, Vault, the API) is tried again, as it is then.
  const retries = createRetrySchedule(async (ref) => {
    const current = await fetchJob(ref.namespace, ref.name);
    if (current?.metadata?.uid === ref.uid) onJob(current);
    else retries.done(ref.uid);
  });

  async function issue(job: V1Job): Promise<void> {
    const annotations = job.metadata?.annotations ?? {};
    const ref = refOf(job);
    if (answered.has(ref.uid) || annotations[KEY_IDS_ANNOTATION] || annotations[DENIED_ANNOTATION]) return;
    answered.add(ref.uid);
    try {
      await answerJob(reactions, job);
      retries.done(ref.uid);
    } catch (error) {
      answered.delete(ref.uid);
      retries.later(ref);
      throw error;
    }
  }

  const revoke = (job: V1Job, end: JobEnd, condition: string) =>
    revokeJobKeys(reactions, job, end, condition);

  function onJob(job: V1Job): void {
    if (!wantsKeys(job.metadata?.annotations) || !job.metadata?.uid) return;
    const ended = endOf(job);
    void serialized(job.metadata.uid, () => (ended ? revoke(job, 'job-ended', ended) : issue(job)));
  }

  function onGone(job: V1Job): void {
    if (!job.metadata?.uid) return;
    const uid = job.metadata.uid;
    void serialized(uid, () => revoke(job, 'job-deleted', 'Deleted')).then(() => answered.delete(uid));
  }

  const sweep = async (find: JobLookup) =>
    sweepBound(await jobKeys.liveJobKeys(), find, logger, (uid, job, end, condition) =>
      serialized(uid, () => revoke(job, end, condition)),
    );

  return {
    onJob,
    onGone,
    sweep,
    /** Cancels the pending retries and waits for every reaction under way. */
    idle: () => {
      retries.cancel();
      return serialized.underWay();
    },
  };
}
