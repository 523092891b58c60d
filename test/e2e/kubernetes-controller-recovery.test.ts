// What the controller misses while it is down or its watch is cut, it finds on the next list:
// ended and deleted Jobs' keys are revoked right after a restart, after a dropped watch and
// after a 410; a watch that stalls without ending is outrun by the sweep, which asks the API;
// and of two replicas only the lock holder acts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubernetesController } from '../../src/kubernetes/controller.ts';
import {
  type ControllerHarness,
  revokedWithin as revokedWithinIn,
  startControllerHarness,
  startJobWithKey as startJobWithKeyIn,
} from '../support/kubernetes-controller.ts';

let k: ControllerHarness;

beforeAll(async () => {
  k = await startControllerHarness();
}, 60_000);
afterAll(() => k?.close());

const cluster = () => k.harness.standIns.kubernetes.cluster;
const keys = () => k.harness.service.container.keys;
const startJobWithKey = (name: string) => startJobWithKeyIn(k.harness, name);
const revokedWithin = (ms: number, ids: string[]) => revokedWithinIn(k.harness, ms, ids);

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

    // The API server's answer to a version it no longer holds: an ERROR event with a 410 Status in the
    // stream. Only a fresh list then shows what changed; one Job ends as the watch is cut, one after.
    const standIn = k.harness.standIns.kubernetes;
    const gone = [await startJobWithKey('gone-410-complete'), await startJobWithKey('gone-410-deleted')];
    const expiredBefore = standIn.expiredWatches();
    const ending = cluster().endJob('training', 'gone-410-complete', 'complete');
    standIn.dropWatches('expire');
    await ending;
    await cluster().endJob('training', 'gone-410-deleted', 'deleted');
    await revokedWithin(3_000, gone);
    expect(standIn.expiredWatches()).toBeGreaterThan(expiredBefore);
    const reasons = await Promise.all(gone.map(async (id) => (await keys().findById(id))?.revoke_reason));
    expect(reasons).toEqual(['job-ended', 'job-deleted']);
  });

  it('revokes within a sweep period a Job that ended while its watch stayed connected but stalled', async () => {
    const standIn = k.harness.standIns.kubernetes;
    const id = await startJobWithKey('stalled-watch');
    expect(standIn.stallWatches()).toBeGreaterThan(0);
    try {
      await cluster().endJob('training', 'stalled-watch', 'complete');
      // The sweep period here is 1 s; the bound is generous for a loaded machine.
      await revokedWithin(10_000, [id]);
      expect((await keys().findById(id))?.revoke_reason).toBe('job-ended');
      // Nothing told the controller: its watch is still open, still the stalled one, never re-made.
      expect(standIn.openWatches()).toBeGreaterThan(0);
      expect(standIn.stallWatches()).toBe(0);
    } finally {
      // A closed stream lets the informer resume from its version, for the tests after this one.
      standIn.dropWatches('close');
    }
  });

  it('tries a Job again whose issue failed because Vault did not answer, until it has its key', async () => {
    const vaultFaults = k.harness.standIns.vault.faults;
    vaultFaults.add({ status: 503, probability: 1 });
    const keyed = startJobWithKeyIn(k.harness, 'vault-down', {}, 15_000);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const job = await k.readJob('training', 'vault-down');
      expect(job.metadata?.annotations?.['deploykey.dev/key-ids']).toBeUndefined();
    } finally {
      vaultFaults.clear();
    }
    const id = await keyed;
    expect(await keys().findById(id)).toMatchObject({ status: 'active', delivery: 'vault' });
    await cluster().endJob('training', 'vault-down', 'complete');
    await revokedWithin(2_000, [id]);
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
