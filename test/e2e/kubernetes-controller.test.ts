// The key follows its Kubernetes Job: a Job annotated deploykey.dev/keys gets its key in Vault, its
// pod's service account reads it and clones with the real git/ssh client, and the Job's end takes
// the key from the host and Vault.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import vault from 'node-vault';
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
  annotatedJob('warm-up');
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

// What a Job's manifest writes for the Vault Agent injector, in the documented formats (README,
// "Kubernetes Jobs"): the role and each key's path follow from the namespace, the Job's name and
// the deploykey.dev/keys entries alone, before the controller has issued anything.
const roleOfJob = (name: string) => `deploykey-job.training.${name}`;
const secretOfJob = (name: string, entry: string) =>
  `secret/data/deploy-keys/kubernetes/training/${name}/${entry.replace(':', '/').toLowerCase()}`;
const fileOf = (entry: string) => entry.replace(/[:/]/g, '-').toLowerCase();

function annotatedJob(
  name: string,
  options: { serviceAccountName?: string; backoffLimit?: number; keys?: string[] } = {},
) {
  const keys = options.keys ?? ['github:acme/models'];
  const injector = Object.fromEntries(
    keys.map((entry) => [
      `vault.hashicorp.com/agent-inject-secret-${fileOf(entry)}`,
      secretOfJob(name, entry),
    ]),
  );
  k.harness.standIns.kubernetes.cluster.createJob({
    namespace: 'training',
    name,
    serviceAccountName: options.serviceAccountName ?? 'trainer',
    annotations: { 'deploykey.dev/keys': keys.join(', '), 'deploykey.dev/ttl': '2h' },
    podAnnotations: {
      'vault.hashicorp.com/agent-inject': 'true',
      'vault.hashicorp.com/agent-pre-populate-only': 'true',
      'vault.hashicorp.com/role': roleOfJob(name),
      ...injector,
    },
    ...(options.backoffLimit === undefined ? {} : { backoffLimit: options.backoffLimit }),
  });
}

/** The key a Job got for `entry`: its id from the Job's annotation, and its row once active. */
async function keyOfJob(name: string, withinMs = 2_000, entry = 'github:acme/models') {
  const started = Date.now();
  const row = await within(withinMs, `${name}'s key to be in Vault`, async () => {
    const ids = (await k.readJob('training', name)).metadata?.annotations?.['deploykey.dev/key-ids'];
    if (!ids) return undefined;
    const found = await k.harness.service.container.keys.findById(JSON.parse(ids)[entry]);
    return found?.status === 'active' ? found : undefined;
  });
  return { row, tookMs: Date.now() - started };
}

/** Clones `repository` from `host` with the key the injector rendered for it. */
async function clonerWith(secret: Record<string, string>, host: 'github' | 'gitlab', repository: string) {
  const keyPath = await writeClientKey(root, secret['ssh-privatekey'] as string);
  const knownHosts = await writeKnownHosts(root, [secret.known_hosts as string]);
  const sshCommand = gitSshCommand(keyPath, knownHosts);
  return () => {
    const dir = join(root, `clone-${host}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    return runGit(['clone', k.harness.standIns[host].ssh.cloneUrl(repository), dir], { sshCommand });
  };
}

/** The pod's side, as the injector sets it up from the manifest: log in, read the key, clone with it. */
async function podClones(name: string) {
  const pod = await k.podOf('training', name);
  const files = await k.injectorReads(pod);
  const clone = await clonerWith(files[fileOf('github:acme/models')]!, 'github', 'acme/models');
  expect((await clone()).code).toBe(0);
  return { pod, clone };
}

async function expectRefused(clone: () => ReturnType<typeof runGit>) {
  const refused = await clone();
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/Permission denied|publickey/);
}

const vaultRoot = () =>
  vault({ endpoint: k.harness.standIns.vault.addr, token: k.harness.standIns.vault.token });

/** The Job's role is gone (the injector's login is refused), and so is every secret it named. */
async function expectJobAccessGone(name: string, pod: V1Pod, entries = ['github:acme/models']) {
  await expect(k.injectorReads(pod)).rejects.toMatchObject({ response: { statusCode: 400 } });
  for (const entry of entries) {
    await expect(vaultRoot().read(secretOfJob(name, entry))).rejects.toMatchObject({
      response: { statusCode: 404 },
    });
  }
  await expect(vaultRoot().read(`sys/policies/acl/${roleOfJob(name)}`)).rejects.toMatchObject({
    response: { statusCode: 404 },
  });
}

const revokedWithin2s = (id: string) =>
  within(2_000, `key ${id} to be revoked`, async () => {
    const now = await k.harness.service.container.keys.findById(id);
    return now?.status === 'revoked' ? now : undefined;
  });

async function expectGoneWithin2s(
  row: { id: string },
  name: string,
  { pod, clone }: Awaited<ReturnType<typeof podClones>>,
  reason: 'job-ended' | 'job-deleted' = 'job-ended',
) {
  const revoked = await revokedWithin2s(row.id);
  expect(revoked.revoke_reason).toBe(reason);
  await expectJobAccessGone(name, pod);
  await expectRefused(clone);
}

describe('the Kubernetes controller', () => {
  it('issues an annotated Job its key where its manifest said, the pod clones with it, and completing the Job revokes it', async () => {
    annotatedJob('train-complete');
    const { row, tookMs } = await keyOfJob('train-complete');
    expect(tookMs).toBeLessThanOrEqual(2_000);
    expect(row.delivery).toBe('vault');
    expect(row.job_id).toBe('training:train-complete');
    expect(`secret/data/${row.vault_path}`).toBe(secretOfJob('train-complete', 'github:acme/models'));
    const shown = await k.harness.api('GET', `/v1/keys/${row.id}`, { token: k.harness.tokens.auditor! });
    expect(shown.body.vault).toEqual({
      mount: 'secret',
      path: row.vault_path,
      role: roleOfJob('train-complete'),
    });
    const job = await k.readJob('training', 'train-complete');
    expect(row.binding).toEqual({
      kind: 'kubernetes-job',
      namespace: 'training',
      name: 'train-complete',
      uid: job.metadata?.uid,
    });
    const pod = await podClones('train-complete');
    const events = await k.core.listNamespacedEvent({ namespace: 'training' });
    expect(
      events.items.some((e) => e.involvedObject.name === 'train-complete' && e.reason === 'DeployKeysIssued'),
    ).toBe(true);

    await k.harness.standIns.kubernetes.cluster.endJob('training', 'train-complete', 'complete');
    await expectGoneWithin2s(row, 'train-complete', pod);
  });

  for (const outcome of ['failed', 'oom-killed', 'deleted'] as const) {
    it(`revokes the key when the Job ends ${outcome}`, async () => {
      const name = `train-${outcome}`;
      annotatedJob(name, outcome === 'oom-killed' ? { backoffLimit: 0 } : {});
      const { row } = await keyOfJob(name);
      const pod = await podClones(name);
      await k.harness.standIns.kubernetes.cluster.endJob('training', name, outcome);
      await expectGoneWithin2s(row, name, pod, outcome === 'deleted' ? 'job-deleted' : 'job-ended');
    });
  }

  it('gives a two-repository Job one role for both keys; revoking one leaves the other; the Job’s end takes the role', async () => {
    const name = 'train-two';
    const [models, datasets] = ['github:acme/models', 'gitlab:acme/datasets'] as const;
    annotatedJob(name, { keys: [models, datasets] });
    const modelsKey = (await keyOfJob(name, 2_000, models)).row;
    const datasetsKey = (await keyOfJob(name, 2_000, datasets)).row;
    const pod = await k.podOf('training', name);
    const files = await k.injectorReads(pod);
    const cloneModels = await clonerWith(files[fileOf(models)]!, 'github', 'acme/models');
    const cloneDatasets = await clonerWith(files[fileOf(datasets)]!, 'gitlab', 'acme/datasets');
    expect((await cloneModels()).code).toBe(0);
    expect((await cloneDatasets()).code).toBe(0);

    const asked = await k.harness.api('DELETE', `/v1/keys/${modelsKey.id}`, {
      token: k.harness.tokens.admin!,
    });
    expect(asked.status).toBe(202);
    expect((await revokedWithin2s(modelsKey.id)).revoke_reason).toBe('manual');
    await expectRefused(cloneModels);
    // The pod logs in again with the Job's role and still reads the other key; the revoked one is gone.
    const after = await k.injectorReads(pod);
    expect(after[fileOf(models)]).toBeUndefined();
    expect(after[fileOf(datasets)]?.['ssh-privatekey']).toBe(files[fileOf(datasets)]?.['ssh-privatekey']);
    expect((await cloneDatasets()).code).toBe(0);

    await k.harness.standIns.kubernetes.cluster.endJob('training', name, 'complete');
    expect((await revokedWithin2s(datasetsKey.id)).revoke_reason).toBe('job-ended');
    await expectJobAccessGone(name, pod, [models, datasets]);
    await expectRefused(cloneDatasets);
  });

  it('gives a service account the policy does not allow no key, and says why on the Job', async () => {
    annotatedJob('train-denied', { serviceAccountName: 'intruder' });
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
