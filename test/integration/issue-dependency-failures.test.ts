// Vault or the revoke queue failing part-way through an issue: the key already registered at the host
// is removed again, nothing stays in Vault, the row ends `failed`, and the answer names what failed.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { expectNothingLeftBehind, expectProblem } from '../support/issue-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

// How long the service waits for one Vault request here (5 s unless configured).
const VAULT_TIMEOUT_SECONDS = 2;

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness({ fileConfig: { vault: { requestTimeoutSeconds: VAULT_TIMEOUT_SECONDS } } });
  // The service acts as a GitHub App: its installation token is minted (a POST answered 201) now,
  // so the host's 201s counted below are deploy keys alone.
  await harness.service.container.hosts.get('github')!.listDeployKeys('acme/models');
});
afterEach(() => {
  harness.standIns.vault.faults.clear();
});
afterAll(async () => {
  await harness?.close();
});

let counter = 0;
function issue(what: string, provider: 'github' | 'gitlab' = 'github') {
  counter += 1;
  const request = { provider, repository: 'acme/models', jobId: `dep-${what}-${counter}`, ttlSeconds: 600 };
  return harness.api('POST', '/v1/keys', { body: request }).then((answer) => ({ answer, request }));
}

/** Deploy keys the host created and deleted while `run` ran, counted from the host's own answers. */
async function hostActivity<T>(provider: 'github' | 'gitlab', run: () => Promise<T>) {
  const before = harness.standIns[provider].api.faults.stats().byStatus;
  const result = await run();
  const after = harness.standIns[provider].api.faults.stats().byStatus;
  const delta = (status: string) => (after[status] ?? 0) - (before[status] ?? 0);
  return { result, created: delta('201'), deleted: delta('204') };
}

it.each([
  ['the data write', '/v1/secret/data/'],
  ['the metadata write', '/v1/secret/metadata/'],
])(
  'answers Vault failing on %s with 503 naming Vault; the host key made first is removed',
  async (_what, pathPrefix) => {
    harness.standIns.vault.faults.add({ status: 500, method: 'POST', pathPrefix });
    const { result, created, deleted } = await hostActivity('github', () => issue('vault500'));
    expectProblem(result.answer, 503, 'vault-unavailable', /Vault/);
    expect(result.answer.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(created, 'the host key existed before Vault failed').toBe(1);
    expect(deleted, 'and was deleted by the undo').toBe(1);
    const row = await expectNothingLeftBehind(harness, result.request);
    expect(row.failureReason).toMatch(/vault: unavailable \(500\)/);
  },
);

it('answers Vault refusing the write (403) with 502 naming Vault, leaving nothing behind', async () => {
  harness.standIns.vault.faults.add({ status: 403, method: 'POST', pathPrefix: '/v1/secret/data/' });
  const { result, deleted } = await hostActivity('gitlab', () => issue('vault403', 'gitlab'));
  expectProblem(result.answer, 502, 'vault-failed', /Vault/);
  expect(deleted).toBe(1);
  await expectNothingLeftBehind(harness, result.request);
});

it('answers Vault slower than the adapter timeout with 504, leaving nothing behind', async () => {
  // The write is held well past the deadline and then refused, so it can never land after the undo.
  const heldMs = VAULT_TIMEOUT_SECONDS * 1000 + 3_000;
  harness.standIns.vault.faults.add({
    latencyMs: heldMs,
    status: 503,
    method: 'POST',
    pathPrefix: '/v1/secret/data/',
    count: 1,
  });
  const started = Date.now();
  const { result, deleted } = await hostActivity('github', () => issue('vault-slow'));
  expect(Date.now() - started).toBeLessThan(heldMs);
  expectProblem(result.answer, 504, 'vault-timeout', /Vault did not answer in time/);
  expect(deleted).toBe(1);
  const row = await expectNothingLeftBehind(harness, result.request);
  expect(row.failureReason).toMatch(/vault: timeout/);
});

it('answers Redis being unreachable for the revoke queue with 503, handing out no key', async () => {
  // The API's Redis connection is the one the revoke scheduler adds jobs through; dropping it is
  // what a Redis outage looks like to the issue flow (it does not queue commands while offline).
  const { redis } = harness.service.container;
  redis.disconnect();
  try {
    const { result, created, deleted } = await hostActivity('github', () => issue('no-redis'));
    expectProblem(result.answer, 503, 'queue-unavailable', /revoke queue/);
    expect(result.answer.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(result.answer.body.privateKey).toBeUndefined();
    expect([created, deleted]).toEqual([1, 1]);
    const row = await expectNothingLeftBehind(harness, result.request);
    expect(row.failureReason).toBe('queue: unavailable');
  } finally {
    await redis.connect().catch(() => {});
  }
  await eventually(async () => redis.status === 'ready', { what: 'Redis to reconnect' });
  const { answer } = await issue('redis-back');
  expect(answer.status, answer.text).toBe(201);
});
