// What the controller does for one Job: answer it (keys, or the denial) and revoke its keys when it
// ends; and the schedule on which a Job whose answer failed on a dependency is tried again.
import type { V1Job } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { DENIED_ANNOTATION, KEY_IDS_ANNOTATION, parseKeyRequest } from './annotations.ts';
import type { JobEnd, JobKeys, JobRef } from './job-keys.ts';
import type { createWriteback } from './job-writeback.ts';

export interface ReactionDeps {
  jobKeys: JobKeys;
  writeback: ReturnType<typeof createWriteback>;
  logger: Logger;
}

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

export const refOf = (job: V1Job): JobRef => ({
  namespace: job.metadata?.namespace ?? 'default',
  name: job.metadata?.name ?? '',
  uid: job.metadata?.uid ?? '',
  serviceAccount: job.spec?.template?.spec?.serviceAccountName || 'default',
});

/** Issues (idempotently: a retry gets the same keys) and writes the outcome back to the Job. */
export async function answerJob(deps: ReactionDeps, job: V1Job): Promise<void> {
  const { jobKeys, writeback } = deps;
  const request = parseKeyRequest(job.metadata?.annotations ?? {});
  const outcome = request.ok
    ? await jobKeys.issueFor(refOf(job), request.keys, request.ttlSeconds)
    : ({ ok: false, reason: 'bad-annotation', message: request.reason } as const);
  if (outcome.ok) {
    await writeback.annotate(job, { [KEY_IDS_ANNOTATION]: JSON.stringify(outcome.keyIds) });
    const ids = Object.entries(outcome.keyIds).map(([repo, id]) => `${repo}=${id}`);
    await writeback.event(job, 'Normal', 'DeployKeysIssued', `deploy keys issued: ${ids.join(', ')}`);
    return;
  }
  const reason = `${outcome.reason}: ${outcome.message}`;
  await writeback.annotate(job, { [DENIED_ANNOTATION]: reason.slice(0, 1024) });
  await writeback.event(job, 'Warning', 'DeployKeysDenied', reason);
}

export async function revokeJobKeys(
  deps: ReactionDeps,
  job: V1Job,
  end: JobEnd,
  condition: string,
): Promise<void> {
  const ref = refOf(job);
  const count = await deps.jobKeys.revokeJob(ref.uid, end, { uid: ref.uid, condition });
  if (count === 0) return;
  deps.logger.info(
    { namespace: ref.namespace, job: ref.name, uid: ref.uid, end, count },
    'Job ended; keys revoked',
  );
  if (end === 'job-ended') {
    await deps.writeback
      .event(job, 'Normal', 'DeployKeysRevoked', `${count} deploy key(s) revoked: Job ${condition}`)
      .catch(() => undefined);
  }
}

/**
 * Tries a Job again after a failed answer, 1 s after the first failure and doubling up to 30 s;
 * `retry` throwing (the API not answering either) schedules the next attempt.
 */
export function createRetrySchedule(retry: (ref: JobRef) => Promise<void>) {
  const attempts = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();

  function later(ref: JobRef): void {
    const attempt = (attempts.get(ref.uid) ?? 0) + 1;
    attempts.set(ref.uid, attempt);
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        retry(ref).catch(() => later(ref));
      },
      Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempt - 1)),
    );
    timers.add(timer);
  }

  return {
    later,
    done: (uid: string) => attempts.delete(uid),
    cancel() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
