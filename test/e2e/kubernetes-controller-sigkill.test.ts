// The controller as the deployment runs it, a `deploykey serve --role controller` process, SIGKILLed
// while Jobs end, and restarted a minute later: nothing it held in memory is needed. Right after a new
// process leads, every Job that ended or vanished meanwhile has its keys revoked, from a fresh list and
// Postgres alone, and a Job that started meanwhile gets its key. With a standby replica running, the
// leader's death hands over within the standby's lock retry period.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceProcess, type ServiceProcess } from '../chaos/processes.ts';
import { controllerFileConfig, revokedWithin, startJobWithKey } from '../support/kubernetes-controller.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
let controller: ServiceProcess;
let logDir: string;

beforeAll(async () => {
  harness = await startHarness({ worker: true, fileConfig: controllerFileConfig });
  logDir = await mkdtemp(join(tmpdir(), 'k8s-controller-kill-'));
  controller = createServiceProcess({
    role: 'controller',
    env: { ...(await harness.childEnv()), LOG_LEVEL: 'info' },
    logDir,
    apiUrl: harness.service.url,
  });
  await controller.start();
}, 60_000);
afterAll(async () => {
  await controller?.stop();
  await harness?.close();
  await rm(logDir, { recursive: true, force: true });
});

const cluster = () => harness.standIns.kubernetes.cluster;
const statusOf = async (id: string) => (await harness.service.container.keys.findById(id))?.status;
/** The key ids the controller wrote on the Job, by `host:repository`; undefined before it acted. */
const keyIdsOf = async (name: string): Promise<Record<string, string> | undefined> => {
  const ids = cluster().store.get('jobs', 'training', name)?.metadata.annotations?.['deploykey.dev/key-ids'];
  return ids ? JSON.parse(ids) : undefined;
};
// The first key of a fresh process also opens its connections to the host, Vault and the API.
const FIRST_KEY_MS = 20_000;

describe('the Kubernetes controller process killed with SIGKILL', () => {
  it('restarted a minute later, revokes every ended Job’s keys within 2 s of leading, keeps the running Job’s key and keys the Job that started meanwhile', async () => {
    const names = ['kill-complete', 'kill-failed', 'down-complete', 'down-oom', 'down-deleted'];
    const ids: Record<string, string> = {};
    for (const name of names) {
      ids[name] = await startJobWithKey(harness, name, { backoffLimit: 0 }, FIRST_KEY_MS);
    }
    const running = await startJobWithKey(harness, 'still-running', {}, FIRST_KEY_MS);

    // Two Jobs end as the process dies: whatever it had begun for them dies with it.
    const ending = [
      cluster().endJob('training', 'kill-complete', 'complete'),
      cluster().endJob('training', 'kill-failed', 'failed'),
    ];
    await controller.kill();
    await Promise.all(ending);
    // The minute of downtime, spent as a cluster spends it: three more Jobs end at different
    // moments, and a new annotated Job starts that no controller has seen.
    const downFor = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await cluster().endJob('training', 'down-complete', 'complete');
    await downFor(20_000);
    await cluster().endJob('training', 'down-oom', 'oom-killed');
    await downFor(10_000);
    cluster().createJob({
      namespace: 'training',
      name: 'born-while-down',
      serviceAccountName: 'trainer',
      annotations: { 'deploykey.dev/keys': 'github:acme/models' },
    });
    await downFor(10_000);
    await cluster().endJob('training', 'down-deleted', 'deleted');
    await downFor(20_000);
    for (const name of ['down-complete', 'down-oom', 'down-deleted']) {
      expect(await statusOf(ids[name] as string), `${name}'s key before the restart`).toBe('active');
    }
    expect(await keyIdsOf('born-while-down')).toBeUndefined();

    await controller.start();
    const leading = Date.now();
    await revokedWithin(harness, 2_000, Object.values(ids));
    expect(Date.now() - leading).toBeLessThanOrEqual(2_000);
    expect(await statusOf(running)).toBe('active');
    const born = await eventually(() => keyIdsOf('born-while-down'), { timeoutMs: FIRST_KEY_MS });
    expect(await statusOf(born['github:acme/models'] as string)).toBe('active');

    const reasons = await Promise.all(
      names.map(
        async (name) => (await harness.service.container.keys.findById(ids[name] as string))?.revoke_reason,
      ),
    );
    expect(reasons).toEqual(['job-ended', 'job-ended', 'job-ended', 'job-ended', 'job-deleted']);
  }, 150_000);

  it('hands over to a standby replica within its lock retry period when the leader is SIGKILLed, and the standby revokes the Job that ended meanwhile', async () => {
    const standbyLogDir = await mkdtemp(join(tmpdir(), 'k8s-controller-standby-'));
    const standby = createServiceProcess({
      role: 'controller',
      env: { ...(await harness.childEnv()), LOG_LEVEL: 'info' },
      logDir: standbyLogDir,
      apiUrl: harness.service.url,
    });
    try {
      const standbyLeads = standby.start();
      await eventually(
        async () =>
          (await readFile(standby.logPath, 'utf8').catch(() => '')).includes('deploykey-rotator started'),
        { timeoutMs: FIRST_KEY_MS, what: 'the standby replica to start' },
      );
      const id = await startJobWithKey(harness, 'before-handover', {}, FIRST_KEY_MS);
      expect(standby.up(), 'the standby leads while the leader lives').toBe(false);

      await controller.kill();
      const killed = Date.now();
      await cluster().endJob('training', 'before-handover', 'complete');
      await standbyLeads;
      // controllerFileConfig's leaderRetrySeconds is 1: the next try after the leader's session ends.
      expect(Date.now() - killed).toBeLessThanOrEqual(2_000);
      await revokedWithin(harness, 2_000, [id]);
      expect(await harness.service.container.keys.findById(id)).toMatchObject({ revoke_reason: 'job-ended' });
    } finally {
      await standby.stop();
      await rm(standbyLogDir, { recursive: true, force: true });
    }
  }, 90_000);
});
