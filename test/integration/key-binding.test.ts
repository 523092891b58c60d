// A key bound to a platform job is revoked when that job ends: the end finds exactly the keys
// bound to it, revokes them through the usual path with the reason and what ended it audited,
// and leaves every other key alone.
import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindingRef } from '../../src/keys/binding.ts';
import { SYSTEM_ACTOR } from '../../src/keys/caller.ts';
import { createKeyService } from '../../src/keys/key.service.ts';
import type { KeyBinding } from '../../src/model/schemas.ts';
import { auditDetails, hostHasKey, revokedView, vaultMetadataStatus } from '../support/revoke-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.close();
});

async function issueBound(jobId: string, binding: KeyBinding) {
  const { container } = harness.service;
  const request = { headers: { authorization: `Bearer ${harness.token}` } } as unknown as FastifyRequest;
  const caller = await container.authenticate(request);
  const issued = await container.keyService.issue(caller, {
    provider: 'github',
    repository: 'acme/models',
    jobId,
    ttlSeconds: 3_600,
    binding,
  });
  return issued.row;
}

const run = (runId: string): KeyBinding => ({
  kind: 'github-actions',
  host: 'github',
  repository: 'Acme/Trainer',
  runId,
  runAttempt: '1',
  checkRunId: `${runId}0`,
});

describe('keys bound to a platform job', () => {
  it('shows the binding on the key', async () => {
    const row = await issueBound('bound-view', run('501'));
    const view = await harness.api('GET', `/v1/keys/${row.id}`);
    expect(view.status).toBe(200);
    expect(view.body.binding).toEqual(run('501'));
    const unbound = await harness.api('POST', '/v1/keys', {
      body: { provider: 'github', repository: 'acme/datasets', jobId: 'unbound', ttlSeconds: 600 },
    });
    expect(unbound.status, unbound.text).toBe(201);
    expect(unbound.body.binding).toBeNull();
  });

  it("revokes the ended run's keys once, audited with what ended them, and no other key", async () => {
    const ended = await issueBound('bound-ended', run('601'));
    const bystander = await issueBound('bound-bystander', run('602'));
    const { keyService } = harness.service.container;

    const ref = bindingRef.githubRun('github', 'acme/trainer', '601', '1');
    const affected = await keyService.revokeBound(ref, 'job-ended', SYSTEM_ACTOR, {
      conclusion: 'cancelled',
      deliveryId: 'delivery-1',
    });
    expect(affected.map((row) => row.id)).toEqual([ended.id]);

    const view = await revokedView(harness, ended.id);
    expect(view.revokeReason).toBe('job-ended');
    expect(hostHasKey(harness, { id: ended.id, provider: 'github', repository: 'acme/models' })).toBe(false);
    expect(await vaultMetadataStatus(harness, view)).toBe(404);
    expect(await auditDetails(harness, ended.id, 'key.revoke_requested')).toEqual([
      { reason: 'job-ended', conclusion: 'cancelled', deliveryId: 'delivery-1' },
    ]);

    expect(await keyService.revokeBound(ref, 'job-ended', SYSTEM_ACTOR, {})).toEqual([]);
    expect(await auditDetails(harness, ended.id, 'key.revoke_requested')).toHaveLength(1);
    const other = await harness.api('GET', `/v1/keys/${bystander.id}`);
    expect(other.body.status).toBe('active');
  });

  it('counts a key once when its run and its job end at the same moment', async () => {
    const row = await issueBound('bound-both-ends', run('801'));
    const c = harness.service.container;
    // Both ends read the key while it is still active, then race to move it: the worst interleaving.
    let arrived = 0;
    let bothRead: () => void = () => {};
    const read = new Promise<void>((resolve) => {
      bothRead = resolve;
    });
    const keys = {
      ...c.keys,
      liveKeysBoundTo: async (ref: string) => {
        const rows = await c.keys.liveKeysBoundTo(ref);
        if (++arrived === 2) bothRead();
        await read;
        return rows;
      },
    };
    const racing = createKeyService({
      keys,
      hosts: c.hosts,
      secrets: c.secrets,
      queue: c.revokeQueue,
      clock: c.clock,
      metrics: c.metrics,
      logger: c.logger,
      systemActor: SYSTEM_ACTOR,
      authorize: async () => ({ allowed: false, reason: 'test', message: 'not used' }),
      ownersOf: () => [],
      settings: { ttl: c.config.keys, pendingTimeoutSeconds: 60, kubernetesAudience: 'unused' },
    });
    const [byRun, byJob] = await Promise.all([
      racing.revokeBound(
        bindingRef.githubRun('github', 'acme/trainer', '801', '1'),
        'job-ended',
        SYSTEM_ACTOR,
        {},
      ),
      racing.revokeBound(
        bindingRef.githubJob('github', 'acme/trainer', '8010'),
        'job-ended',
        SYSTEM_ACTOR,
        {},
      ),
    ]);

    expect([...byRun, ...byJob].map((moved) => moved.id)).toEqual([row.id]);
    await revokedView(harness, row.id);
    expect(await auditDetails(harness, row.id, 'key.revoke_requested')).toHaveLength(1);
  });

  it('finds a key by its job as well as by its run', async () => {
    const row = await issueBound('bound-by-job', run('701'));
    const ref = bindingRef.githubJob('github', 'ACME/trainer', '7010');
    const affected = await harness.service.container.keyService.revokeBound(
      ref,
      'job-deleted',
      SYSTEM_ACTOR,
      {},
    );
    expect(affected.map((r) => r.id)).toEqual([row.id]);
    expect((await revokedView(harness, row.id)).revokeReason).toBe('job-deleted');
  });

  it('lists live bound keys of one kind for the sweeps, oldest first', async () => {
    const { keys, clock } = harness.service.container;
    const live = await keys.liveBound('github-actions', new Date(clock().getTime() + 1_000), 100);
    const ids = live.map((row) => row.id);
    expect(ids.length).toBeGreaterThan(0);
    for (const row of live) expect(['pending', 'active']).toContain(row.status);
    expect(await keys.liveBound('gitlab-ci', new Date(clock().getTime() + 1_000), 100)).toEqual([]);
  });
});
