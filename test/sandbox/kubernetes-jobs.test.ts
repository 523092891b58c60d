// The simulated cluster behind the Kubernetes stand-in: a Job's pods, their phases, and the
// status and events the Job controller writes as a Job completes, fails, is OOM-killed or deleted.
import { BatchV1Api, CoreV1Api, KubeConfig, type V1Job, type V1Pod, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubernetesStandIn, startKubernetesStandIn } from '../../sandbox/kubernetes/stand-in.ts';
import { kubeRequest } from '../support/kubernetes-http.ts';

let standIn: KubernetesStandIn;
let batch: BatchV1Api;
let core: CoreV1Api;
let kubeconfig: KubeConfig;

beforeAll(async () => {
  standIn = await startKubernetesStandIn({
    tokens: ['controller-token'],
    mintServiceAccountToken: async () => 'unused',
    settings: { podStartDelayMs: 5, podRetryDelayMs: 5 },
  });
  kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(standIn.kubeconfigPath);
  batch = kubeconfig.makeApiClient(BatchV1Api);
  core = kubeconfig.makeApiClient(CoreV1Api);
});
afterAll(() => standIn.close());

interface Recorded<T> {
  events: { type: string; object: T }[];
  until(test: (object: T, type: string) => boolean): Promise<T>;
  stop(): void;
}

/** Records every event of a client-node watch on `path` and waits for the one a test expects. */
async function record<T>(
  path: string,
  query: Record<string, string | number | boolean> = {},
): Promise<Recorded<T>> {
  const events: { type: string; object: T }[] = [];
  const waiters = new Set<() => void>();
  const request = await new Watch(kubeconfig).watch(
    path,
    query,
    (type, object) => {
      events.push({ type, object });
      for (const wake of [...waiters]) wake();
    },
    () => {},
  );
  return {
    events,
    stop: () => request.abort(),
    until: (test) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`not seen; got ${events.map((e) => e.type)}`)),
          10_000,
        );
        const wake = () => {
          const hit = events.find((event) => test(event.object, event.type));
          if (!hit) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(hit.object);
        };
        waiters.add(wake);
        wake();
      }),
  };
}

const jobManifest = (name: string, backoffLimit: number): V1Job => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name, annotations: { 'deploykey.dev/keys': 'github:acme/models' } },
  spec: {
    backoffLimit,
    template: {
      metadata: { labels: { app: 'train' } },
      spec: {
        serviceAccountName: 'trainer',
        restartPolicy: 'Never',
        containers: [{ name: 'train', image: 'python:3.12', command: ['python', 'train.py'] }],
      },
    },
  },
});

const endJob = (namespace: string, name: string, outcome: string) =>
  kubeRequest(standIn, `/_sandbox/namespaces/${namespace}/jobs/${name}/end`, {
    method: 'POST',
    body: { outcome },
  });

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

const conditionTypes = (job: V1Job) => (job.status?.conditions ?? []).map((condition) => condition.type);

describe('a Job', () => {
  it('runs a pod from its template, labelled, owned and under the template service account', async () => {
    const pods = await record<V1Pod>('/api/v1/namespaces/run/pods');
    const job = await batch.createNamespacedJob({ namespace: 'run', body: jobManifest('train-1', 0) });
    const uid = job.metadata!.uid!;
    const running = await pods.until((pod) => pod.status?.phase === 'Running');

    expect(pods.events[0]).toMatchObject({ type: 'ADDED', object: { status: { phase: 'Pending' } } });
    expect(running.metadata?.name).toMatch(/^train-1-[a-z0-9]{5}$/);
    expect(running.metadata?.labels).toEqual({
      app: 'train',
      'batch.kubernetes.io/controller-uid': uid,
      'batch.kubernetes.io/job-name': 'train-1',
      'controller-uid': uid,
      'job-name': 'train-1',
    });
    expect(running.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        name: 'train-1',
        uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(running.metadata?.finalizers).toEqual(['batch.kubernetes.io/job-tracking']);
    expect(running.spec?.serviceAccountName).toBe('trainer');
    expect(running.spec?.nodeName).toBeTruthy();
    // Watch events arrive as the JSON the server sent, timestamps as RFC 3339 strings.
    expect(running.status?.containerStatuses?.[0]?.state?.running?.startedAt).toMatch(RFC3339);
    expect(job.spec?.selector?.matchLabels).toEqual({ 'batch.kubernetes.io/controller-uid': uid });

    const selected = await core.listNamespacedPod({
      namespace: 'run',
      labelSelector: 'batch.kubernetes.io/job-name=train-1',
    });
    expect(selected.items.map((pod) => pod.metadata?.name)).toEqual([running.metadata?.name]);
    const current = await batch.readNamespacedJob({ namespace: 'run', name: 'train-1' });
    expect(current.status).toMatchObject({ active: 1, ready: 1 });
    expect(current.status?.startTime).toBeInstanceOf(Date);
    pods.stop();
  });

  it('completes: SuccessCriteriaMet, then Complete with a completion time, and a Completed event', async () => {
    const jobs = await record<V1Job>('/apis/batch/v1/namespaces/done/jobs');
    await batch.createNamespacedJob({ namespace: 'done', body: jobManifest('train-2', 0) });
    expect((await endJob('done', 'train-2', 'complete')).status).toBe(200);
    const complete = await jobs.until((job) => conditionTypes(job).includes('Complete'));

    const sequence = jobs.events.map((event) => conditionTypes(event.object).join('+')).filter(Boolean);
    expect(sequence).toEqual(['SuccessCriteriaMet', 'SuccessCriteriaMet+Complete']);
    expect(complete.status?.conditions?.[1]).toMatchObject({
      type: 'Complete',
      status: 'True',
      reason: 'CompletionsReached',
      message: 'Reached expected number of succeeded pods',
    });
    expect(complete.status).toMatchObject({ succeeded: 1, ready: 0, terminating: 0 });
    expect(complete.status?.active).toBeUndefined();
    expect(complete.status?.completionTime).toMatch(RFC3339);
    const pods = await core.listNamespacedPod({ namespace: 'done' });
    expect(pods.items[0]?.status?.phase).toBe('Succeeded');
    expect(pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 0,
      reason: 'Completed',
    });
    const events = await core.listNamespacedEvent({
      namespace: 'done',
      fieldSelector: `involvedObject.uid=${complete.metadata?.uid}`,
    });
    expect(events.items.map((event) => [event.type, event.reason])).toEqual([
      ['Normal', 'SuccessfulCreate'],
      ['Normal', 'Completed'],
    ]);
    jobs.stop();
  });

  it('fails after backoffLimit retries: FailureTarget, then Failed, each pod failed in turn', async () => {
    const jobs = await record<V1Job>('/apis/batch/v1/namespaces/flaky/jobs');
    await batch.createNamespacedJob({ namespace: 'flaky', body: jobManifest('train-3', 2) });
    await endJob('flaky', 'train-3', 'failed');
    const failed = await jobs.until((job) => conditionTypes(job).includes('Failed'));

    expect(conditionTypes(failed)).toEqual(['FailureTarget', 'Failed']);
    expect(failed.status?.conditions?.[1]).toMatchObject({
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached the specified backoff limit',
    });
    expect(failed.status?.failed).toBe(3);
    expect(failed.status?.completionTime).toBeUndefined();
    const pods = await core.listNamespacedPod({ namespace: 'flaky' });
    expect(pods.items.map((pod) => pod.status?.phase)).toEqual(['Failed', 'Failed', 'Failed']);
    const events = await core.listNamespacedEvent({
      namespace: 'flaky',
      fieldSelector: 'reason=BackoffLimitExceeded',
    });
    expect(events.items).toHaveLength(1);
    expect(events.items[0]?.type).toBe('Warning');
    jobs.stop();
  });

  it('with backoffLimit 0 fails on one OOM-killed pod (exit code 137)', async () => {
    await batch.createNamespacedJob({ namespace: 'oom', body: jobManifest('train-4', 0) });
    const response = await endJob('oom', 'train-4', 'oom-killed');
    expect(conditionTypes(response.json)).toEqual(['FailureTarget', 'Failed']);
    const [pod] = (await core.listNamespacedPod({ namespace: 'oom' })).items;
    expect(pod?.status?.phase).toBe('Failed');
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 137,
      reason: 'OOMKilled',
    });
    expect(pod?.metadata?.finalizers ?? []).toEqual([]);
  });

  it('replaces a failed pod while the backoff limit allows, and then completes', async () => {
    const pods = await record<V1Pod>('/api/v1/namespaces/retry/pods');
    await batch.createNamespacedJob({ namespace: 'retry', body: jobManifest('train-5', 1) });
    const first = await pods.until((pod) => pod.status?.phase === 'Running');
    const ended = await kubeRequest(standIn, `/_sandbox/namespaces/retry/pods/${first.metadata?.name}/end`, {
      method: 'POST',
      body: { outcome: 'failed', exitCode: 3 },
    });
    expect(ended.json.status.containerStatuses[0].state.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
    });
    const second = await pods.until(
      (pod, type) => type === 'ADDED' && pod.metadata?.name !== first.metadata?.name,
    );
    await pods.until(
      (pod) => pod.metadata?.name === second.metadata?.name && pod.status?.phase === 'Running',
    );
    const done = await endJob('retry', 'train-5', 'complete');
    expect(conditionTypes(done.json)).toEqual(['SuccessCriteriaMet', 'Complete']);
    expect(done.json.status).toMatchObject({ failed: 1, succeeded: 1 });
    pods.stop();
  });

  it('deleted in the background: the Job goes at once, its pods are stopped and deleted after', async () => {
    const pods = await record<V1Pod>('/api/v1/namespaces/gone/pods');
    const jobs = await record<V1Job>('/apis/batch/v1/namespaces/gone/jobs');
    await batch.createNamespacedJob({ namespace: 'gone', body: jobManifest('train-6', 0) });
    const pod = await pods.until((p) => p.status?.phase === 'Running');
    const status = await endJob('gone', 'train-6', 'deleted');
    expect(status.json).toMatchObject({
      kind: 'Status',
      status: 'Success',
      details: { name: 'train-6', kind: 'jobs' },
    });

    await jobs.until((_job, type) => type === 'DELETED');
    const deleted = await pods.until(
      (p, type) => type === 'DELETED' && p.metadata?.name === pod.metadata?.name,
    );
    expect(deleted.metadata?.deletionTimestamp).toMatch(RFC3339);
    expect(deleted.status?.phase).toBe('Failed');
    expect((await core.listNamespacedPod({ namespace: 'gone' })).items).toEqual([]);
    pods.stop();
    jobs.stop();
  });

  it('deleted in the foreground: the Job stays, marked, until its pods are gone', async () => {
    const jobs = await record<V1Job>('/apis/batch/v1/namespaces/fg/jobs');
    await batch.createNamespacedJob({ namespace: 'fg', body: jobManifest('train-7', 0) });
    await jobs.until((job) => job.status?.ready === 1);
    // client-node reads every delete answer as a V1Status; the marked Job is read from the raw answer.
    const marked = await kubeRequest(
      standIn,
      '/apis/batch/v1/namespaces/fg/jobs/train-7?propagationPolicy=Foreground',
      {
        method: 'DELETE',
        token: 'controller-token',
      },
    );
    expect(marked.status).toBe(200);
    expect(marked.json.metadata.finalizers).toEqual(['foregroundDeletion']);
    expect(marked.json.metadata.deletionTimestamp).toMatch(RFC3339);
    await jobs.until((_job, type) => type === 'DELETED');
    expect((await core.listNamespacedPod({ namespace: 'fg' })).items).toEqual([]);
    jobs.stop();
  });
});
