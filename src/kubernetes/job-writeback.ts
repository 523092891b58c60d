// The controller's answer on the Job, for `kubectl describe job`: an Event and an annotation.
import { randomBytes } from 'node:crypto';
import {
  BatchV1Api,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
} from '@kubernetes/client-node';

export function createWriteback(kubeconfig: KubeConfig, now: () => Date) {
  const batch = kubeconfig.makeApiClient(BatchV1Api);
  const core = kubeconfig.makeApiClient(CoreV1Api);

  async function annotate(job: V1Job, annotations: Record<string, string | null>): Promise<void> {
    const { namespace, name } = job.metadata as { namespace: string; name: string };
    await batch.patchNamespacedJob(
      { namespace, name, body: { metadata: { annotations } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  async function event(job: V1Job, type: 'Normal' | 'Warning', reason: string, message: string) {
    const { namespace, name, uid } = job.metadata as { namespace: string; name: string; uid: string };
    const at = now();
    await core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name: `${name}.${randomBytes(8).toString('hex')}`, namespace },
        involvedObject: { apiVersion: 'batch/v1', kind: 'Job', namespace, name, uid },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: 'deploykey-rotator' },
        reportingComponent: 'deploykey-rotator',
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
      },
    });
  }

  return { annotate, event };
}
