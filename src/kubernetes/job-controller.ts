// Reacts to Jobs: a new Job that asks for keys gets them (or a denial), a Job that ended or went
// away has its keys revoked. Every reaction is idempotent, so a re-list may repeat any of them.
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { DENIED_ANNOTATION, KEY_IDS_ANNOTATION, parseKeyRequest, wantsKeys } from './annotations.ts';
import type { JobEnd, JobKeys, JobRef } from './job-keys.ts';
import { endOf } from './job-status.ts';
import { createWriteback } from './job-writeback.ts';

export interface JobControllerDeps {
  kubeconfig: KubeConfig;
  jobKeys: JobKeys;
  logger: Logger;
  clock: () => Date;
}

const refOf = (job: V1Job): JobRef => ({
  namespace: job.metadata?.namespace ?? 'default',
  name: job.metadata?.name ?? '',
  uid: job.metadata?.uid ?? '',
  serviceAccount: job.spec?.template?.spec?.serviceAccountName || 'default',
});

export function createJobController(deps: JobControllerDeps) {
  const { jobKeys, logger } = deps;
  const writeback = createWriteback(deps.kubeconfig, deps.clock);
  const batch = deps.kubeconfig.makeApiClient(BatchV1Api);
  const busy = new Map<string, Promise<void>>();
  // Jobs answered by this replica; after a restart the Job's own annotation says so.
  const answered = new Set<string>();

  /** One reaction per Job at a time; the next waits for the one before. */
  const serialized = (uid: string, task: () => Promise<void>): Promise<void> => {
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

  async function issue(job: V1Job): Promise<void> {
    const annotations = job.metadata?.annotations ?? {};
    const ref = refOf(job);
    if (answered.has(ref.uid) || annotations[KEY_IDS_ANNOTATION] || annotations[DENIED_ANNOTATION]) return;
    answered.add(ref.uid);
    const request = parseKeyRequest(annotations);
    const outcome = request.ok
      ? await jobKeys.issueFor(ref, request.keys, request.ttlSeconds)
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

  async function revoke(job: V1Job, end: JobEnd, condition: string): Promise<void> {
    const ref = refOf(job);
    const count = await jobKeys.revokeJob(ref.uid, end, { uid: ref.uid, condition });
    if (count === 0) return;
    logger.info(
      { namespace: ref.namespace, job: ref.name, uid: ref.uid, end, count },
      'Job ended; keys revoked',
    );
    if (end === 'job-ended') {
      await writeback
        .event(job, 'Normal', 'DeployKeysRevoked', `${count} deploy key(s) revoked: Job ${condition}`)
        .catch(() => undefined);
    }
  }

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

  /**
   * Every live key the controller issued whose Job the list no longer shows, or shows ended, is
   * revoked: this catches ends and deletions that happened while no controller watched. A Job the
   * cache does not know is asked about once more, so a partial view never revokes a running Job.
   */
  async function sweep(known: V1Job[]): Promise<void> {
    const byUid = new Map(known.map((job) => [job.metadata?.uid, job]));
    const live = await jobKeys.liveJobKeys();
    const seen = new Set<string>();
    for (const row of live) {
      const bound = row.binding as { kind: string; namespace?: string; name?: string; uid?: string } | null;
      if (bound?.kind !== 'kubernetes-job' || !bound.uid || !bound.namespace || !bound.name) continue;
      if (seen.has(bound.uid)) continue;
      seen.add(bound.uid);
      const { uid, namespace, name } = bound;
      const job = byUid.get(uid) ?? (await fetchJob(namespace, name));
      const stub: V1Job = { metadata: { uid, namespace, name } };
      const ended = job && endOf(job);
      if (!job || job.metadata?.uid !== uid)
        await serialized(uid, () => revoke(stub, 'job-deleted', 'Deleted'));
      else if (ended) await serialized(uid, () => revoke(job, 'job-ended', ended));
    }
  }

  async function fetchJob(namespace: string, name: string): Promise<V1Job | undefined> {
    try {
      return await batch.readNamespacedJob({ namespace, name });
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  }

  return { onJob, onGone, sweep, idle: () => Promise.all([...busy.values()]) };
}
