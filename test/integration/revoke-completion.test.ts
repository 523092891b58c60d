// Revokes a caller asks for: completing a job, deleting one key. Each takes effect on every host,
// exactly once, and only for the caller's own keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditCount,
  hostHasKey,
  type IssuedKey,
  issueKey,
  keyStatus,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

const LONG_TTL = 3_600;

let harness: Harness;
let otherToken: string;

beforeAll(async () => {
  harness = await startHarness();
  otherToken = harness.tokens['other-ci']!;
});
afterAll(async () => {
  await harness?.close();
});

const gone = async (key: IssuedKey) =>
  !hostHasKey(harness, key) && (await vaultMetadataStatus(harness, key)) === 404;

describe('POST /v1/jobs/:jobId/complete', () => {
  it('revokes every key of the job on both hosts, once, and a second completion changes nothing', async () => {
    const jobId = 'train-2024-07';
    const keys = [
      await issueKey(harness, { provider: 'github', repository: 'acme/models', jobId, ttlSeconds: LONG_TTL }),
      await issueKey(harness, {
        provider: 'github',
        repository: 'acme/datasets',
        jobId,
        ttlSeconds: LONG_TTL,
      }),
      await issueKey(harness, { provider: 'gitlab', repository: 'acme/models', jobId, ttlSeconds: LONG_TTL }),
    ];
    const bystander = await issueKey(harness, {
      provider: 'github',
      repository: 'acme/models',
      jobId: 'another-job',
      ttlSeconds: LONG_TTL,
    });
    for (const key of keys) expect(hostHasKey(harness, key)).toBe(true);

    const done = await harness.api('POST', `/v1/jobs/${jobId}/complete`);
    expect(done.status).toBe(202);
    expect(done.body.jobId).toBe(jobId);
    expect(done.body.keys.map((k: IssuedKey) => k.id).sort()).toEqual(keys.map((k) => k.id).sort());
    for (const view of done.body.keys) expect(['revoking', 'revoked']).toContain(view.status);

    for (const key of keys) {
      const view = await revokedView(harness, key.id);
      expect(view.revokeReason).toBe('job-completed');
      expect(view.revokedAt).not.toBeNull();
      expect(await gone(key)).toBe(true);
    }
    expect(await keyStatus(harness, bystander.id)).toBe('active');
    expect(hostHasKey(harness, bystander)).toBe(true);

    const again = await harness.api('POST', `/v1/jobs/${jobId}/complete`);
    expect(again.status).toBe(202);
    expect(again.body.keys).toEqual([]);
    for (const key of keys) {
      expect(await auditCount(harness, key.id, 'key.revoke_requested')).toBe(1);
      expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);
      expect(await keyStatus(harness, key.id)).toBe('revoked');
    }
  });

  it('answers 404 problem+json for a job that never had a key', async () => {
    const response = await harness.api('POST', '/v1/jobs/no-such-job/complete');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.body.status).toBe(404);
    expect(response.body.detail).toContain('no-such-job');
  });

  it("does not let another caller complete someone else's job", async () => {
    const key = await issueKey(harness, {
      provider: 'gitlab',
      repository: 'acme/datasets',
      jobId: 'private-job',
      ttlSeconds: LONG_TTL,
    });
    const response = await harness.api('POST', '/v1/jobs/private-job/complete', { token: otherToken });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await keyStatus(harness, key.id)).toBe('active');
    expect(hostHasKey(harness, key)).toBe(true);
    expect(await auditCount(harness, key.id, 'key.revoke_requested')).toBe(0);
  });
});

describe('DELETE /v1/keys/:id', () => {
  it('revokes the key with 202, and a second DELETE answers the current state without a new request', async () => {
    const key = await issueKey(harness, {
      provider: 'github',
      repository: 'acme/datasets',
      jobId: 'manual-revoke',
      ttlSeconds: LONG_TTL,
    });
    const first = await harness.api('DELETE', `/v1/keys/${key.id}`);
    expect(first.status).toBe(202);
    expect(first.body.id).toBe(key.id);
    expect(['revoking', 'revoked']).toContain(first.body.status);
    expect(first.body.revokeReason).toBe('manual');

    const view = await revokedView(harness, key.id);
    expect(view.revokeReason).toBe('manual');
    expect(await gone(key)).toBe(true);

    const second = await harness.api('DELETE', `/v1/keys/${key.id}`);
    expect(second.status).toBe(202);
    expect(second.body.status).toBe('revoked');
    expect(second.body.revokedAt).toBe(view.revokedAt);
    expect(await auditCount(harness, key.id, 'key.revoke_requested')).toBe(1);
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);
  });

  it('asks for the revoke once when DELETE arrives twice before the worker finishes', async () => {
    const key = await issueKey(harness, {
      provider: 'gitlab',
      repository: 'acme/models',
      jobId: 'double-delete',
      ttlSeconds: LONG_TTL,
    });
    const answers = await Promise.all([
      harness.api('DELETE', `/v1/keys/${key.id}`),
      harness.api('DELETE', `/v1/keys/${key.id}`),
    ]);
    for (const answer of answers) expect(answer.status).toBe(202);
    await revokedView(harness, key.id);
    expect(await auditCount(harness, key.id, 'key.revoke_requested')).toBe(1);
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);
  });

  it('answers 404 to another caller and leaves the key alone', async () => {
    const key = await issueKey(harness, {
      provider: 'github',
      repository: 'acme/models',
      jobId: 'not-yours',
      ttlSeconds: LONG_TTL,
    });
    const response = await harness.api('DELETE', `/v1/keys/${key.id}`, { token: otherToken });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await keyStatus(harness, key.id)).toBe('active');
    expect(hostHasKey(harness, key)).toBe(true);
    expect(await vaultMetadataStatus(harness, key)).toBe(200);
  });

  it('answers 404 for a key that does not exist', async () => {
    const response = await harness.api('DELETE', '/v1/keys/00000000-0000-4000-8000-000000000000');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});

describe('performRevoke', () => {
  it('audits one revoke however many times, and however concurrently, it runs', async () => {
    const key = await issueKey(harness, {
      provider: 'gitlab',
      repository: 'acme/datasets',
      jobId: 'service-level',
      ttlSeconds: LONG_TTL,
    });
    const { keyService } = harness.service.container;
    const row = await harness.service.container.keys.findById(key.id);
    // The worker's own revoke job races the two direct calls.
    await keyService.requestRevoke(row!, 'manual', 'test');
    const outcomes = await Promise.all([keyService.performRevoke(key.id), keyService.performRevoke(key.id)]);
    for (const outcome of outcomes) expect(['revoked', 'already-done']).toContain(outcome);
    expect(outcomes.filter((outcome) => outcome === 'revoked').length).toBeLessThanOrEqual(1);
    expect(await keyService.performRevoke(key.id)).toBe('already-done');
    await eventually(async () => (await keyStatus(harness, key.id)) === 'revoked', { what: 'revoked' });
    expect(await gone(key)).toBe(true);
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);
  });
});
