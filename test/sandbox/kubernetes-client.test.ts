// The Kubernetes stand-in through @kubernetes/client-node, used as its README shows: typed API
// clients, errors, leader-election style Lease updates, Watch and the list+watch informer.
import {
  ApiException,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
  type V1Lease,
  Watch,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubernetesStandIn, startKubernetesStandIn } from '../../sandbox/kubernetes/stand-in.ts';

let standIn: KubernetesStandIn;
let kubeconfig: KubeConfig;
let batch: BatchV1Api;
let core: CoreV1Api;
let coordination: CoordinationV1Api;

beforeAll(async () => {
  standIn = await startKubernetesStandIn({
    tokens: ['controller-token'],
    mintServiceAccountToken: async () => 'unused',
    settings: { podStartDelayMs: 5, bookmarkIntervalMs: 100 },
  });
  kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(standIn.kubeconfigPath);
  batch = kubeconfig.makeApiClient(BatchV1Api);
  core = kubeconfig.makeApiClient(CoreV1Api);
  coordination = kubeconfig.makeApiClient(CoordinationV1Api);
});
afterAll(() => standIn.close());

const job = (name: string, annotations: Record<string, string> = {}): V1Job => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name, annotations, labels: { team: 'ml' } },
  spec: {
    backoffLimit: 0,
    template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36' }] } },
  },
});

async function failureOf(call: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  const error = await call.then(
    () => expect.fail('expected the call to fail'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ApiException);
  const { code, body } = error as ApiException<unknown>;
  return { code, body: typeof body === 'string' ? JSON.parse(body) : (body as Record<string, unknown>) };
}

/** Resolves once `test` holds, re-checked after every informer or watch callback. */
function eventually(test: () => boolean, timeoutMs = 10_000): { check(): void; done: Promise<void> } {
  let resolve!: () => void;
  const done = new Promise<void>((ok, fail) => {
    resolve = ok;
    setTimeout(() => fail(new Error('condition not reached')), timeoutMs);
  });
  const check = () => {
    if (test()) resolve();
  };
  return { check, done };
}

describe('typed API clients', () => {
  it('create, read, list by label, and page through all namespaces with limit and continue', async () => {
    for (const namespace of ['team-a', 'team-b']) {
      for (const name of ['one', 'two']) await batch.createNamespacedJob({ namespace, body: job(name) });
    }
    const read = await batch.readNamespacedJob({ namespace: 'team-a', name: 'one' });
    expect(read.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(read.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(read.spec?.completions).toBe(1);

    const labelled = await batch.listNamespacedJob({
      namespace: 'team-b',
      labelSelector: 'team in (ml,research),!legacy',
      fieldSelector: 'metadata.name!=one',
    });
    expect(labelled.items.map((item) => item.metadata?.name)).toEqual(['two']);

    const first = await batch.listJobForAllNamespaces({ limit: 3 });
    expect(first.items.map((item) => `${item.metadata?.namespace}/${item.metadata?.name}`)).toEqual([
      'team-a/one',
      'team-a/two',
      'team-b/one',
    ]);
    expect(first.metadata?.remainingItemCount).toBe(1);
    // A Job created between pages is not in the snapshot the pages come from.
    await batch.createNamespacedJob({ namespace: 'team-c', body: job('late') });
    const second = await batch.listJobForAllNamespaces({ limit: 3, _continue: first.metadata!._continue! });
    expect(second.items.map((item) => item.metadata?.name)).toEqual(['two']);
    expect(second.metadata?._continue).toBeUndefined();
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
  });

  it('patches annotations as JSON patch (the default), merge patch and strategic merge patch', async () => {
    await batch.createNamespacedJob({
      namespace: 'patching',
      body: job('annotated', { keep: 'yes', drop: 'me' }),
    });
    const target = { namespace: 'patching', name: 'annotated' };
    await batch.patchNamespacedJob({
      ...target,
      body: [{ op: 'add', path: '/metadata/annotations/deploykey.dev~1keys', value: 'key-1' }],
    });
    await batch.patchNamespacedJob(
      { ...target, body: { metadata: { annotations: { drop: null, merged: 'by-merge-patch' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const patched = await batch.patchNamespacedJob(
      {
        ...target,
        body: { metadata: { annotations: { strategic: 'yes' }, finalizers: ['example.com/hold'] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(patched.metadata?.annotations).toEqual({
      keep: 'yes',
      'deploykey.dev/keys': 'key-1',
      merged: 'by-merge-patch',
      strategic: 'yes',
    });
    expect(patched.metadata?.finalizers).toEqual(['example.com/hold']);

    const immutable = await failureOf(
      batch.patchNamespacedJob(
        {
          ...target,
          body: { spec: { template: { spec: { containers: [{ name: 'main', image: 'evil:1' }] } } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(immutable.code).toBe(422);
    expect(immutable.body).toMatchObject({ kind: 'Status', reason: 'Invalid', code: 422 });
    expect(String(immutable.body.message)).toContain('spec.template: Invalid value');
    expect(String(immutable.body.message)).toContain('field is immutable');
  });

  it('answers failures with Status bodies: NotFound, AlreadyExists, Invalid', async () => {
    const missing = await failureOf(batch.readNamespacedJob({ namespace: 'nowhere', name: 'ghost' }));
    expect(missing).toEqual({
      code: 404,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'jobs.batch "ghost" not found',
        reason: 'NotFound',
        details: { name: 'ghost', group: 'batch', kind: 'jobs' },
        code: 404,
      },
    });
    await batch.createNamespacedJob({ namespace: 'errors', body: job('twice') });
    const duplicate = await failureOf(batch.createNamespacedJob({ namespace: 'errors', body: job('twice') }));
    expect(duplicate.code).toBe(409);
    expect(duplicate.body).toMatchObject({
      reason: 'AlreadyExists',
      message: 'jobs.batch "twice" already exists',
    });

    const bad = job('bad');
    bad.spec!.template.spec!.restartPolicy = 'Always';
    const invalid = await failureOf(batch.createNamespacedJob({ namespace: 'errors', body: bad }));
    expect(invalid.code).toBe(422);
    expect(invalid.body).toMatchObject({
      reason: 'Invalid',
      message:
        'Job.batch "bad" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"',
      details: { name: 'bad', group: 'batch', kind: 'Job' },
    });
  });

  it("reads a pod's phase as the kubelet moves it, and NotFound once a deleted pod is gone", async () => {
    const body = {
      metadata: { name: 'solo' },
      spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36' }] },
    };
    const created = await core.createNamespacedPod({ namespace: 'pods', body });
    expect(created.status?.phase).toBe('Pending');
    const read = () => core.readNamespacedPod({ namespace: 'pods', name: 'solo' });
    await expect.poll(async () => (await read()).status?.phase).toBe('Running');
    standIn.cluster.endPod('pods', 'solo', 'failed');
    const ended = await read();
    expect(ended.metadata?.uid).toBe(created.metadata?.uid);
    expect(ended.status?.phase).toBe('Failed');
    expect(ended.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 1,
      reason: 'Error',
    });

    await core.createNamespacedPod({ namespace: 'pods', body: { ...body, metadata: { name: 'doomed' } } });
    await expect
      .poll(async () => (await core.readNamespacedPod({ namespace: 'pods', name: 'doomed' })).status?.phase)
      .toBe('Running');
    await core.deleteNamespacedPod({ namespace: 'pods', name: 'doomed' });
    await expect
      .poll(() =>
        core.readNamespacedPod({ namespace: 'pods', name: 'doomed' }).then(
          () => 200,
          (error: ApiException<unknown>) => error.code,
        ),
      )
      .toBe(404);
  });

  it('creates and lists core v1 Events, selected by involvedObject fields', async () => {
    const target = await batch.createNamespacedJob({ namespace: 'events', body: job('watched') });
    const created = await core.createNamespacedEvent({
      namespace: 'events',
      body: {
        metadata: { generateName: 'watched.' },
        involvedObject: {
          kind: 'Job',
          apiVersion: 'batch/v1',
          namespace: 'events',
          name: 'watched',
          uid: target.metadata!.uid!,
        },
        reason: 'KeysIssued',
        message: 'issued 1 key',
        type: 'Normal',
        source: { component: 'deploykey-controller' },
      },
    });
    expect(created.metadata?.name).toMatch(/^watched\.[a-z0-9]{5}$/);
    const found = await core.listNamespacedEvent({
      namespace: 'events',
      fieldSelector: `involvedObject.kind=Job,involvedObject.uid=${target.metadata?.uid},reason=KeysIssued`,
    });
    expect(found.items.map((event) => event.message)).toEqual(['issued 1 key']);
    const unsupported = await failureOf(
      core.listNamespacedEvent({ namespace: 'events', fieldSelector: 'spec.nope=1' }),
    );
    expect(unsupported.code).toBe(400);
    expect(unsupported.body.message).toBe('field label not supported: spec.nope');
  });

  it('updates a Lease only from the version it read, as leader election does', async () => {
    const lease: V1Lease = {
      metadata: { name: 'deploykey-controller' },
      spec: { holderIdentity: 'replica-a', leaseDurationSeconds: 15, renewTime: new Date() },
    };
    const created = await coordination.createNamespacedLease({ namespace: 'leader', body: lease });
    const renewedByA = await coordination.replaceNamespacedLease({
      namespace: 'leader',
      name: 'deploykey-controller',
      body: { ...created, spec: { ...created.spec, renewTime: new Date() } },
    });
    expect(Number(renewedByA.metadata?.resourceVersion)).toBeGreaterThan(
      Number(created.metadata?.resourceVersion),
    );

    // Replica B read the Lease before A's renewal: its takeover is refused.
    const stale = await failureOf(
      coordination.replaceNamespacedLease({
        namespace: 'leader',
        name: 'deploykey-controller',
        body: { ...created, spec: { ...created.spec, holderIdentity: 'replica-b' } },
      }),
    );
    expect(stale.code).toBe(409);
    expect(stale.body).toMatchObject({
      reason: 'Conflict',
      message:
        'Operation cannot be fulfilled on leases.coordination.k8s.io "deploykey-controller": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: 'deploykey-controller', group: 'coordination.k8s.io', kind: 'leases' },
    });
    const current = await coordination.readNamespacedLease({
      namespace: 'leader',
      name: 'deploykey-controller',
    });
    expect(current.spec?.holderIdentity).toBe('replica-a');
    expect(current.metadata?.resourceVersion).toBe(renewedByA.metadata?.resourceVersion);
  });
});

describe('Watch', () => {
  it('streams ADDED and MODIFIED from a resourceVersion, with BOOKMARKs when allowed', async () => {
    const list = await batch.listNamespacedJob({ namespace: 'watching' });
    const seen: { type: string; name?: string; version?: string }[] = [];
    const bookmarked = eventually(() => seen.some((event) => event.type === 'BOOKMARK'));
    const request = await new Watch(kubeconfig).watch(
      '/apis/batch/v1/namespaces/watching/jobs',
      { resourceVersion: list.metadata?.resourceVersion ?? '', allowWatchBookmarks: true },
      (type, object) => {
        seen.push({ type, name: object.metadata?.name, version: object.metadata?.resourceVersion });
        bookmarked.check();
      },
      () => {},
    );
    await batch.createNamespacedJob({ namespace: 'watching', body: job('first') });
    await bookmarked.done;
    request.abort();
    expect(
      seen.filter((event) => event.type !== 'BOOKMARK').map((event) => `${event.type} ${event.name}`),
    ).toEqual(expect.arrayContaining(['ADDED first', 'MODIFIED first']));
    const bookmark = seen.find((event) => event.type === 'BOOKMARK')!;
    expect(Number(bookmark.version)).toBeGreaterThanOrEqual(Number(seen[0]?.version));
  });

  it('answers a resourceVersion older than the log with an ERROR event carrying 410 Expired', async () => {
    const list = await batch.listNamespacedJob({ namespace: 'expired' });
    standIn.cluster.store.compact();
    const events: { type: string; object: Record<string, unknown> }[] = [];
    const ended = new Promise<unknown>((resolve) => {
      new Watch(kubeconfig).watch(
        '/apis/batch/v1/namespaces/expired/jobs',
        { resourceVersion: list.metadata?.resourceVersion ?? '' },
        (type, object) => events.push({ type, object }),
        resolve,
      );
    });
    expect(await ended).toBeNull();
    expect(events).toEqual([
      {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${list.metadata?.resourceVersion} (${standIn.cluster.store.floor()})`,
          reason: 'Expired',
          code: 410,
        },
      },
    ]);
  });
});

describe('informer (list + watch)', () => {
  const listJobs = (namespace: string) => () => batch.listNamespacedJob({ namespace });

  it('keeps its cache through a server-closed watch: it reconnects from its resourceVersion', async () => {
    const informer = makeInformer(kubeconfig, '/apis/batch/v1/namespaces/steady/jobs', listJobs('steady'));
    const added: string[] = [];
    let connects = 0;
    const both = eventually(() => added.includes('after') && connects >= 2);
    informer.on('add', (object) => {
      added.push(object.metadata?.name ?? '');
      both.check();
    });
    informer.on('connect', () => {
      connects += 1;
      both.check();
    });
    await batch.createNamespacedJob({ namespace: 'steady', body: job('before') });
    await informer.start();
    await expect.poll(() => standIn.openWatches()).toBeGreaterThan(0);
    expect(standIn.dropWatches('close')).toBeGreaterThan(0);
    await batch.createNamespacedJob({ namespace: 'steady', body: job('after') });
    await both.done;
    await informer.stop();
    expect(added.filter((name) => name === 'before')).toHaveLength(1);
    expect(
      informer
        .list()
        .map((item) => item.metadata?.name)
        .sort(),
    ).toEqual(['after', 'before']);
  });

  it('re-lists after 410 and misses nothing that changed while its watch was down', async () => {
    const informer = makeInformer(kubeconfig, '/apis/batch/v1/namespaces/relist/jobs', listJobs('relist'));
    const errors: unknown[] = [];
    const deleted: string[] = [];
    const added: string[] = [];
    const recovered = eventually(() => added.includes('born-offline') && deleted.includes('doomed'));
    informer.on('error', (error) => errors.push(error));
    informer.on('add', (object) => {
      added.push(object.metadata?.name ?? '');
      recovered.check();
    });
    informer.on('delete', (object) => {
      deleted.push(object.metadata?.name ?? '');
      recovered.check();
    });
    await batch.createNamespacedJob({ namespace: 'relist', body: job('doomed') });
    await informer.start();
    await expect.poll(() => standIn.openWatches()).toBeGreaterThan(0);

    // A reset connection ends the informer with an error; client-node leaves the restart to its user.
    standIn.dropWatches('reset');
    await expect.poll(() => errors.length).toBe(1);
    await batch.deleteNamespacedJob({ namespace: 'relist', name: 'doomed', propagationPolicy: 'Background' });
    await batch.createNamespacedJob({ namespace: 'relist', body: job('born-offline') });
    standIn.cluster.store.compact();
    await informer.start();
    await recovered.done;
    await informer.stop();
    expect(informer.list().map((item) => item.metadata?.name)).toEqual(['born-offline']);
  });
});
