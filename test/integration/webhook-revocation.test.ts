// A signed job-end webhook reaching the running service revokes the keys bound to that job: gone
// from the host and Vault, audited with the conclusion and delivery id, and nobody else's key.
import { createHmac, randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyBinding } from '../../src/model/schemas.ts';
import { auditDetails, hostHasKey, revokedView, vaultMetadataStatus } from '../support/revoke-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

const GITHUB_SECRET = 'github-webhook-secret';
const GITLAB_TOKEN = 'gitlab-webhook-token';
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({
    overrides: {
      env: { DEPLOYKEY_WEBHOOK_GITHUB_SECRET: GITHUB_SECRET, DEPLOYKEY_WEBHOOK_GITLAB_SECRET: GITLAB_TOKEN },
    },
  });
});
afterAll(async () => {
  await harness?.close();
});

async function issueBound(provider: 'github' | 'gitlab', jobId: string, binding: KeyBinding) {
  const { container } = harness.service;
  const request = { headers: { authorization: `Bearer ${harness.token}` } } as unknown as FastifyRequest;
  const caller = await container.authenticate(request);
  const issued = await container.keyService.issue(caller, {
    provider,
    repository: 'acme/models',
    jobId,
    ttlSeconds: 3_600,
    binding,
  });
  return issued.row;
}

const gitlabJob = (jobId: string, pipelineId: string): KeyBinding => ({
  kind: 'gitlab-ci',
  host: 'gitlab',
  project: 'acme/models',
  jobId,
  pipelineId,
});

const post = (path: string, body: string, headers: Record<string, string>) =>
  fetch(`${harness.service.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });

describe('job-end webhooks against the running service', () => {
  it('a cancelled GitHub run revokes its key from host and Vault, and only its key', async () => {
    const binding = (runId: string): KeyBinding => ({
      kind: 'github-actions',
      host: 'github',
      repository: 'acme/models',
      runId,
      runAttempt: '1',
    });
    const ended = await issueBound('github', 'hook-ended', binding('9001'));
    const bystander = await issueBound('github', 'hook-bystander', binding('9002'));
    const body = JSON.stringify({
      action: 'completed',
      workflow_run: { id: 9001, run_attempt: 1, status: 'completed', conclusion: 'cancelled' },
      repository: { full_name: 'acme/models' },
    });
    const signature = `sha256=${createHmac('sha256', GITHUB_SECRET).update(body).digest('hex')}`;
    const deliveryId = randomUUID();
    const response = await post('/v1/webhooks/github/github', body, {
      'x-github-event': 'workflow_run',
      'x-github-delivery': deliveryId,
      'x-hub-signature-256': signature,
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ outcome: 'ended', revoked: 1 });

    const view = await revokedView(harness, ended.id, 5_000);
    expect(view.revokeReason).toBe('job-ended');
    expect(hostHasKey(harness, { id: ended.id, provider: 'github', repository: 'acme/models' })).toBe(false);
    expect(await vaultMetadataStatus(harness, view)).toBe(404);
    expect(await auditDetails(harness, ended.id, 'key.revoke_requested')).toEqual([
      { reason: 'job-ended', conclusion: 'cancelled', deliveryId, event: 'workflow_run' },
    ]);
    expect((await harness.api('GET', `/v1/keys/${bystander.id}`)).body.status).toBe('active');
  });

  it("a GitLab job that timed out revokes its key, audited with GitLab's failure reason", async () => {
    const row = await issueBound('gitlab', 'hook-gitlab', gitlabJob('4411', '881'));
    const body = JSON.stringify({
      object_kind: 'build',
      build_id: 4411,
      build_status: 'failed',
      build_failure_reason: 'job_execution_timeout',
      pipeline_id: 881,
      project: { path_with_namespace: 'acme/models' },
    });
    const deliveryId = randomUUID();
    const response = await post('/v1/webhooks/gitlab/gitlab', body, {
      'x-gitlab-event': 'Job Hook',
      'x-gitlab-token': GITLAB_TOKEN,
      'idempotency-key': deliveryId,
    });
    expect(await response.json()).toEqual({ outcome: 'ended', revoked: 1 });
    const view = await revokedView(harness, row.id, 5_000);
    expect(view.revokeReason).toBe('job-ended');
    expect(hostHasKey(harness, { id: row.id, provider: 'gitlab', repository: 'acme/models' })).toBe(false);
    expect(await auditDetails(harness, row.id, 'key.revoke_requested')).toEqual([
      {
        reason: 'job-ended',
        conclusion: 'failed',
        failureReason: 'job_execution_timeout',
        deliveryId,
        event: 'Job Hook',
      },
    ]);
  });

  it('a job and its pipeline ending together end the key once: one answer ended, the other no-keys', async () => {
    const row = await issueBound('gitlab', 'hook-gitlab-both', gitlabJob('4521', '891'));
    const project = { path_with_namespace: 'acme/models' };
    const jobBody = {
      object_kind: 'build',
      build_id: 4521,
      build_status: 'failed',
      pipeline_id: 891,
      project,
    };
    const pipelineBody = {
      object_kind: 'pipeline',
      object_attributes: { id: 891, status: 'failed' },
      project,
    };
    const send = (event: string, body: object) =>
      post('/v1/webhooks/gitlab/gitlab', JSON.stringify(body), {
        'x-gitlab-event': event,
        'x-gitlab-token': GITLAB_TOKEN,
        'idempotency-key': randomUUID(),
      }).then((response) => response.json());
    const endedBefore = await deliveriesCounted('ended');
    const noKeysBefore = await deliveriesCounted('no-keys');

    const answers = await Promise.all([send('Job Hook', jobBody), send('Pipeline Hook', pipelineBody)]);

    expect(answers).toHaveLength(2);
    expect(answers).toContainEqual({ outcome: 'ended', revoked: 1 });
    expect(answers).toContainEqual({ outcome: 'no-keys', revoked: 0 });
    expect(await deliveriesCounted('ended')).toBe(endedBefore + 1);
    expect(await deliveriesCounted('no-keys')).toBe(noKeysBefore + 1);
    await revokedView(harness, row.id, 5_000);
    expect(await auditDetails(harness, row.id, 'key.revoke_requested')).toHaveLength(1);
  });
});

/** GitLab deliveries counted with this outcome so far, over every event. */
async function deliveriesCounted(outcome: string): Promise<number> {
  const metric = await harness.service.container.metrics.registry
    .getSingleMetric('deploykey_webhook_deliveries_total')
    ?.get();
  return (metric?.values ?? [])
    .filter(({ labels }) => labels.platform === 'gitlab' && labels.outcome === outcome)
    .reduce((sum, { value }) => sum + value, 0);
}
