import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.close();
});

it('issues a key on GitHub and revokes it when the job completes', async () => {
  const issued = await harness.api('POST', '/v1/keys', {
    body: { provider: 'github', repository: 'acme/models', jobId: 'smoke-1', ttlSeconds: 600 },
  });
  expect(issued.status).toBe(201);
  const repo = harness.standIns.github.state.findRepository('acme/models')!;
  expect(harness.standIns.github.state.listKeys(repo.id)).toHaveLength(1);
  const done = await harness.api('POST', '/v1/jobs/smoke-1/complete');
  expect(done.status).toBe(202);
  await eventually(
    async () => (await harness.api('GET', `/v1/keys/${issued.body.id}`)).body.status === 'revoked',
  );
  expect(harness.standIns.github.state.listKeys(repo.id)).toHaveLength(0);
});
