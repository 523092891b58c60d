// A GitHub host configured with a pool of Apps, against the stand-in that limits writes per
// identity as GitHub does: each App's writes are paced by its own budget in the real Redis, a write
// goes to the App with room, a pause asked of one App holds only that one, and a key is added and
// revoked only through an App installed on the repository's owner.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AppInstallation } from '../../sandbox/github/app-registry.ts';
import { type GithubStandIn, type SeenRequest, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import type { HostConfig } from '../../src/config.ts';
import { keyTitle } from '../../src/hosts/git-host.ts';
import type { PoolCredential } from '../../src/hosts/host-auth-config.ts';
import { createRedisPacing } from '../../src/hosts/shared-pacing.ts';
import type { Metrics } from '../../src/metrics.ts';
import { generateEd25519 } from '../support/git-client.ts';
import { hostError, testAdapter } from '../support/host-adapters.ts';
import { createTestRedisPrefix, TEST_REDIS_URL } from '../support/redis.ts';

const SHARED = 'acme/models';
const OTHER_OF_ACME = 'acme/datasets';
const OF_X = 'xco/tools';
const OF_Y = 'yco/tools';
const WRITES_PER_SECOND_PER_IDENTITY = 10;
// Each App's own budget: half the stand-in's limit per identity, so that no delay on the way (on a
// loaded machine) can bunch its writes into a refusal.
const BUDGET = { concurrency: 2, minIntervalMs: 0, requestsPerMinute: 5 * 60, maxQueueSeconds: 10 };

let standIn: GithubStandIn;
let state: HostState;
let redis: Redis;
let prefix: ReturnType<typeof createTestRedisPrefix>;
const seen: SeenRequest[] = [];
const apps: Record<string, { id: number; pem: string; installation: AppInstallation }> = {};

beforeAll(async () => {
  state = createHostState('github');
  for (const path of [SHARED, OTHER_OF_ACME, OF_X, OF_Y]) state.addRepository(path, '/nonexistent');
  standIn = await startGithubStandIn({
    state,
    tokens: [],
    sshHostKeys: () => [generateEd25519().publicKey],
    onRequestSeen: (request) => seen.push(request),
  });
  // App s is installed on acme for one other repository only: it reaches the owner, not SHARED.
  const installs: Record<string, { account: string; repositories?: string[] }> = {
    a: { account: 'acme' },
    b: { account: 'acme' },
    s: { account: 'acme', repositories: [OTHER_OF_ACME.split('/')[1]!] },
    x: { account: 'xco' },
    y: { account: 'yco' },
  };
  for (const [name, install] of Object.entries(installs)) {
    const registered = standIn.apps.registerApp({ name: `pool-${name}` });
    const installation = standIn.apps.install(registered.app.id, install);
    apps[name] = { id: registered.app.id, pem: registered.privateKeyPem!, installation };
  }
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  prefix = createTestRedisPrefix();
});

// Each test starts with budgets no earlier test spent or paused.
beforeEach(async () => {
  await prefix.cleanup();
});

afterAll(async () => {
  await standIn.close();
  await prefix.cleanup();
  redis.disconnect();
});

function poolAdapter(names: string[]) {
  const pool: PoolCredential[] = names.map((name) => ({
    name,
    token: '',
    credential: { type: 'app', appId: apps[name]!.id, privateKey: { value: apps[name]!.pem } },
  }));
  const config: HostConfig = {
    id: 'github',
    type: 'github',
    apiUrl: standIn.url,
    sshUrl: 'ssh://git@127.0.0.1:2222',
    token: '',
    pool,
    writes: BUDGET,
  };
  return testAdapter(config, { sharedPacing: createRedisPacing(redis, prefix.prefix) });
}

let serial = 0;
const newKey = (repository: string) => {
  serial += 1;
  const id = `00000000-0000-4000-8000-${String(serial).padStart(12, '0')}`;
  return {
    repository,
    title: keyTitle(id, `job-${serial}`),
    publicKey: generateEd25519().publicKey,
    expiresAt: new Date(Date.now() + 60_000),
    caller: 'test',
  };
};

/** Which App (by the test's name) sent each write the stand-in saw since `from`. */
function writersSince(from: number): string[] {
  const byId = new Map(Object.entries(apps).map(([name, app]) => [app.id, name]));
  return seen
    .slice(from)
    .filter((request) => request.method !== 'GET' && /\/repos\/[^/]+\/[^/]+\/keys/.test(request.url))
    .map((request) => {
      const token = String(request.headers.authorization).replace(/^token /, '');
      return byId.get(standIn.apps.findToken(token)?.installation.app.id ?? 0) ?? 'unknown';
    });
}

function counted(names: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

async function metricText(metrics: Metrics, name: string): Promise<string> {
  return (await metrics.registry.getSingleMetricAsString(name)) ?? '';
}

/** Another client acting as the App spends its whole allowance of writes for this second. */
async function spendAllowanceOf(name: string) {
  const minted = standIn.apps.mintToken(apps[name]!.installation, {});
  if (!('token' in minted)) throw new Error(minted.message);
  for (let i = 0; i < WRITES_PER_SECOND_PER_IDENTITY; i += 1) {
    await fetch(`${standIn.url}/repos/${SHARED}/keys/999999`, {
      method: 'DELETE',
      headers: { authorization: `token ${minted.token.token}` },
    });
  }
}

const refusedByHost = () => standIn.faults.stats().byStatus['403'] ?? 0;

describe('a pool of two GitHub Apps on one host', () => {
  it('spreads a burst of writes over both Apps, each within its own limit, with no refusal', async () => {
    standIn.setRateLimit({
      secondary: { writesPerSecond: WRITES_PER_SECOND_PER_IDENTITY, retryAfterSeconds: 60 },
    });
    const { host, metrics } = poolAdapter(['a', 'b']);
    await host.checkAccess(SHARED);
    const from = seen.length;
    const added = await Promise.all(Array.from({ length: 16 }, () => host.addDeployKey(newKey(SHARED))));
    await Promise.all(added.map((key) => host.deleteDeployKey(SHARED, key.hostKeyId)));

    expect(refusedByHost()).toBe(0);
    const writers = counted(writersSince(from));
    expect(writers.a ?? 0, JSON.stringify(writers)).toBeGreaterThanOrEqual(10);
    expect(writers.b ?? 0, JSON.stringify(writers)).toBeGreaterThanOrEqual(10);
    expect((writers.a ?? 0) + (writers.b ?? 0)).toBe(32);
    expect(state.listKeys(state.findRepository(SHARED)!.id)).toEqual([]);
    // Each App paces its writes under its own key in Redis, shared with every replica.
    const budgetKeys = await redis.keys(`${prefix.prefix}:host-budget:*:next`);
    expect(budgetKeys.sort()).toEqual([
      `${prefix.prefix}:host-budget:github/a:next`,
      `${prefix.prefix}:host-budget:github/b:next`,
    ]);
    // Each App's budget is shown under its configured name.
    const left = await metricText(metrics, 'deploykey_host_budget_left');
    expect(left).toMatch(/deploykey_host_budget_left\{provider="github",credential="a"\} \d+/);
    expect(left).toMatch(/deploykey_host_budget_left\{provider="github",credential="b"\} \d+/);
  });

  it('keeps writing through the other App while the host has paused one', async () => {
    standIn.setRateLimit({
      secondary: { writesPerSecond: WRITES_PER_SECOND_PER_IDENTITY, retryAfterSeconds: 30 },
    });
    const { host, metrics } = poolAdapter(['a', 'b']);
    await host.checkAccess(SHARED);
    await spendAllowanceOf('a');
    const refusedBefore = refusedByHost();
    const started = Date.now();
    const added = await Promise.all(Array.from({ length: 6 }, () => host.addDeployKey(newKey(SHARED))));
    const tookMs = Date.now() - started;

    expect(added).toHaveLength(6);
    // App a met its limit (the host asked it to wait 30 s), and the writes went on through b meanwhile.
    expect(refusedByHost() - refusedBefore).toBeGreaterThanOrEqual(1);
    expect(tookMs).toBeLessThan(20_000);
    const pauses = await metricText(metrics, 'deploykey_host_rate_limit_pauses_total');
    expect(pauses).toContain('deploykey_host_rate_limit_pauses_total{provider="github",credential="a"} 1');
    expect(pauses).not.toContain('credential="b"');
    const left = await metricText(metrics, 'deploykey_host_budget_left');
    expect(left).toContain('deploykey_host_budget_left{provider="github",credential="a"} 0');
    expect(left).not.toContain('deploykey_host_budget_left{provider="github",credential="b"} 0');
    for (const key of added) expect(await host.deleteDeployKey(SHARED, key.hostKeyId)).toBe('deleted');
  });

  it('adds and revokes through the App installed on the repository’s owner', async () => {
    standIn.setRateLimit(undefined);
    const { host } = poolAdapter(['x', 'y']);
    const from = seen.length;
    const onX = await host.addDeployKey(newKey(OF_X));
    const onY = await host.addDeployKey(newKey(OF_Y));
    expect(writersSince(from)).toEqual(['x', 'y']);

    const revokesFrom = seen.length;
    expect(await host.deleteDeployKey(OF_Y, onY.hostKeyId)).toBe('deleted');
    expect(await host.deleteDeployKey(OF_X, onX.hostKeyId)).toBe('deleted');
    expect(writersSince(revokesFrom)).toEqual(['y', 'x']);
    expect(state.listKeys(state.findRepository(OF_X)!.id)).toEqual([]);
    expect(state.listKeys(state.findRepository(OF_Y)!.id)).toEqual([]);
    // A key already gone is reported so only after the App that sees the repository said 404.
    expect(await host.deleteDeployKey(OF_X, onX.hostKeyId)).toBe('already-gone');
    // An owner with neither App is refused before any write.
    const writes = seen.length;
    expect((await hostError(host.checkAccess('nobody/tools'))).kind).toBe('app-not-installed');
    expect((await hostError(host.addDeployKey(newKey('nobody/tools')))).kind).toBe('app-not-installed');
    expect(writersSince(writes)).toEqual([]);
  });

  it('does not take a 404 from an App that cannot see the repository for a key already gone', async () => {
    standIn.setRateLimit({
      secondary: { writesPerSecond: WRITES_PER_SECOND_PER_IDENTITY, retryAfterSeconds: 30 },
    });
    const { host } = poolAdapter(['s', 'b']);
    // App s reaches acme but not SHARED: the key is added through b.
    const key = await host.addDeployKey(newKey(SHARED));
    // Then b is asked to wait, and s, which cannot see the repository, answers 404.
    await spendAllowanceOf('b');
    const refusal = await hostError(host.deleteDeployKey(SHARED, key.hostKeyId));
    expect(refusal.kind).toBe('rate-limited');
    expect(state.listKeys(state.findRepository(SHARED)!.id).map((k) => String(k.id))).toContain(
      key.hostKeyId,
    );
    standIn.setRateLimit(undefined);
  });
});
