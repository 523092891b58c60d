// What the controller misses while it is down or its watch is cut, it finds on the next list:
// ended and deleted Jobs' keys are revoked right after a restart, after a dropped watch and
// after a 410; and of two replicas only the lock holder acts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubernetesController } from '../../src/kubernetes/controller.ts';
import { type ControllerHarness, startControllerHarness } from '../support/kubernetes-controller.ts';

let k: ControllerHarness;

beforeAll(async () => {
  k = await startControllerHarness();
}, 60_000);
afterAll(() => k?.close());

const within = async <T>(ms: number, what: string, probe: () => Promise<T | undefined>): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

const cluster = () => k.harness.standIns.kubernetes.cluster;
const keys = () => k.harness.service.container.keys;

async function startJobWithKey(name: string): Promise<string> {
  cluster().createJob({
    namespace: 'training',
    name,
    serviceAccountName: 'trainer',
    annotations: { 'deploykey.dev/keys': 'github:acme/models' },
  });
  return within(3_000, `${name}'s key`, async () => {
    const ids = (await k.readJob('training', name)).metadata?.annotations?.['deploykey.dev/key-ids'];
    const id = ids ? (JSON.parse(ids)['github:acme/models'] as string) : undefined;
    return id && (await keys().findById(id))?.status === 'active' ? id : undefined;
  });
}

const revokedWithin = (ms: number, ids: string[]) =>
  within(ms, 'every key to be revoked', async () => {
    const rows = await Promise.all(ids.map((id) => keys().findById(id)));
    return rows.every((row) => row?.status === 'revoked') ? true : undefined;
  });

describe('the Kubernetes controller recovering', () => {
  it('revokes the keys of Jobs that ended or were deleted while no controller ran, right after restart', async () => {
    const ids = [await startJobWithKey('down-complete'), await startJobWithKey('down-deleted')];
    const running = await startJobWithKey('down-running');
    await k.controller.stop();
    await cluster().endJob('training', 'down-complete', 'complete');
    await cluster().endJob('training', 'down-deleted', 'deleted');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await keys().findById(ids[0] as string))?.status).toBe('active');

    const restarted = Date.now();
    k.controller = startKubernetesController(k.harness.service.container);
    await k.controller.leading;
    await revokedWithin(2_000, ids);
    expect(Date.now() - restarted).toBeLessThan(2_500);
    expect((await keys().findById(running))?.status).toBe('active');
  });

  it('misses nothing when the stand-in drops the watch, or answers 410 for the version it resumes from', async () => {
    const dropped = await startJobWithKey('dropped-watch');
    await expect.poll(() => k.harness.standIns.kubernetes.openWatches()).toBeGreaterThan(0);
    k.harness.standIns.kubernetes.dropWatches('reset');
    await cluster().endJob('training', 'dropped-watch', 'failed');
    await revokedWithin(3_000, [dropped]);

    const gone = await startJobWithKey('gone-410');
    k.harness.standIns.kubernetes.dropWatches('reset');
    await cluster().endJob('training', 'gone-410', 'deleted');
    cluster().store.compact();
    await revokedWithin(3_000, [gone]);
  });

  it('lets exactly one of two replicas act, and hands over when it stops', async () => {
    const standby = startKubernetesController(k.harness.service.container);
    let standbyLeads = false;
    void standby.leading.then(() => {
      standbyLeads = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(standbyLeads).toBe(false);

    await k.controller.stop();
    const handedOver = Date.now();
    await standby.leading;
    expect(Date.now() - handedOver).toBeLessThanOrEqual(1_500);
    k.controller = standby;
    const id = await startJobWithKey('after-handover');
    await cluster().endJob('training', 'after-handover', 'complete');
    await revokedWithin(2_000, [id]);
  });
});
