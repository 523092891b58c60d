// The scheduler and the kubelet of a one-node cluster: a new pod is bound to the node and started
// (Pending → Running, with the container statuses a kubelet writes), a deleted pod is stopped
// and released, and a pod ends when the sandbox says so (Succeeded, Failed, OOMKilled).
import { randomBytes } from 'node:crypto';
import { clone, kubeTime, type Pod, type PodStatus } from './objects.ts';
import type { Registry } from './registry.ts';
import { resourceTypeOf } from './resources.ts';
import type { Change } from './store.ts';

export const NODE_NAME = 'sandbox-node-1';
const NODE_IP = '10.0.0.11';

export type PodOutcome = 'succeeded' | 'failed' | 'oom-killed';

export interface KubeletOptions {
  registry: Registry;
  now: () => Date;
  /** Each of scheduling and starting a pod takes this long. */
  startDelayMs: () => number;
  /** A running pod that some party wants ended at once (a doomed Job's pods). */
  outcomeOnStart: (pod: Pod) => PodOutcome | undefined;
  defer: (task: () => void, ms: number) => void;
}

const pods = resourceTypeOf('pods');

export const isTerminal = (pod: Pod) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

const condition = (type: string, status: 'True' | 'False', at: string, reason?: string) => ({
  type,
  status,
  lastProbeTime: null,
  lastTransitionTime: at,
  ...(reason ? { reason } : {}),
});

const EXIT: Record<PodOutcome, { exitCode: number; reason: string }> = {
  succeeded: { exitCode: 0, reason: 'Completed' },
  failed: { exitCode: 1, reason: 'Error' },
  // The kernel's OOM killer sends SIGKILL: 128 + 9.
  'oom-killed': { exitCode: 137, reason: 'OOMKilled' },
};

export function createKubelet(options: KubeletOptions) {
  const { registry, now } = options;
  let nextIp = 2;

  const current = (namespace: string, name: string) =>
    registry.store.get('pods', namespace, name) as Pod | undefined;

  function schedule(namespace: string, name: string): void {
    const pod = current(namespace, name);
    if (!pod || pod.spec.nodeName || pod.metadata.deletionTimestamp || isTerminal(pod)) return;
    const at = kubeTime(now());
    const next = clone(pod);
    next.spec.nodeName = NODE_NAME;
    next.status = { ...pod.status, conditions: [condition('PodScheduled', 'True', at)] };
    registry.systemUpdate(pods, next);
    options.defer(() => start(namespace, name), options.startDelayMs());
  }

  function start(namespace: string, name: string): void {
    const pod = current(namespace, name);
    if (pod?.status?.phase !== 'Pending' || pod.metadata.deletionTimestamp) return;
    const at = kubeTime(now());
    const ip = `10.244.0.${nextIp++ % 250}`;
    const next = clone(pod);
    next.status = {
      ...pod.status,
      phase: 'Running',
      hostIP: NODE_IP,
      hostIPs: [{ ip: NODE_IP }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: at,
      conditions: [
        condition('PodReadyToStartContainers', 'True', at),
        condition('Initialized', 'True', at),
        condition('Ready', 'True', at),
        condition('ContainersReady', 'True', at),
        condition('PodScheduled', 'True', pod.status?.conditions?.[0]?.lastTransitionTime as string),
      ],
      containerStatuses: pod.spec.containers.map((container) => ({
        name: container.name,
        state: { running: { startedAt: at } },
        lastState: {},
        ready: true,
        restartCount: 0,
        image: container.image,
        imageID: `docker.io/library/${container.image}@sha256:${randomBytes(32).toString('hex')}`,
        containerID: `containerd://${randomBytes(32).toString('hex')}`,
        started: true,
      })),
    };
    registry.systemUpdate(pods, next);
    const outcome = options.outcomeOnStart(next);
    if (outcome) end(namespace, name, outcome);
  }

  /** Ends a pod's containers with `outcome` (only its first container fails; the others complete). */
  function end(namespace: string, name: string, outcome: PodOutcome, exitCode?: number): Pod | undefined {
    const pod = current(namespace, name);
    if (!pod || isTerminal(pod)) return pod;
    const at = kubeTime(now());
    const started = pod.status?.startTime ?? at;
    const exit = { ...EXIT[outcome], ...(exitCode === undefined ? {} : { exitCode }) };
    const phase: PodStatus['phase'] = outcome === 'succeeded' ? 'Succeeded' : 'Failed';
    const next = clone(pod);
    const statuses: NonNullable<PodStatus['containerStatuses']> =
      pod.status?.containerStatuses ?? pod.spec.containers.map((c) => ({ name: c.name, state: {} }));
    next.status = {
      ...pod.status,
      phase,
      startTime: started,
      conditions: [
        condition('PodReadyToStartContainers', 'False', at),
        condition('Initialized', 'True', started, 'PodCompleted'),
        condition('Ready', 'False', at, phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed'),
        condition('ContainersReady', 'False', at, phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed'),
        condition('PodScheduled', 'True', started),
      ],
      containerStatuses: statuses.map((status, index) => ({
        ...status,
        ready: false,
        started: false,
        state: {
          terminated: {
            ...(index === 0 ? exit : EXIT.succeeded),
            startedAt: started,
            finishedAt: at,
            ...(typeof status.containerID === 'string' ? { containerID: status.containerID } : {}),
          },
        },
      })),
    };
    return registry.systemUpdate(pods, next) as Pod;
  }

  // A deleted pod's containers get SIGTERM and stop; then the kubelet releases it (grace 0).
  function stop(namespace: string, name: string): void {
    const pod = current(namespace, name);
    if (!pod?.metadata.deletionTimestamp || pod.metadata.deletionGracePeriodSeconds === 0) return;
    const stopped = (isTerminal(pod) ? pod : end(namespace, name, 'failed', 143)) ?? pod;
    const next = clone(stopped);
    next.metadata.deletionGracePeriodSeconds = 0;
    registry.systemUpdate(pods, next);
  }

  const onChange = (change: Change) => {
    if (change.resource !== 'pods' || change.type === 'DELETED') return;
    const pod = change.object as Pod;
    const { namespace, name } = pod.metadata as { namespace: string; name: string };
    if (change.type === 'ADDED') options.defer(() => schedule(namespace, name), options.startDelayMs());
    else if (pod.metadata.deletionTimestamp && pod.metadata.deletionGracePeriodSeconds !== 0) {
      options.defer(() => stop(namespace, name), options.startDelayMs());
    }
  };

  return { onChange, end };
}

export type Kubelet = ReturnType<typeof createKubelet>;
