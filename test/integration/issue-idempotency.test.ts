// A retried request never registers a second key: the same Idempotency-Key and body answer with the
// first key, a different body is refused, and racing duplicates end with one key at the host.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectProblem, ourHostKeys, vaultMetadataStatus } from '../support/issue-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
beforeAll(async () => {
  // No background orphan scan lists host keys while a test counts the requests a replay makes.
  harness = await startHarness({
    fileConfig: { reconciler: { periodSeconds: 1, pendingTimeoutSeconds: 5, orphanScanSeconds: 3_600 } },
  });
});
afterAll(async () => {
  await harness?.close();
});

const keysOn = (provider: 'github' | 'gitlab', repository: string, keyId: string) =>
  ourHostKeys(harness, provider, repository).filter((key) => key.title.includes(keyId));

it('answers a replay with the first key, 201 and idempotent-replayed, and registers nothing new', async () => {
  const request = {
    provider: 'github',
    repository: 'acme/models',
    jobId: 'idem-vault',
    ttlSeconds: 600,
  };
  const headers = { 'idempotency-key': 'idem-vault-1' };
  const first = await harness.api('POST', '/v1/keys', { body: request, headers });
  expect(first.status, first.text).toBe(201);
  expect(first.headers.get('idempotent-replayed')).toBeNull();
  const postsBefore = harness.standIns.github.api.faults.stats().total;

  const replay = await harness.api('POST', '/v1/keys', { body: request, headers });
  expect(replay.status, replay.text).toBe(201);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.body).toMatchObject({
    id: first.body.id,
    fingerprint: first.body.fingerprint,
    publicKey: first.body.publicKey,
    vault: first.body.vault,
    status: 'active',
  });
  expect(replay.body.privateKey).toBeUndefined();
  expect(harness.standIns.github.api.faults.stats().total, 'a replay does not call the host').toBe(
    postsBefore,
  );
  expect(ourHostKeys(harness, 'github', 'acme/models').map((key) => key.title)).toEqual([
    expect.stringContaining(first.body.id),
  ]);
});

it('replays a "response" delivery with the same private key', async () => {
  const request = {
    provider: 'gitlab',
    repository: 'acme/models',
    jobId: 'idem-response',
    delivery: 'response',
  };
  const headers = { 'idempotency-key': 'idem-response-1' };
  const first = await harness.api('POST', '/v1/keys', { body: request, headers });
  expect(first.status, first.text).toBe(201);
  const replay = await harness.api('POST', '/v1/keys', { body: request, headers });
  expect(replay.status, replay.text).toBe(201);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.headers.get('cache-control')).toBe('no-store');
  expect(replay.body.id).toBe(first.body.id);
  expect(replay.body.privateKey).toBe(first.body.privateKey);
  expect(keysOn('gitlab', 'acme/models', first.body.id)).toHaveLength(1);
});

it('refuses the same Idempotency-Key with a different body (409), leaving the first key alone', async () => {
  const headers = { 'idempotency-key': 'idem-mismatch-1' };
  const body = { provider: 'github', repository: 'acme/datasets', jobId: 'idem-mismatch', ttlSeconds: 600 };
  const first = await harness.api('POST', '/v1/keys', { body, headers });
  expect(first.status, first.text).toBe(201);

  const other = await harness.api('POST', '/v1/keys', { body: { ...body, ttlSeconds: 601 }, headers });
  expectProblem(other, 409, 'idempotency-key-reused', /different request/);
  expect(other.body.keyId).toBe(first.body.id);
  expect(keysOn('github', 'acme/datasets', first.body.id)).toHaveLength(1);
  expect(ourHostKeys(harness, 'github', 'acme/datasets')).toHaveLength(1);
  expect((await harness.api('GET', `/v1/keys/${first.body.id}`)).body.status).toBe('active');
});

it('refuses a second live key for the same job and repository, naming the active key', async () => {
  const body = { provider: 'gitlab', repository: 'acme/datasets', jobId: 'idem-live', ttlSeconds: 600 };
  const first = await harness.api('POST', '/v1/keys', { body });
  expect(first.status, first.text).toBe(201);
  const second = await harness.api('POST', '/v1/keys', { body });
  expectProblem(second, 409, 'key-already-active', new RegExp(first.body.id));
  expect(second.body.activeKeyId).toBe(first.body.id);
  expect(ourHostKeys(harness, 'gitlab', 'acme/datasets').map((key) => key.title)).toEqual([
    expect.stringContaining(first.body.id),
  ]);
  // The first key's secret is untouched by the refused request.
  expect(await vaultMetadataStatus(harness, first.body.vault.path)).toBe(200);
});

it('lets five racing duplicates register exactly one key; each gets that key or "in progress"', async () => {
  const body = { provider: 'github', repository: 'acme/models', jobId: 'idem-race', delivery: 'response' };
  const headers = { 'idempotency-key': 'idem-race-1' };
  const answers = await Promise.all(
    Array.from({ length: 5 }, () => harness.api('POST', '/v1/keys', { body, headers })),
  );
  const created = answers.filter((answer) => answer.status === 201);
  expect(created.length).toBeGreaterThanOrEqual(1);
  const ids = new Set(created.map((answer) => answer.body.id));
  expect(ids.size).toBe(1);
  const [id] = [...ids];
  for (const answer of answers) {
    if (answer.status === 201) {
      expect(answer.body.privateKey).toBe(created[0]?.body.privateKey);
      continue;
    }
    expectProblem(answer, 409, 'request-in-progress', /still running/);
    expect(answer.body.keyId).toBe(id);
    expect(answer.headers.get('retry-after')).toBe('1');
  }
  expect(keysOn('github', 'acme/models', id as string)).toHaveLength(1);
  const rows = await harness.database.pool.query('SELECT id FROM deploy_keys WHERE job_id = $1', [
    'idem-race',
  ]);
  expect(rows.rows).toEqual([{ id }]);

  const later = await harness.api('POST', '/v1/keys', { body, headers });
  expect(later.status).toBe(201);
  expect(later.body.id).toBe(id);
});

it('answers a replay of a request that failed with 409, and registers nothing on the retry', async () => {
  harness.standIns.gitlab.api.faults.add({ status: 422, method: 'POST', count: 1 });
  const body = { provider: 'gitlab', repository: 'acme/models', jobId: 'idem-failed' };
  const headers = { 'idempotency-key': 'idem-failed-1' };
  const first = await harness.api('POST', '/v1/keys', { body, headers });
  expectProblem(first, 502, 'host-failed', /gitlab/);
  const replay = await harness.api('POST', '/v1/keys', { body, headers });
  expectProblem(replay, 409, 'idempotent-request-failed', /new key/);
  expect(
    ourHostKeys(harness, 'gitlab', 'acme/models').filter((key) => key.title.includes('idem-failed')),
  ).toEqual([]);
});
