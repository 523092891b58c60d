// The key follows its Kubernetes Job: a Job annotated deploykey.dev/keys gets its key in Vault, its
// pod's service account reads it and clones with the real git/ssh client, and the Job's end takes
// the key from the host and Vault.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitSshCommand, runGit, writeClientKey, writeKnownHosts } from '../support/git-client.ts';
import { type ControllerHarness, startControllerHarness } from '../support/kubernetes-controller.ts';

let k: ControllerHarness;
let root: string;

beforeAll(async () => {
  k = await startControllerHarness();
  root = await mkdtemp(join(tmpdir(), 'k8s-controller-'));
  // The 2 s bounds are for a running service: the first key of a fresh process also opens its
  // connections to the host, Vault and the Kubernetes API, which the warm-up Job pays for.
  await annotatedJob('warm-up');
  await keyOfJob('warm-up', 20_000);
}, 60_000);
afterAll(async () => {
  await k?.close();
  await rm(root, { recursive: true, force: true });
});

const within = async <T>(ms: number, what: string, probe: () => Promise<T | undefined>): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

async function annotatedJob(name: string, serviceAccountName = 'trainer', backoffLimit?: number) {
  k.harness.standIns.kubernetes.cluster.createJob({
    namespace: 'training',
    name,
    serviceAccountName,
    annotations: { 'deploykey.dev/keys': 'github:acme/models', 'deploykey.dev/ttl': '2h' },
    ...(backoffLimit === undefined ? {} : { backoffLimit }),
  });
}

/** The key a Job got: its id from the Job's annotation, and its row once active. */
async function keyOfJob(name: string, withinMs = 2_000) {
  const started = Date.now();
  const row = await within(withinMs, `${name}'s key to be in Vault`, async () => {
    const ids = (await k.readJob('training', name)).metadata?.annotations?.['deploykey.dev/key-ids'];
    if (!ids) return undefined;
    const found = await k.harness.service.container.keys.findById(JSON.parse(ids)['github:acme/models']);
    return found?.status === 'active' ? found : undefined;
  });
  return { row, tookMs: Date.now() - started };
}

/** The pod's side: log in to Vault with the key's role, read the key, clone with it. */
async function podClones(row: { id: string; vault_path: string | null }) {
  const secret = await k.readAsPod('training', 'trainer', `deploykey-${row.id}`, row.vault_path ?? '');
  const keyPath = await writeClientKey(root, secret['ssh-privatekey'] as string);
  const knownHosts = await writeKnownHosts(root, [secret.known_hosts as string]);
  const sshCommand = gitSshCommand(keyPath, knownHosts);
  const clone = () => {
    const dir = join(root, `clone-${row.id}-${Date.now()}`);
    return runGit(['clone', k.harness.standIns.github.ssh.cloneUrl('acme/models'), dir], { sshCommand });
  };
  expect((await clone()).code).toBe(0);
  return clone;
}

async function expectGoneWithin2s(
  row: { id: string; vault_path: string | null },
  clone: () => ReturnType<typeof runGit>,
  reason: 'job-ended' | 'job-deleted' = 'job-ended',
) {
  const revoked = await within(2_000, 'the key to be revoked', async () => {
    const now = await k.harness.service.container.keys.findById(row.id);
    return now?.status === 'revoked' ? now : undefined;
  });
  expect(revoked.revoke_reason).toBe(reason);
  await expect(
    k.readAsPod('training', 'trainer', `deploykey-${row.id}`, row.vault_path ?? ''),
  ).rejects.toThrow();
  const refused = await clone();
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/Permission denied|publickey/);
}

describe('the Kubernetes controller', () => {
  it('issues an annotated Job its key, the pod clones with it, and completing the Job revokes it', async () => {
    await annotatedJob('train-complete');
    const { row, tookMs } = await keyOfJob('train-complete');
    expect(tookMs).toBeLessThanOrEqual(2_000);
    expect(row.delivery).toBe('vault');
    expect(row.job_id).toBe('training:train-complete');
    const job = await k.readJob('training', 'train-complete');
    expect(row.binding).toEqual({
      kind: 'kubernetes-job',
      namespace: 'training',
      name: 'train-complete',
      uid: job.metadata?.uid,
    });
    const clone = await podClones(row);
    const events = await k.core.listNamespacedEvent({ namespace: 'training' });
    expect(
      events.items.some((e) => e.involvedObject.name === 'train-complete' && e.reason === 'DeployKeysIssued'),
    ).toBe(true);

    await k.harness.standIns.kubernetes.cluster.endJob('training', 'train-complete', 'complete');
    await expectGoneWithin2s(row, clone);
  });

  for (const outcome of ['failed', 'oom-killed', 'deleted'] as const) {
    it(`revokes the key when the Job ends ${outcome}`, async () => {
      const name = `train-${outcome}`;
      await annotatedJob(name, 'trainer', outcome === 'oom-killed' ? 0 : undefined);
      const { row } = await keyOfJob(name);
      const clone = await podClones(row);
      await k.harness.standIns.kubernetes.cluster.endJob('training', name, outcome);
      await expectGoneWithin2s(row, clone, outcome === 'deleted' ? 'job-deleted' : 'job-ended');
    });
  }

  it('gives a service account the policy does not allow no key, and says why on the Job', async () => {
    await annotatedJob('train-denied', 'intruder');
    const denied = await within(
      2_000,
      'the denial annotation',
      async () =>
        (await k.readJob('training', 'train-denied')).metadata?.annotations?.['deploykey.dev/denied'],
    );
    expect(denied).toMatch(/no-matching-rule/);
    const events = await k.core.listNamespacedEvent({ namespace: 'training' });
    expect(
      events.items.some((e) => e.involvedObject.name === 'train-denied' && e.reason === 'DeployKeysDenied'),
    ).toBe(true);
    const keys = await k.harness.service.container.keys.liveKeysOfJob('training:train-denied');
    expect(keys).toHaveLength(0);
    const audit = await k.harness.service.container.db.pool.query(
      "SELECT details FROM audit_events WHERE action = 'policy.denied' AND details->'job'->>'name' = 'train-denied'",
    );
    expect(audit.rows).toHaveLength(1);
  });
});
