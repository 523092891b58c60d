// Completing a job while one of its keys is still being issued must not let that key live on.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.close();
});

it('revokes a key whose job completed while the key was being registered at the host', async () => {
  harness.standIns.github.api.faults.add({
    method: 'POST',
    pathPrefix: '/repos/',
    latencyMs: 1_500,
    count: 1,
  });
  const issuing = harness.api('POST', '/v1/keys', {
    body: { provider: 'github', repository: 'acme/models', jobId: 'racing-job', ttlSeconds: 600 },
  });
  const pending = await eventually(
    async () => {
      const rows = await harness.database.db
        .selectFrom('deploy_keys')
        .selectAll()
        .where('job_id', '=', 'racing-job')
        .execute();
      return rows[0]?.status === 'pending' ? rows[0] : undefined;
    },
    { what: 'the key to be pending' },
  );

  const completed = await harness.api('POST', '/v1/jobs/racing-job/complete');
  expect(completed.status).toBe(202);
  expect(completed.body.keys.map((k: { id: string }) => k.id)).toEqual([pending.id]);

  const issued = await issuing;
  expect(issued.status).toBe(201);
  expect(['revoking', 'revoked']).toContain(issued.body.status);

  await eventually(
    async () => (await harness.api('GET', `/v1/keys/${pending.id}`)).body.status === 'revoked',
    { what: 'the key to be revoked' },
  );
  const repository = harness.standIns.github.state.findRepository('acme/models')!;
  expect(harness.standIns.github.state.listKeys(repository.id)).toHaveLength(0);
  const revoked = await harness.api('GET', `/v1/keys/${pending.id}`);
  expect(revoked.body.revokeReason).toBe('job-completed');
});
