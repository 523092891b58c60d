// Deletion as the API server's registry does it: preconditions, a pod's grace period, finalizers,
// and the propagation policy (the garbage collector's `orphan`/`foregroundDeletion` finalizers;
// batch/v1 Jobs orphan their pods unless told otherwise, with a warning).
import { clone, type KubeObject, kubeTime, type Pod } from './objects.ts';
import type { ResourceType } from './resources.ts';
import { conflict, type KubeStatus, success } from './status.ts';
import type { ObjectStore } from './store.ts';

export type PropagationPolicy = 'Orphan' | 'Background' | 'Foreground';

export interface DeleteOptions {
  propagationPolicy?: PropagationPolicy;
  orphanDependents?: boolean;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface DeleteOutcome {
  body: KubeObject | KubeStatus;
  warning?: string;
}

export const ORPHAN_WARNING =
  'child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning';

interface DeletionDeps {
  store: ObjectStore;
  now: () => Date;
  find(type: ResourceType, namespace: string, name: string): KubeObject;
  removeIfDue(type: ResourceType, object: KubeObject): KubeObject | undefined;
}

export function createDeletion({ store, now, find, removeIfDue }: DeletionDeps) {
  /** Stamps a deletion on an object that cannot go yet (finalizers, a pod's grace period). */
  const markDeleting = (
    type: ResourceType,
    object: KubeObject,
    graceSeconds: number,
    finalizers: string[],
  ) => {
    const marked = clone(object);
    marked.metadata.deletionTimestamp = kubeTime(new Date(now().getTime() + graceSeconds * 1000));
    marked.metadata.deletionGracePeriodSeconds = graceSeconds;
    marked.metadata.finalizers = finalizers;
    const stored = store.update(type.plural, marked);
    return removeIfDue(type, stored) ?? stored;
  };

  return function remove(
    type: ResourceType,
    namespace: string,
    name: string,
    options: DeleteOptions = {},
  ): DeleteOutcome {
    const existing = find(type, namespace, name);
    const { uid, resourceVersion } = options.preconditions ?? {};
    if (uid !== undefined && uid !== existing.metadata.uid) {
      throw conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${existing.metadata.uid}`,
      );
    }
    if (resourceVersion !== undefined && resourceVersion !== existing.metadata.resourceVersion) {
      throw conflict(
        type,
        name,
        `Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
      );
    }
    const named =
      options.propagationPolicy ??
      (options.orphanDependents === undefined
        ? undefined
        : options.orphanDependents
          ? 'Orphan'
          : 'Background');
    const policy: PropagationPolicy = named ?? (type.orphansByDefault ? 'Orphan' : 'Background');
    const warning = named === undefined && type.orphansByDefault ? ORPHAN_WARNING : undefined;
    const finalizers = [...(existing.metadata.finalizers ?? [])];
    if (type.plural === 'jobs' && policy !== 'Background') {
      const gcFinalizer = policy === 'Orphan' ? 'orphan' : 'foregroundDeletion';
      if (!finalizers.includes(gcFinalizer)) finalizers.push(gcFinalizer);
    }
    if (type.plural === 'pods') {
      const pod = existing as Pod;
      // An unscheduled pod has no kubelet to wait for; a scheduled one gets its grace period.
      const grace = pod.spec.nodeName
        ? (options.gracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30)
        : 0;
      if (
        existing.metadata.deletionTimestamp &&
        grace >= (existing.metadata.deletionGracePeriodSeconds ?? 0)
      ) {
        return { body: existing };
      }
      return { body: markDeleting(type, existing, grace, finalizers) };
    }
    if (finalizers.length > 0) {
      if (existing.metadata.deletionTimestamp && finalizers.length === existing.metadata.finalizers?.length) {
        return { body: existing, ...(warning ? { warning } : {}) };
      }
      return { body: markDeleting(type, existing, 0, finalizers), ...(warning ? { warning } : {}) };
    }
    const removed = store.remove(type.plural, namespace, name)!;
    return { body: success(type, name, removed.metadata.uid!), ...(warning ? { warning } : {}) };
  };
}
