// The garbage collector's part in deleting a Job: `Background` deletes the pods once the Job is
// gone, `Foreground` deletes them first and then lets the Job go, `Orphan` (batch/v1's default)
// strips their owner reference and keeps them.

import { ownerUid, TRACKING_FINALIZER } from './job-controller.ts';
import { clone, type Job, type Pod } from './objects.ts';
import type { Registry } from './registry.ts';
import { resourceTypeOf } from './resources.ts';
import type { Change } from './store.ts';

const jobs = resourceTypeOf('jobs');
const pods = resourceTypeOf('pods');

export function createGarbageCollector(options: {
  registry: Registry;
  defer: (task: () => void, ms: number) => void;
}) {
  const { registry } = options;
  const dependents = (namespace: string, uid: string) =>
    (registry.store.list('pods', namespace) as Pod[]).filter((pod) => ownerUid(pod) === uid);

  const dropFinalizer = (job: Job, finalizer: string) => {
    const next = clone(job);
    next.metadata.finalizers = (job.metadata.finalizers ?? []).filter((name) => name !== finalizer);
    registry.systemUpdate(jobs, next);
  };

  const deletePods = (list: Pod[]) => {
    for (const pod of list.filter((p) => !p.metadata.deletionTimestamp)) {
      registry.remove(pods, pod.metadata.namespace!, pod.metadata.name!, {});
    }
  };

  function collect(namespace: string, name: string): void {
    const job = registry.store.get('jobs', namespace, name) as Job | undefined;
    if (!job?.metadata.deletionTimestamp) return;
    const owned = dependents(namespace, job.metadata.uid!);
    const finalizers = job.metadata.finalizers ?? [];
    if (finalizers.includes('orphan')) {
      for (const pod of owned) {
        const next = clone(pod);
        next.metadata.ownerReferences = (pod.metadata.ownerReferences ?? []).filter(
          (ref) => ref.uid !== job.metadata.uid,
        );
        next.metadata.finalizers = (pod.metadata.finalizers ?? []).filter((f) => f !== TRACKING_FINALIZER);
        registry.systemUpdate(pods, next);
      }
      dropFinalizer(job, 'orphan');
    } else if (finalizers.includes('foregroundDeletion')) {
      deletePods(owned);
      if (owned.length === 0) dropFinalizer(job, 'foregroundDeletion');
    }
  }

  const onChange = (change: Change) => {
    const namespace = change.object.metadata.namespace!;
    if (change.resource === 'jobs' && change.type === 'DELETED') {
      const uid = change.object.metadata.uid!;
      options.defer(() => deletePods(dependents(namespace, uid)), 0);
    } else if (change.resource === 'jobs') {
      options.defer(() => collect(namespace, change.object.metadata.name!), 0);
    } else if (change.resource === 'pods' && change.type === 'DELETED') {
      const owner = change.object.metadata.ownerReferences?.find((ref) => ref.kind === 'Job');
      if (owner) options.defer(() => collect(namespace, owner.name), 0);
    }
  };

  return { onChange };
}
