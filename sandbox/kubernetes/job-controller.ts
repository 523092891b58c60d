// The Job controller of kube-controller-manager, for NonIndexed Jobs: pods from the template
// (tracked with the `batch.kubernetes.io/job-tracking` finalizer), `backoffLimit`, the status
// counters, and the two-step end the current controller writes — `SuccessCriteriaMet` then
// `Complete`, `FailureTarget` then `Failed` — with the events `kubectl describe job` shows.

import { recordEvent } from './events.ts';
import { isTerminal } from './kubelet.ts';
import { clone, type Job, type JobCondition, type JobStatus, kubeTime, type Pod } from './objects.ts';
import type { Registry } from './registry.ts';
import { resourceTypeOf } from './resources.ts';
import type { Change } from './store.ts';

export const TRACKING_FINALIZER = 'batch.kubernetes.io/job-tracking';

const jobs = resourceTypeOf('jobs');
const pods = resourceTypeOf('pods');

export interface JobControllerOptions {
  registry: Registry;
  now: () => Date;
  /** Wait before a failed pod is replaced (the real controller backs off from 10 s). */
  retryDelayMs: () => number;
  defer: (task: () => void, ms: number) => void;
}

const hasCondition = (job: Job, type: JobCondition['type']) =>
  (job.status?.conditions ?? []).some((condition) => condition.type === type && condition.status === 'True');

export const isFinished = (job: Job) => hasCondition(job, 'Complete') || hasCondition(job, 'Failed');

export const ownerUid = (pod: Pod) =>
  pod.metadata.ownerReferences?.find((owner) => owner.controller && owner.kind === 'Job')?.uid;

const SUCCESS = { reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' };
const BACKOFF = { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' };

export function createJobController(options: JobControllerOptions) {
  const { registry, now } = options;
  const queued = new Set<string>();
  const retryAt = new Map<string, number>();

  const newCondition = (
    type: JobCondition['type'],
    why: { reason: string; message: string },
  ): JobCondition => {
    const at = kubeTime(now());
    return { type, status: 'True', ...why, lastProbeTime: at, lastTransitionTime: at };
  };

  const podsOf = (job: Job) =>
    (registry.store.list('pods', job.metadata.namespace) as Pod[]).filter(
      (pod) => ownerUid(pod) === job.metadata.uid,
    );

  // Counts an ended pod once, then lets it go (the finalizer keeps it until it is counted).
  function account(pod: Pod): void {
    const next = clone(pod);
    next.metadata.finalizers = (pod.metadata.finalizers ?? []).filter((name) => name !== TRACKING_FINALIZER);
    registry.systemUpdate(pods, next);
  }

  function createPod(job: Job): void {
    const template = job.spec.template;
    const pod = registry.create(pods, job.metadata.namespace!, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${job.metadata.name}-`,
        labels: { ...template.metadata?.labels },
        ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: job.metadata.name!,
            uid: job.metadata.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        finalizers: [TRACKING_FINALIZER],
      },
      spec: clone(template.spec),
    });
    recordEvent(registry, now, job, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
  }

  function deleteActive(job: Job, active: Pod[]): void {
    for (const pod of active) {
      registry.remove(pods, pod.metadata.namespace!, pod.metadata.name!, {});
      recordEvent(registry, now, job, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
    }
  }

  function nextConditions(job: Job, status: JobStatus, active: Pod[], terminating: number): JobCondition[] {
    const conditions = [...(status.conditions ?? [])];
    const settled = active.length === 0 && terminating === 0;
    if (hasCondition(job, 'SuccessCriteriaMet')) {
      if (settled) {
        conditions.push(newCondition('Complete', SUCCESS));
        status.completionTime = kubeTime(now());
        recordEvent(registry, now, job, 'Normal', 'Completed', 'Job completed');
      }
    } else if (hasCondition(job, 'FailureTarget')) {
      if (settled) {
        conditions.push(newCondition('Failed', BACKOFF));
        recordEvent(registry, now, job, 'Warning', BACKOFF.reason, BACKOFF.message);
      }
    } else if ((status.succeeded ?? 0) >= (job.spec.completions ?? 1)) {
      conditions.push(newCondition('SuccessCriteriaMet', SUCCESS));
      deleteActive(job, active);
    } else if ((status.failed ?? 0) > (job.spec.backoffLimit ?? 6)) {
      conditions.push(newCondition('FailureTarget', BACKOFF));
      deleteActive(job, active);
    }
    return conditions;
  }

  function startPods(job: Job, status: JobStatus, running: number): void {
    const wanted =
      Math.min(job.spec.parallelism ?? 1, (job.spec.completions ?? 1) - (status.succeeded ?? 0)) - running;
    if (wanted <= 0 || job.spec.suspend || job.metadata.deletionTimestamp) return;
    const waitUntil = retryAt.get(job.metadata.uid!) ?? 0;
    if (now().getTime() < waitUntil) {
      options.defer(() => enqueue(job.metadata.namespace!, job.metadata.name!), waitUntil - now().getTime());
      return;
    }
    for (let index = 0; index < wanted; index += 1) createPod(job);
  }

  function sync(namespace: string, name: string): void {
    const job = registry.store.get('jobs', namespace, name) as Job | undefined;
    if (!job) return;
    const owned = podsOf(job);
    const status: JobStatus = clone(job.status ?? {});
    for (const pod of owned.filter(
      (p) => isTerminal(p) && p.metadata.finalizers?.includes(TRACKING_FINALIZER),
    )) {
      if (pod.status?.phase === 'Succeeded') status.succeeded = (status.succeeded ?? 0) + 1;
      else {
        status.failed = (status.failed ?? 0) + 1;
        retryAt.set(job.metadata.uid!, now().getTime() + options.retryDelayMs());
      }
      account(pod);
    }
    const active = owned.filter((pod) => !isTerminal(pod) && !pod.metadata.deletionTimestamp);
    const terminating = owned.filter((pod) => !isTerminal(pod) && pod.metadata.deletionTimestamp).length;
    if (!isFinished(job)) {
      status.conditions = nextConditions(job, status, active, terminating);
      const ending = status.conditions.some(
        (c) => c.type === 'SuccessCriteriaMet' || c.type === 'FailureTarget',
      );
      if (!ending) startPods(job, status, active.length);
    }
    // Counted again after this pass created or deleted pods.
    const live = podsOf(job).filter((pod) => !isTerminal(pod));
    const running = live.filter((pod) => !pod.metadata.deletionTimestamp);
    const ready = running.filter((pod) =>
      pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    const { active: _active, succeeded, failed, ...rest } = status;
    const finished = isFinished({ ...job, status });
    const next: JobStatus = {
      ...rest,
      startTime: status.startTime ?? kubeTime(now()),
      ...(running.length > 0 && !finished ? { active: running.length } : {}),
      ...(succeeded ? { succeeded } : {}),
      ...(failed ? { failed } : {}),
      ready: ready.length,
      terminating: live.length - running.length,
      uncountedTerminatedPods: {},
    };
    if (JSON.stringify(next) !== JSON.stringify(job.status))
      registry.updateStatus(jobs, { ...job, status: next });
  }

  function enqueue(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (queued.has(key)) return;
    queued.add(key);
    options.defer(() => {
      queued.delete(key);
      sync(namespace, name);
    }, 0);
  }

  // A pod whose Job is gone no longer needs counting: its tracking finalizer is released.
  function releaseOrphan(pod: Pod): void {
    const owner = ownerUid(pod);
    const alive = (registry.store.list('jobs', pod.metadata.namespace) as Job[]).some(
      (job) => job.metadata.uid === owner,
    );
    if (
      !alive &&
      pod.metadata.finalizers?.includes(TRACKING_FINALIZER) &&
      (isTerminal(pod) || pod.metadata.deletionTimestamp)
    ) {
      account(pod);
    }
  }

  const onChange = (change: Change) => {
    const namespace = change.object.metadata.namespace!;
    if (change.resource === 'jobs') {
      if (change.type === 'DELETED') retryAt.delete(change.object.metadata.uid!);
      else enqueue(namespace, change.object.metadata.name!);
    } else if (change.resource === 'pods') {
      const pod = change.object as Pod;
      const owner = pod.metadata.ownerReferences?.find((ref) => ref.controller && ref.kind === 'Job');
      if (change.type !== 'DELETED')
        options.defer(() => {
          const fresh = registry.store.get('pods', namespace, pod.metadata.name!) as Pod | undefined;
          if (fresh) releaseOrphan(fresh);
        }, 0);
      if (owner) enqueue(namespace, owner.name);
    }
  };

  return { onChange };
}
