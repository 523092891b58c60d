// The Kubernetes stand-in over plain HTTPS, following the API reference: discovery, auth, the
// Status of each failure, pages, the raw watch stream, deletion propagation, and the `/_sandbox`
// controls (pod service account tokens that Vault's Kubernetes auth accepts, faults, compaction,
// dropped and stalled watches).
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pod } from '../../sandbox/kubernetes/objects.ts';
import { type KubernetesStandIn, startKubernetesStandIn } from '../../sandbox/kubernetes/stand-in.ts';
import { type OidcStandIn, startOidcStandIn } from '../../sandbox/oidc/stand-in.ts';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { kubeRequest, openWatchStream } from '../support/kubernetes-http.ts';

const TOKEN = 'controller-token';
let standIn: KubernetesStandIn;
let oidc: OidcStandIn;
let vaultStandIn: VaultStandIn;

beforeAll(async () => {
  oidc = await startOidcStandIn();
  standIn = await startKubernetesStandIn({
    tokens: [TOKEN],
    mintServiceAccountToken: (claims, options) => oidc.mint('kubernetes', claims, options),
    settings: { podStartDelayMs: 5, bookmarkIntervalMs: 50 },
  });
  vaultStandIn = await startVaultStandIn({
    rootToken: 'root',
    kubernetes: { publicKeysPem: [oidc.publicKeyPem()] },
  });
});
afterAll(async () => {
  await standIn.close();
  await vaultStandIn.close();
  await oidc.close();
});

const api = (path: string, options: Parameters<typeof kubeRequest>[2] = {}) =>
  kubeRequest(standIn, path, { token: TOKEN, ...options });

const jobBody = (name: string) => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name },
  spec: {
    backoffLimit: 0,
    template: {
      spec: {
        serviceAccountName: 'trainer',
        restartPolicy: 'Never',
        containers: [{ name: 'c', image: 'busybox:1.36' }],
      },
    },
  },
});

describe('discovery and auth', () => {
  it('serves /version to anyone and the group documents kubectl falls back to', async () => {
    const version = await kubeRequest(standIn, '/version', { token: null });
    expect(version.status).toBe(200);
    expect(version.json).toMatchObject({ major: '1', minor: '33' });

    expect((await api('/api')).json).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const groups = (await api('/apis')).json;
    expect(groups.groups.map((group: { name: string }) => group.name)).toEqual([
      'batch',
      'coordination.k8s.io',
    ]);
    const core = (await api('/api/v1')).json;
    expect(core.resources.map((r: { name: string }) => r.name).sort()).toEqual(['events', 'pods']);
    const batch = (await api('/apis/batch/v1')).json;
    expect(batch).toMatchObject({ kind: 'APIResourceList', groupVersion: 'batch/v1' });
    expect(batch.resources[0]).toMatchObject({
      name: 'jobs',
      kind: 'Job',
      namespaced: true,
      categories: ['all'],
    });
    expect(batch.resources[0].verbs).toEqual(
      expect.arrayContaining(['get', 'list', 'watch', 'patch', 'delete']),
    );
    const coordination = (await api('/apis/coordination.k8s.io/v1')).json;
    expect(coordination.resources.map((r: { name: string }) => r.name)).toEqual(['leases']);
  });

  it('refuses a wrong token with 401 and an anonymous caller with 403, as Status objects', async () => {
    const wrong = await kubeRequest(standIn, '/apis/batch/v1/jobs', { token: 'not-the-token' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['content-type']).toBe('application/json');
    expect(wrong.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
    const anonymous = await kubeRequest(standIn, '/apis/batch/v1/namespaces/ml/jobs', { token: null });
    expect(anonymous.status).toBe(403);
    expect(anonymous.json).toMatchObject({
      reason: 'Forbidden',
      message:
        'jobs.batch is forbidden: User "system:anonymous" cannot list resource "jobs" in API group "batch" in the namespace "ml"',
      details: { group: 'batch', kind: 'jobs' },
    });
  });
});

describe('errors', () => {
  it('405 for a verb the path does not serve, 415 for an unknown body type, 400 for bad JSON', async () => {
    const put = await api('/apis/batch/v1/namespaces/e/jobs', { method: 'PUT', body: jobBody('x') });
    expect(put.status).toBe(405);
    expect(put.json).toMatchObject({ reason: 'MethodNotAllowed', code: 405 });

    await api('/apis/batch/v1/namespaces/e/jobs', { method: 'POST', body: jobBody('patchme') });
    const text = await api('/apis/batch/v1/namespaces/e/jobs/patchme', {
      method: 'PATCH',
      body: 'metadata.annotations.a=b',
      contentType: 'text/plain',
    });
    expect(text.status).toBe(415);
    expect(text.json).toMatchObject({ reason: 'UnsupportedMediaType', code: 415 });
    expect(text.json.message).toContain('application/merge-patch+json');

    const broken = await api('/apis/batch/v1/namespaces/e/jobs', { method: 'POST', body: '{"metadata":' });
    expect(broken.status).toBe(400);
    expect(broken.json).toMatchObject({ kind: 'Status', reason: 'BadRequest' });
  });

  it('422 Invalid lists every field error as a cause', async () => {
    const response = await api('/apis/batch/v1/namespaces/e/jobs', {
      method: 'POST',
      body: { ...jobBody('Bad_Name'), spec: { template: { spec: { containers: [] } } } },
    });
    expect(response.status).toBe(422);
    expect(response.json.details.causes).toEqual([
      expect.objectContaining({ field: 'metadata.name', reason: 'FieldValueInvalid' }),
    ]);
    const noContainers = await api('/apis/batch/v1/namespaces/e/jobs', {
      method: 'POST',
      body: { ...jobBody('empty'), spec: { template: { spec: { containers: [] } } } },
    });
    expect(noContainers.json.message).toBe(
      'Job.batch "empty" is invalid: [spec.template.spec.containers: Required value, spec.template.spec.restartPolicy: Required value]',
    );
    expect(noContainers.json.details.causes).toEqual([
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.containers' },
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.restartPolicy' },
    ]);
  });

  it('answers a status the fault injector was given with a Status body', async () => {
    await kubeRequest(standIn, '/_sandbox/faults', {
      method: 'POST',
      body: { status: 500, pathPrefix: '/apis/batch', count: 1 },
    });
    const failed = await api('/apis/batch/v1/jobs');
    expect(failed.status).toBe(500);
    expect(failed.json).toMatchObject({ kind: 'Status', reason: 'InternalError', code: 500 });
    expect((await api('/apis/batch/v1/jobs')).status).toBe(200);
  });
});

describe('lists', () => {
  it('a continue token older than the log is 410 Expired, with an inconsistent token to finish', async () => {
    for (const name of ['a', 'b', 'c'])
      await api('/api/v1/namespaces/pages/events', { method: 'POST', body: { metadata: { name } } });
    const first = await api('/api/v1/namespaces/pages/events?limit=1');
    expect(first.json.items.map((item: { metadata: { name: string } }) => item.metadata.name)).toEqual(['a']);
    expect(first.json.items[0].kind).toBeUndefined();
    await kubeRequest(standIn, '/_sandbox/compact', { method: 'POST' });

    const expired = await api(
      `/api/v1/namespaces/pages/events?limit=1&continue=${first.json.metadata.continue}`,
    );
    expect(expired.status).toBe(410);
    expect(expired.json).toMatchObject({ reason: 'Expired', code: 410 });
    expect(expired.json.message).toMatch(/^The provided continue parameter is too old/);
    const rest = await api(`/api/v1/namespaces/pages/events?continue=${expired.json.metadata.continue}`);
    expect(rest.json.items.map((item: { metadata: { name: string } }) => item.metadata.name)).toEqual([
      'b',
      'c',
    ]);
  });
});

describe('server-side printing', () => {
  it('answers kubectl get with a Table of the printer columns for Jobs and Pods', async () => {
    await kubeRequest(standIn, '/_sandbox/jobs', {
      method: 'POST',
      body: { namespace: 'printed', name: 'shown' },
    });
    await standIn.cluster.waitFor(() =>
      (standIn.cluster.store.list('pods', 'printed') as Pod[])[0]?.status?.phase === 'Running'
        ? true
        : undefined,
    );
    const accept =
      'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';
    const jobs = await api('/apis/batch/v1/namespaces/printed/jobs', { accept });
    expect(jobs.json).toMatchObject({ kind: 'Table', apiVersion: 'meta.k8s.io/v1' });
    expect(jobs.json.columnDefinitions.map((c: { name: string }) => c.name)).toEqual([
      'Name',
      'Status',
      'Completions',
      'Duration',
      'Age',
    ]);
    expect(jobs.json.rows[0].cells.slice(0, 3)).toEqual(['shown', 'Running', '0/1']);
    expect(jobs.json.rows[0].object).toMatchObject({
      kind: 'PartialObjectMetadata',
      metadata: { name: 'shown' },
    });

    const pods = await api('/api/v1/namespaces/printed/pods', { accept });
    expect(pods.json.rows[0].cells.slice(1, 4)).toEqual(['1/1', 'Running', '0']);
    const plain = await api('/api/v1/namespaces/printed/pods');
    expect(plain.json.kind).toBe('PodList');
  });
});

describe('the watch stream', () => {
  it('is chunked application/json, one {type, object} per line, ending at timeoutSeconds', async () => {
    const list = await api('/apis/batch/v1/namespaces/stream/jobs');
    const from = list.json.metadata.resourceVersion;
    const watch = await openWatchStream(
      standIn,
      `/apis/batch/v1/namespaces/stream/jobs?watch=1&resourceVersion=${from}&allowWatchBookmarks=true&timeoutSeconds=2`,
      TOKEN,
    );
    expect(watch.status).toBe(200);
    expect(watch.headers['content-type']).toBe('application/json');
    expect(watch.headers['transfer-encoding']).toBe('chunked');

    await api('/apis/batch/v1/namespaces/stream/jobs', { method: 'POST', body: jobBody('w1') });
    const added = await watch.next((event) => event.type === 'ADDED');
    expect(added.object).toMatchObject({ kind: 'Job', apiVersion: 'batch/v1', metadata: { name: 'w1' } });
    expect(Number(added.object.metadata.resourceVersion)).toBeGreaterThan(Number(from));
    await api('/apis/batch/v1/namespaces/stream/jobs/w1', {
      method: 'PATCH',
      contentType: 'application/strategic-merge-patch+json',
      body: { metadata: { annotations: { 'deploykey.dev/key-ids': 'k1' } } },
    });
    const modified = await watch.next(
      (event) => event.type === 'MODIFIED' && event.object.metadata.annotations,
    );
    expect(modified.object.metadata.annotations).toEqual({ 'deploykey.dev/key-ids': 'k1' });
    const bookmark = await watch.next((event) => event.type === 'BOOKMARK');
    expect(bookmark.object).toEqual({
      kind: 'Job',
      apiVersion: 'batch/v1',
      metadata: { resourceVersion: expect.stringMatching(/^\d+$/), creationTimestamp: null },
      spec: { template: { metadata: { creationTimestamp: null }, spec: { containers: null } } },
      status: {},
    });
    await watch.ended;
  });

  it('by label selector: an object leaving the selection is DELETED for this watch', async () => {
    await api('/apis/batch/v1/namespaces/sel/jobs', {
      method: 'POST',
      body: { ...jobBody('tagged'), metadata: { name: 'tagged', labels: { keys: 'wanted' } } },
    });
    const watch = await openWatchStream(
      standIn,
      '/apis/batch/v1/namespaces/sel/jobs?watch=true&labelSelector=keys%3Dwanted',
      TOKEN,
    );
    expect((await watch.next(() => true)).type).toBe('ADDED');
    await api('/apis/batch/v1/namespaces/sel/jobs/tagged', {
      method: 'PATCH',
      contentType: 'application/merge-patch+json',
      body: { metadata: { labels: { keys: null } } },
    });
    const left = await watch.next((event) => event.type === 'DELETED');
    expect(left.object.metadata.name).toBe('tagged');
    watch.close();
  });

  it('sendInitialEvents: the current objects, then a bookmark marking the end of them', async () => {
    await api('/apis/batch/v1/namespaces/initial/jobs', { method: 'POST', body: jobBody('exists') });
    const watch = await openWatchStream(
      standIn,
      '/apis/batch/v1/namespaces/initial/jobs?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan',
      TOKEN,
    );
    expect(await watch.next(() => true)).toMatchObject({
      type: 'ADDED',
      object: { metadata: { name: 'exists' } },
    });
    const end = await watch.next(() => true);
    expect(end.type).toBe('BOOKMARK');
    expect(end.object.metadata.annotations).toEqual({ 'k8s.io/initial-events-end': 'true' });
    watch.close();
  });
});

describe('deleting a Job', () => {
  it('without a policy orphans its pods and says so in a Warning header', async () => {
    const created = await api('/apis/batch/v1/namespaces/orphans/jobs', {
      method: 'POST',
      body: jobBody('parent'),
    });
    await standIn.cluster.waitFor(() =>
      standIn.cluster.store.list('pods', 'orphans').length === 1 ? true : undefined,
    );
    const deleted = await api('/apis/batch/v1/namespaces/orphans/jobs/parent', { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect(deleted.headers.warning).toBe(
      '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning"',
    );
    expect(deleted.json.metadata).toMatchObject({ finalizers: ['orphan'], uid: created.json.metadata.uid });
    await standIn.cluster.waitFor(() =>
      standIn.cluster.store.get('jobs', 'orphans', 'parent') === undefined ? true : undefined,
    );
    const [pod] = (await api('/api/v1/namespaces/orphans/pods')).json.items;
    expect(pod.metadata.ownerReferences).toEqual([]);
    expect(pod.metadata.deletionTimestamp).toBeUndefined();
  });

  it('in the background answers a Success Status naming the Job and its uid', async () => {
    const created = await api('/apis/batch/v1/namespaces/bg/jobs', {
      method: 'POST',
      body: jobBody('short'),
    });
    const deleted = await api('/apis/batch/v1/namespaces/bg/jobs/short', {
      method: 'DELETE',
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' },
    });
    expect(deleted.headers.warning).toBeUndefined();
    expect(deleted.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: 'short', group: 'batch', kind: 'jobs', uid: created.json.metadata.uid },
    });
    expect((await api('/apis/batch/v1/namespaces/bg/jobs/short')).status).toBe(404);
  });
});

describe('/_sandbox', () => {
  it("hands a pod a service account token naming it, which Vault's Kubernetes auth accepts", async () => {
    const job = await kubeRequest(standIn, '/_sandbox/jobs', {
      method: 'POST',
      body: { namespace: 'training', name: 'train-7', serviceAccountName: 'trainer' },
    });
    expect(job.status).toBe(201);
    const pod = await standIn.cluster.waitFor(() => standIn.cluster.store.list('pods', 'training')[0]);
    const issued = await kubeRequest(
      standIn,
      `/_sandbox/namespaces/training/pods/${pod.metadata.name}/token`,
      {
        method: 'POST',
        body: { audience: 'vault' },
      },
    );
    expect(issued.status).toBe(200);
    const claims = JSON.parse(Buffer.from(issued.json.token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({
      iss: oidc.issuer,
      aud: ['vault'],
      sub: 'system:serviceaccount:training:trainer',
      'kubernetes.io': {
        namespace: 'training',
        pod: { name: pod.metadata.name, uid: pod.metadata.uid },
        serviceaccount: { name: 'trainer' },
      },
    });

    const root = vault({ endpoint: vaultStandIn.addr, token: 'root' });
    await root.write('auth/kubernetes/role/train-7', {
      bound_service_account_names: ['trainer'],
      bound_service_account_namespaces: ['training'],
      audience: 'vault',
      token_policies: ['default'],
    });
    const login = await vault({ endpoint: vaultStandIn.addr }).kubernetesLogin({
      role: 'train-7',
      jwt: issued.json.token,
      mount_point: 'kubernetes',
    });
    expect(login.auth.metadata).toMatchObject({
      service_account_namespace: 'training',
      service_account_name: 'trainer',
    });

    const missing = await kubeRequest(standIn, '/_sandbox/namespaces/training/pods/nope/token', {
      method: 'POST',
    });
    expect(missing.status).toBe(404);
  });

  it('drops open watches on request and counts them', async () => {
    const watch = await openWatchStream(standIn, '/api/v1/namespaces/any/pods?watch=1', TOKEN);
    expect((await kubeRequest(standIn, '/_sandbox/watches')).json.open).toBeGreaterThan(0);
    const dropped = await kubeRequest(standIn, '/_sandbox/watches?mode=close', { method: 'DELETE' });
    expect(dropped.json.dropped).toBeGreaterThan(0);
    await watch.ended;
    expect((await kubeRequest(standIn, '/_sandbox/watches')).json.open).toBe(0);
  });

  it('stalls open watches on request: connected, but sent nothing more, not even a bookmark', async () => {
    const path = '/apis/batch/v1/namespaces/stalled/jobs?watch=1&allowWatchBookmarks=true';
    const stalled = await openWatchStream(standIn, path, TOKEN);
    await stalled.next((event) => event.type === 'BOOKMARK');
    const answer = await kubeRequest(standIn, '/_sandbox/watches/stall', { method: 'POST' });
    expect(answer.json.stalled).toBeGreaterThan(0);
    const seenBefore = stalled.events.length;

    const fresh = await openWatchStream(standIn, path, TOKEN);
    await api('/apis/batch/v1/namespaces/stalled/jobs', { method: 'POST', body: jobBody('unseen') });
    await fresh.next((event) => event.type === 'ADDED' && event.object.metadata.name === 'unseen');
    await fresh.next((event) => event.type === 'BOOKMARK');
    expect(stalled.events.length).toBe(seenBefore);
    const counts = (await kubeRequest(standIn, '/_sandbox/watches')).json;
    expect(counts.stalled).toBeGreaterThan(0);
    expect(counts.open).toBeGreaterThan(counts.stalled);

    await kubeRequest(standIn, '/_sandbox/watches?mode=close', { method: 'DELETE' });
    await Promise.all([stalled.ended, fresh.ended]);
    expect(stalled.events.length).toBe(seenBefore);
  });

  it('expires watches on request: the resumed watch gets the ERROR event with a 410 Status, in a 200 stream', async () => {
    const list = await kubeRequest(standIn, '/api/v1/namespaces/any/pods', { token: TOKEN });
    const resumeFrom = list.json.metadata.resourceVersion as string;
    const watch = await openWatchStream(standIn, '/api/v1/namespaces/any/pods?watch=1', TOKEN);
    const { expired } = (await kubeRequest(standIn, '/_sandbox/watches')).json;
    const dropped = await kubeRequest(standIn, '/_sandbox/watches?mode=expire', { method: 'DELETE' });
    expect(dropped.json.dropped).toBeGreaterThan(0);
    await watch.ended;

    const path = `/api/v1/namespaces/any/pods?watch=1&resourceVersion=${resumeFrom}`;
    const resumed = await openWatchStream(standIn, path, TOKEN);
    expect(resumed.status).toBe(200);
    const error = await resumed.next((event) => event.type === 'ERROR');
    expect(error.object).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 });
    await resumed.ended;
    expect((await kubeRequest(standIn, '/_sandbox/watches')).json.expired).toBe(expired + 1);
    const bad = await kubeRequest(standIn, '/_sandbox/watches?mode=later', { method: 'DELETE' });
    expect(bad.status).toBe(400);
  });
});
