// CI jobs that end while the service is down send webhooks nobody receives. After a restart the
// first reconciler pass asks the hosts about every bound job and revokes the keys of those that
// ended, from host and Vault, audited as from the sweep; keys of running jobs stay active, and a host
// answering 429 leaves its keys for a later pass without failing the pass.
import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxService, startSandboxService } from '../../sandbox/service.ts';
import { type StandIns, sandboxAuthConfig, startStandIns } from '../../sandbox/stand-ins.ts';
import type { KeyBinding } from '../../src/model/schemas.ts';
import { createCiSweep } from '../../src/queue/ci-sweep.ts';
import type { Reconciler } from '../../src/queue/reconciler.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createCapturedLogger } from '../support/log-capture.ts';
import { createTestRedisPrefix, TEST_REDIS_URL } from '../support/redis.ts';
import {
  auditDetails,
  hostHasKey,
  metricsPage,
  metricValue,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import type { Harness } from '../support/service-harness.ts';

type Described = {
  run?: { id: number };
  pipeline?: { id: number };
  jobs: { id: number; name: string }[];
  id_tokens: Record<string, string>;
};

let standIns: StandIns;
let database: TestDatabase;
let redis: ReturnType<typeof createTestRedisPrefix>;
let service: SandboxService;
let apiToken: string;
let adminToken: string;
const logs = createCapturedLogger('info');

// Passes run only when started or asked for, so each test knows which pass did what.
const fileConfig = (ins: StandIns) => ({
  ...sandboxAuthConfig(ins),
  reconciler: {
    periodSeconds: 3_600,
    pendingTimeoutSeconds: 5,
    orphanScanSeconds: 3_600,
    sweepGraceSeconds: 0,
    sweepJobsPerHost: 20,
  },
  rateLimit: { max: 100_000, timeWindowSeconds: 60, expensiveMax: 100_000, failedAuthMax: 100_000 },
});

const CALLERS = [
  { name: 'sandbox-ci-sweep', role: 'issuer' as const },
  { name: 'sweep-admin', role: 'admin' as const },
];

const startService = (worker: boolean, callers = false) =>
  startSandboxService({
    standIns,
    databaseUrl: database.url,
    redisUrl: TEST_REDIS_URL,
    redisPrefix: redis.prefix,
    apiPort: 0,
    logger: logs.logger,
    fileConfig: fileConfig(standIns),
    worker,
    ...(callers ? { callers: CALLERS } : {}),
  });

// The checks in revoke-checks.ts look behind whichever service is running now through this view.
const view = {
  get standIns() {
    return standIns;
  },
  get database() {
    return database;
  },
  get service() {
    return service;
  },
  api: (method: string, path: string, options: { token?: string | null } = {}) =>
    call(method, path, options.token === undefined ? adminToken : options.token),
} as unknown as Harness;
const asHarness = () => view;

beforeAll(async () => {
  database = await createTestDatabase();
  redis = createTestRedisPrefix();
  standIns = await startStandIns();
  service = await startService(true, true);
  apiToken = service.tokens['sandbox-ci-sweep']!;
  adminToken = service.tokens['sweep-admin']!;
});
afterAll(async () => {
  await service?.stop();
  await standIns?.close();
  await redis?.cleanup();
  await database?.drop();
});

async function drive(host: 'github' | 'gitlab', path: string, body: unknown = {}): Promise<Described> {
  const origin = new URL(standIns[host].api.url).origin;
  const area = host === 'github' ? 'actions' : 'ci';
  const response = await fetch(`${origin}/_sandbox/${area}/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return (await response.json()) as Described;
}

async function call(method: string, path: string, token: string | null, body?: unknown) {
  const response = await fetch(`${service.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  const parsed = response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  return {
    status: response.status,
    headers: response.headers,
    body: parsed as Record<string, unknown>,
    text,
  };
}

/** A key for acme/models asked for with the job's own OIDC token, so its binding is the job's. */
async function issueAsJob(provider: 'github' | 'gitlab', idToken: string, jobId: string) {
  const issued = await call('POST', '/v1/keys', idToken, {
    provider,
    repository: 'acme/models',
    jobId,
    ttlSeconds: 3_600,
  });
  expect(issued.status, JSON.stringify(issued.body)).toBe(201);
  expect(issued.body.binding).toMatchObject({ kind: provider === 'github' ? 'github-actions' : 'gitlab-ci' });
  return {
    id: String(issued.body.id),
    provider,
    repository: 'acme/models',
    vault: issued.body.vault as { mount: string; path: string },
  };
}

/** A key bound to a job no host token could name (a deleted run, a repository we cannot see). */
async function issueBound(jobId: string, binding: KeyBinding) {
  const provider = binding.kind === 'gitlab-ci' ? 'gitlab' : 'github';
  const { container } = service;
  const request = { headers: { authorization: `Bearer ${apiToken}` } } as unknown as FastifyRequest;
  const caller = await container.authenticate(request);
  const issued = await container.keyService.issue(caller, {
    provider,
    repository: 'acme/models',
    jobId,
    ttlSeconds: 3_600,
    binding,
  });
  return issued.row.id;
}

const statusOf = async (keyId: string) => (await call('GET', `/v1/keys/${keyId}`, adminToken)).body.status;
const idToken = (described: Described, name: string) => {
  const job = described.jobs.find((each) => each.name === name)!;
  return { jobId: job.id, token: described.id_tokens[job.id]! };
};

let reconciler: Reconciler;

async function restartWithWorker() {
  await service.stop();
  service = await startService(false);
  reconciler = service.container.startWorker().reconciler;
  // start() began the first pass; asking now joins that pass rather than starting another.
  return reconciler.runOnce();
}

describe('the sweep after the service was down while CI jobs ended', () => {
  let running: { github: string; gitlab: string };

  it('revokes every key of an ended job in the first pass after the restart, and only those', async () => {
    const training = await drive('github', 'runs', { repository: 'acme/models', jobs: ['train', 'eval'] });
    const nightly = await drive('github', 'runs', { repository: 'acme/models', jobs: ['build'] });
    const pipeline = await drive('gitlab', 'pipelines', { project: 'acme/models', jobs: ['train', 'test'] });
    const train = idToken(training, 'train');
    const trainKeys = [
      await issueAsJob('github', train.token, 'gh-train-a'),
      await issueAsJob('github', train.token, 'gh-train-b'),
    ];
    const evalKey = await issueAsJob('github', idToken(training, 'eval').token, 'gh-eval');
    const buildKey = await issueAsJob('github', idToken(nightly, 'build').token, 'gh-build');
    const glTrain = idToken(pipeline, 'train');
    const glTrainKey = await issueAsJob('gitlab', glTrain.token, 'gl-train');
    const glTestKey = await issueAsJob('gitlab', idToken(pipeline, 'test').token, 'gl-test');

    await service.stop();
    await drive('github', `jobs/${train.jobId}/complete`, { conclusion: 'failure' });
    await drive('github', `runs/${nightly.run!.id}/cancel`);
    await drive('gitlab', `jobs/${glTrain.jobId}/time-out`);

    const report = await restartWithWorker();
    expect(report).toMatchObject({ errors: 0, jobsChecked: 5, jobEndRevokes: 4 });
    for (const key of [...trainKeys, buildKey, glTrainKey]) {
      const view = await revokedView(asHarness(), key.id);
      expect(view.revokeReason).toBe('job-ended');
      expect(hostHasKey(asHarness(), key)).toBe(false);
      expect(await vaultMetadataStatus(asHarness(), key)).toBe(404);
    }
    expect(await auditDetails(asHarness(), trainKeys[0]!.id, 'key.revoke_requested')).toEqual([
      { reason: 'job-ended', source: 'sweep', host: 'github', conclusion: 'failure' },
    ]);
    expect(await auditDetails(asHarness(), buildKey.id, 'key.revoke_requested')).toEqual([
      { reason: 'job-ended', source: 'sweep', host: 'github', conclusion: 'cancelled' },
    ]);
    expect(await auditDetails(asHarness(), glTrainKey.id, 'key.revoke_requested')).toEqual([
      {
        reason: 'job-ended',
        source: 'sweep',
        host: 'gitlab',
        conclusion: 'failed',
        failureReason: 'job_execution_timeout',
      },
    ]);
    expect(await statusOf(evalKey.id)).toBe('active');
    expect(await statusOf(glTestKey.id)).toBe('active');
    expect(hostHasKey(asHarness(), evalKey)).toBe(true);

    // One request per job however many keys it holds: the two keys of `train` cost one.
    const page = await metricsPage(asHarness());
    const checked = (provider: string, outcome: string) =>
      metricValue(page, 'deploykey_sweep_jobs_checked_total', { provider, outcome });
    expect(checked('github', 'ended') + checked('github', 'running')).toBe(3);
    expect(checked('gitlab', 'ended') + checked('gitlab', 'running')).toBe(2);
    expect(metricValue(page, 'deploykey_sweep_keys_revoked_total', { provider: 'github' })).toBe(3);
    running = { github: evalKey.id, gitlab: glTestKey.id };
  });

  it('leaves the keys to the next pass when the host answers 429, and the pass does not fail', async () => {
    const deploy = await drive('github', 'runs', { repository: 'acme/models', jobs: ['deploy'] });
    const job = idToken(deploy, 'deploy');
    const key = await issueAsJob('github', job.token, 'gh-deploy');
    await drive('github', `jobs/${job.jobId}/complete`, { conclusion: 'success' });

    const faults = `${new URL(standIns.github.api.url).origin}/_sandbox/faults`;
    // A pause long enough for the next pass, made at once, to fall inside it even on a loaded machine.
    const rule = { status: 429, headers: { 'retry-after': '3' }, pathPrefix: '/repos/acme/models/actions' };
    await fetch(faults, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(rule),
    });
    const githubRequests = async () =>
      metricValue(await metricsPage(asHarness()), 'deploykey_host_requests_total', { provider: 'github' });
    const limited = await reconciler.runOnce();
    expect(limited.errors).toBe(1);
    expect(limited.jobEndRevokes).toBe(0);
    expect(await statusOf(key.id)).toBe('active');
    expect(logs.text()).toContain('sweep could not ask about a CI job');

    // Within the host's pause the next pass sends it nothing, and fails nothing either.
    await fetch(faults, { method: 'DELETE' });
    const before = await githubRequests();
    expect(await reconciler.runOnce()).toMatchObject({ jobEndRevokes: 0, skipped: false });
    expect(await githubRequests()).toBe(before);

    const deadline = Date.now() + 20_000;
    while ((await statusOf(key.id)) === 'active' && Date.now() < deadline) {
      await reconciler.runOnce();
      if ((await statusOf(key.id)) === 'active') await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect((await revokedView(asHarness(), key.id)).revokeReason).toBe('job-ended');
    expect(await statusOf(running.github)).toBe('active');
    expect(await statusOf(running.gitlab)).toBe('active');
  });

  it('asks a run attempt when the token named no job; a deleted run or job counts as ended, one in a repository the service cannot see does not', async () => {
    const base = { kind: 'github-actions', host: 'github', runAttempt: '1' } as const;
    const finished = await drive('github', 'runs', { repository: 'acme/models', jobs: ['package'] });
    await drive('github', `runs/${finished.run!.id}/complete`, { conclusion: 'success' });
    const wholeRun = await issueBound('gh-run', {
      ...base,
      repository: 'acme/models',
      runId: String(finished.run!.id),
    });
    const deleted = await issueBound('gh-deleted', {
      ...base,
      repository: 'acme/models',
      runId: '424242424242',
    });
    const unseen = await issueBound('gh-unseen', { ...base, repository: 'acme/elsewhere', runId: '5' });
    const gitlab = { kind: 'gitlab-ci', host: 'gitlab', pipelineId: '77' } as const;
    const glDeleted = await issueBound('gl-deleted', {
      ...gitlab,
      project: 'acme/models',
      jobId: '987654321',
    });
    const glUnseen = await issueBound('gl-unseen', { ...gitlab, project: 'acme/elsewhere', jobId: '6' });
    await reconciler.runOnce();
    const view = await revokedView(asHarness(), deleted);
    expect(view.revokeReason).toBe('job-ended');
    expect(await auditDetails(asHarness(), deleted, 'key.revoke_requested')).toEqual([
      { reason: 'job-ended', source: 'sweep', host: 'github', conclusion: 'deleted' },
    ]);
    expect(await auditDetails(asHarness(), wholeRun, 'key.revoke_requested')).toEqual([
      { reason: 'job-ended', source: 'sweep', host: 'github', conclusion: 'success' },
    ]);
    expect(await auditDetails(asHarness(), glDeleted, 'key.revoke_requested')).toEqual([
      { reason: 'job-ended', source: 'sweep', host: 'gitlab', conclusion: 'deleted' },
    ]);
    expect(await statusOf(unseen)).toBe('active');
    expect(await statusOf(glUnseen)).toBe('active');
  });

  it('asks at most the configured number of jobs per host in a pass, those asked longest ago first', async () => {
    const runs = await drive('github', 'runs', { repository: 'acme/models', jobs: ['a', 'b', 'c'] });
    const keys = [];
    for (const name of ['a', 'b', 'c'])
      keys.push(await issueAsJob('github', idToken(runs, name).token, `cap-${name}`));
    await drive('github', `runs/${runs.run!.id}/complete`, { conclusion: 'success' });
    const { container } = service;
    const { keys: repository, keyService, clock, logger, metrics } = container;
    // GitHub only, so each pass's count is GitHub's alone.
    const hosts = { get: (id: string) => (id === 'github' ? container.hosts.get(id) : undefined) };
    const sweep = createCiSweep(
      { keys: repository, hosts, keyService, clock, logger, metrics },
      { sweepGraceSeconds: 0, sweepJobsPerHost: 2 },
    );
    // Jobs left live by the tests above (a running job, a repository we cannot see) come first
    // while never asked; turn by turn every job is reached all the same.
    for (let pass = 0; pass < 3; pass += 1) {
      const report = { jobsChecked: 0, jobEndRevokes: 0, errors: 0 };
      await sweep.pass(report);
      expect(report.jobsChecked).toBeLessThanOrEqual(2);
    }
    for (const key of keys) expect(await statusOf(key.id)).not.toBe('active');
    expect(await statusOf(running.github)).toBe('active');
  });
});
