// A key a pod asked for itself (its service account token names the pod) follows that pod: the
// controller revokes it when the pod succeeds or fails, is deleted, or is replaced by a pod of the
// same name, also when that happened while no controller ran; other pods' keys stay.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeployKeyRow } from '../../src/db/schema.ts';
import { startKubernetesController } from '../../src/kubernetes/controller.ts';
import { createPodCheck, type PodCheckDeps } from '../../src/kubernetes/pod-check.ts';
import {
  type ControllerHarness,
  revokedWithin,
  startControllerHarness,
} from '../support/kubernetes-controller.ts';
import { eventually } from '../support/service-harness.ts';

let k: ControllerHarness;

beforeAll(async () => {
  k = await startControllerHarness();
}, 60_000);
afterAll(() => k?.close());

const NAMESPACE = 'training';
// Generous against a loaded machine: the controller's sweep period in these tests is 1 s.
const REVOKED_WITHIN_MS = 10_000;
const keys = () => k.harness.service.container.keys;
const github = () => k.harness.standIns.github.state;

async function runningPod(name: string): Promise<V1Pod> {
  await k.core.createNamespacedPod({
    namespace: NAMESPACE,
    body: {
      metadata: { name },
      spec: {
        serviceAccountName: 'trainer',
        restartPolicy: 'Never',
        containers: [{ name: 'train', image: 'python:3.12', command: ['python', 'train.py'] }],
      },
    },
  });
  return eventually(
    async () => {
      const pod = await k.core.readNamespacedPod({ namespace: NAMESPACE, name });
      return pod.status?.phase === 'Running' ? pod : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 20, what: `pod ${name} running` },
  );
}

/** The pod asks the service for a key with its own projected token, as `deploykey issue` would. */
async function keyOfPod(pod: string, repository = 'acme/models'): Promise<DeployKeyRow> {
  const { token } = await k.harness.standIns.kubernetes.podToken(NAMESPACE, pod, {
    audience: 'deploykey-rotator',
  });
  const issued = await k.harness.api('POST', '/v1/keys', {
    token,
    body: { provider: 'github', repository, jobId: pod, ttlSeconds: 3_600 },
  });
  expect(issued.status).toBe(201);
  return (await keys().findById(issued.body.id)) as DeployKeyRow;
}

/** The key is usable: at the host, and in Vault for the pod's service account. */
async function expectUsable(row: DeployKeyRow) {
  expect(github().keysWithBlob(row.public_key ?? '')).toHaveLength(1);
  const secret = await k.readAsPod(NAMESPACE, 'trainer', `deploykey-${row.id}`, row.vault_path ?? '');
  expect(secret['ssh-privatekey']).toContain('BEGIN OPENSSH PRIVATE KEY');
}

async function expectGone(row: DeployKeyRow, reason: 'job-ended' | 'job-deleted') {
  await revokedWithin(k.harness, REVOKED_WITHIN_MS, [row.id]);
  expect((await keys().findById(row.id))?.revoke_reason).toBe(reason);
  expect(github().keysWithBlob(row.public_key ?? '')).toHaveLength(0);
  await expect(
    k.readAsPod(NAMESPACE, 'trainer', `deploykey-${row.id}`, row.vault_path ?? ''),
  ).rejects.toThrow();
}

/** What the controller recorded when it asked for the key's revoke. */
async function revokeAudit(row: DeployKeyRow) {
  const audit = await k.harness.service.container.db.pool.query(
    "SELECT actor, details FROM audit_events WHERE action = 'key.revoke_requested' AND key_id = $1",
    [row.id],
  );
  expect(audit.rows).toHaveLength(1);
  return audit.rows[0] as { actor: string; details: Record<string, unknown> };
}

describe("the Kubernetes controller and keys bound to a caller's pod", () => {
  for (const outcome of ['succeeded', 'failed'] as const) {
    it(`revokes a pod's key when the pod ${outcome}, and leaves another pod's key`, async () => {
      const pod = await runningPod(`trainer-${outcome}`);
      const other = await runningPod(`bystander-${outcome}`);
      const row = await keyOfPod(`trainer-${outcome}`);
      const otherRow = await keyOfPod(`bystander-${outcome}`);
      expect(row.binding).toEqual({
        kind: 'kubernetes-pod',
        namespace: NAMESPACE,
        name: `trainer-${outcome}`,
        uid: pod.metadata?.uid,
      });
      await expectUsable(row);

      k.harness.standIns.kubernetes.cluster.endPod(NAMESPACE, `trainer-${outcome}`, outcome);
      await expectGone(row, 'job-ended');
      const audit = await revokeAudit(row);
      expect(audit.actor).toBe('system:deploykey-rotator:kubernetes-controller');
      expect(audit.details).toMatchObject({
        reason: 'job-ended',
        uid: pod.metadata?.uid,
        phase: outcome === 'succeeded' ? 'Succeeded' : 'Failed',
        pod: { namespace: NAMESPACE, name: `trainer-${outcome}` },
      });

      expect((await keys().findById(otherRow.id))?.status).toBe('active');
      await expectUsable(otherRow);
      expect(other.metadata?.uid).not.toBe(pod.metadata?.uid);
    });
  }

  it('revokes the key of a deleted pod as job-deleted', async () => {
    const pod = await runningPod('trainer-deleted');
    const row = await keyOfPod('trainer-deleted');
    await k.core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'trainer-deleted' });
    await expectGone(row, 'job-deleted');
    expect((await revokeAudit(row)).details).toMatchObject({ uid: pod.metadata?.uid, phase: 'Deleted' });
  });

  it('after a restart, revokes the keys of pods deleted or replaced while no controller ran', async () => {
    await runningPod('down-deleted');
    const replacedPod = await runningPod('down-replaced');
    const running = await keyOfPod((await runningPod('down-running')).metadata?.name as string);
    const deleted = await keyOfPod('down-deleted');
    const replaced = await keyOfPod('down-replaced');

    await k.controller.stop();
    await k.core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'down-deleted' });
    await k.core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'down-replaced' });
    await eventually(
      () =>
        k.core.listNamespacedPod({ namespace: NAMESPACE }).then(({ items }) => {
          const names = items.map((pod) => pod.metadata?.name);
          return names.includes('down-deleted') || names.includes('down-replaced') ? undefined : true;
        }),
      { timeoutMs: 10_000, intervalMs: 20, what: 'both pods gone' },
    );
    const successor = await runningPod('down-replaced');
    expect((await keys().findById(deleted.id))?.status).toBe('active');

    k.controller = startKubernetesController(k.harness.service.container);
    await k.controller.leading;
    await expectGone(deleted, 'job-deleted');
    await expectGone(replaced, 'job-deleted');
    expect((await revokeAudit(replaced)).details).toMatchObject({
      uid: replacedPod.metadata?.uid,
      phase: 'Deleted',
      replacedBy: successor.metadata?.uid,
    });
    expect((await keys().findById(running.id))?.status).toBe('active');
  });

  it('revokes nothing while the API cannot answer about the pod, and revokes once it can', async () => {
    const row = await keyOfPod((await runningPod('trainer-api-down')).metadata?.name as string);
    const faults = k.harness.standIns.kubernetes.faults;
    faults.add({ method: 'GET', pathPrefix: `/api/v1/namespaces/${NAMESPACE}/pods/`, status: 503 });
    try {
      k.harness.standIns.kubernetes.cluster.endPod(NAMESPACE, 'trainer-api-down', 'succeeded');
      await eventually(async () => faults.stats().injected >= 3 || undefined, {
        timeoutMs: 10_000,
        what: 'three pod checks answered 503',
      });
      expect((await keys().findById(row.id))?.status).toBe('active');
    } finally {
      faults.clear();
    }
    await expectGone(row, 'job-ended');
  });

  it('asks about at most podChecksPerSweep pods a sweep, those asked longest ago first', async () => {
    const names = ['rota-a', 'rota-b', 'rota-c'];
    for (const name of names) await keyOfPod((await runningPod(name)).metadata?.name as string);
    const asked: string[] = [];
    const check = (settings: Partial<PodCheckDeps>) =>
      createPodCheck({
        core: {
          readNamespacedPod: (request) => {
            asked.push(request.name);
            return k.core.readNamespacedPod(request);
          },
        },
        keys: keys(),
        keyService: k.harness.service.container.keyService,
        logger: k.harness.service.container.logger,
        issuerId: k.harness.service.container.config.kubernetes.oidcIssuerId,
        namespaces: [],
        perSweep: 2,
        ...settings,
      });

    // Other tests' pods hold live keys too: every pass asks at most two, and the pods asked longest
    // ago come first, so all of them, these three included, are asked in turn, none twice ahead.
    const capped = check({ perSweep: 2 });
    const counts = new Map<string, number>();
    for (let pass = 0; pass < 6; pass += 1) {
      asked.length = 0;
      await capped.check();
      expect(asked.length).toBeLessThanOrEqual(2);
      for (const name of asked) counts.set(name, (counts.get(name) ?? 0) + 1);
      expect(Math.max(...counts.values()) - Math.min(...counts.values())).toBeLessThanOrEqual(1);
    }
    for (const name of names) expect(counts.get(name)).toBeGreaterThan(0);

    asked.length = 0;
    await check({ issuerId: 'another-cluster', perSweep: 100 }).check();
    await check({ namespaces: ['elsewhere'], perSweep: 100 }).check();
    await check({ perSweep: 0 }).check();
    expect(asked).toEqual([]);
  });
});
