// A signed job-end webhook reaching the running service revokes the keys bound to that job: gone
// from the host and Vault, audited with the conclusion and delivery id, and nobody else's key.
import { createHmac, randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyBinding } from '../../src/keys/binding.ts';
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

  it('a GitLab job that failed revokes its key', async () => {
    const row = await issueBound('gitlab', 'hook-gitlab', {
      kind: 'gitlab-ci',
      host: 'gitlab',
      project: 'acme/models',
      jobId: '4411',
      pipelineId: '881',
    });
    const body = JSON.stringify({
      object_kind: 'build',
      build_id: 4411,
      build_status: 'failed',
      pipeline_id: 881,
      project: { path_with_namespace: 'acme/models' },
    });
    const response = await post('/v1/webhooks/gitlab/gitlab', body, {
      'x-gitlab-event': 'Job Hook',
      'x-gitlab-token': GITLAB_TOKEN,
      'idempotency-key': randomUUID(),
    });
    expect(await response.json()).toEqual({ outcome: 'ended', revoked: 1 });
    const view = await revokedView(harness, row.id, 5_000);
    expect(view.revokeReason).toBe('job-ended');
    expect(hostHasKey(harness, { id: row.id, provider: 'gitlab', repository: 'acme/models' })).toBe(false);
  });
});
