// The cluster behind the API: the store and registry, the simulated scheduler/kubelet, Job
// controller and garbage collector reacting to every change, and the shortcuts the sandbox offers
// (start a Job, end it as complete / failed / OOM-killed / deleted, end one pod).

import { createGarbageCollector } from './garbage-collector.ts';
import { createJobController, isFinished, ownerUid } from './job-controller.ts';
import { createKubelet, isTerminal, type PodOutcome } from './kubelet.ts';
import { clone, type Job, type KubeObject, type Pod } from './objects.ts';
import { createRegistry } from './registry.ts';
import { resourceTypeOf } from './resources.ts';
import { badRequest, type KubeStatus } from './status.ts';
import { createObjectStore } from './store.ts';

export interface ClusterSettings {
  /** How long scheduling, starting and stopping a pod each take. */
  podStartDelayMs: number;
  /** Wait before the Job controller replaces a failed pod. */
  podRetryDelayMs: number;
  /** Interval of BOOKMARK events on watches that allow them (the API server's is about a minute). */
  bookmarkIntervalMs: number;
  /** Changes kept for watches to resume from; older versions get 410 Expired. */
  retainedChanges: number;
}

export const DEFAULT_SETTINGS: ClusterSettings = {
  podStartDelayMs: 20,
  podRetryDelayMs: 50,
  bookmarkIntervalMs: 60_000,
  retainedChanges: 10_000,
};

export type JobOutcome = 'complete' | 'failed' | 'oom-killed' | 'deleted';

export interface QuickJob {
  namespace?: string;
  name?: string;
  serviceAccountName?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  backoffLimit?: number;
  image?: string;
}

const jobs = resourceTypeOf('jobs');
const END_TIMEOUT_MS = 10_000;

export function createCluster(options: { now?: () => Date; settings?: Partial<ClusterSettings> } = {}) {
  const now = options.now ?? (() => new Date());
  const settings: ClusterSettings = { ...DEFAULT_SETTINGS, ...options.settings };
  const store = createObjectStore({ firstRevision: 100, retainedChanges: settings.retainedChanges });
  const registry = createRegistry(store, now);
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const defer = (task: () => void, ms: number) => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      task();
    }, ms);
    timers.add(timer);
  };
  // Jobs told to end: every pod they run ends the same way until the Job has its final condition.
  const doomed = new Map<string, PodOutcome>();

  const kubelet = createKubelet({
    registry,
    now,
    defer,
    startDelayMs: () => settings.podStartDelayMs,
    outcomeOnStart: (pod) => doomed.get(ownerUid(pod) ?? ''),
  });
  const jobController = createJobController({
    registry,
    now,
    defer,
    retryDelayMs: () => settings.podRetryDelayMs,
  });
  const collector = createGarbageCollector({ registry, defer });
  store.subscribe((change) => {
    kubelet.onChange(change);
    jobController.onChange(change);
    collector.onChange(change);
    if (change.resource === 'jobs' && change.type === 'DELETED') doomed.delete(change.object.metadata.uid!);
  });

  /** Resolves with the first object `test` accepts, looking now and at every change after. */
  function waitFor<T>(test: () => T | undefined, timeoutMs = END_TIMEOUT_MS): Promise<T> {
    const found = test();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error('the sandbox cluster did not reach the expected state in time'));
      }, timeoutMs);
      const unsubscribe = store.subscribe(() => {
        const value = test();
        if (value === undefined) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(value);
      });
    });
  }

  function createJob(quick: QuickJob): Job {
    const namespace = quick.namespace ?? 'default';
    return registry.create(jobs, namespace, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        ...(quick.name ? { name: quick.name } : { generateName: 'job-' }),
        ...(quick.labels ? { labels: quick.labels } : {}),
        ...(quick.annotations ? { annotations: quick.annotations } : {}),
      },
      spec: {
        backoffLimit: quick.backoffLimit ?? 0,
        template: {
          metadata: quick.podAnnotations ? { annotations: quick.podAnnotations } : {},
          spec: {
            serviceAccountName: quick.serviceAccountName ?? 'default',
            restartPolicy: 'Never',
            containers: [
              { name: 'main', image: quick.image ?? 'busybox:1.36', command: ['sh', '-c', 'sleep 3600'] },
            ],
          },
        },
      },
    }) as Job;
  }

  const podsOf = (job: Job) =>
    (store.list('pods', job.metadata.namespace) as Pod[]).filter((pod) => ownerUid(pod) === job.metadata.uid);

  /** Ends a Job the way `outcome` says and resolves once it has its final condition (or is gone). */
  async function endJob(
    namespace: string,
    name: string,
    outcome: JobOutcome,
  ): Promise<KubeObject | KubeStatus> {
    const job = registry.get(jobs, namespace, name) as Job;
    if (outcome === 'deleted')
      return registry.remove(jobs, namespace, name, { propagationPolicy: 'Background' }).body;
    if (!['complete', 'failed', 'oom-killed'].includes(outcome)) {
      throw badRequest(
        `outcome: Unsupported value: "${outcome}": supported values: "complete", "failed", "oom-killed", "deleted"`,
      );
    }
    if (isFinished(job)) return job;
    const podOutcome: PodOutcome = outcome === 'complete' ? 'succeeded' : outcome;
    // Pods still starting end as soon as they run: the kubelet asks `doomed` about each pod it starts.
    doomed.set(job.metadata.uid!, podOutcome);
    for (const pod of podsOf(job).filter((p) => !isTerminal(p) && p.status?.phase === 'Running')) {
      kubelet.end(namespace, pod.metadata.name!, podOutcome);
    }
    return waitFor(() => {
      const current = store.get('jobs', namespace, name) as Job | undefined;
      return !current || isFinished(current) ? (current ?? job) : undefined;
    });
  }

  function endPod(namespace: string, name: string, outcome: PodOutcome, exitCode?: number): Pod {
    const pod = registry.get(resourceTypeOf('pods'), namespace, name) as Pod;
    if (!['succeeded', 'failed', 'oom-killed'].includes(outcome)) {
      throw badRequest(
        `outcome: Unsupported value: "${outcome}": supported values: "succeeded", "failed", "oom-killed"`,
      );
    }
    return kubelet.end(namespace, name, outcome, exitCode) ?? pod;
  }

  return {
    store,
    registry,
    settings,
    now,
    waitFor,
    createJob,
    endJob,
    endPod,
    updateSettings(changes: Partial<ClusterSettings>) {
      for (const [key, value] of Object.entries(changes)) {
        if (!(key in settings) || !Number.isInteger(value) || Number(value) < 0) {
          throw badRequest(`${key}: must be a known setting with a non-negative integer value`);
        }
      }
      Object.assign(settings, clone(changes));
      store.setRetention(settings.retainedChanges);
      return { ...settings };
    },
    close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

export type Cluster = ReturnType<typeof createCluster>;
