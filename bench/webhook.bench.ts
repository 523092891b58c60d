// Revocation by webhook: keys bound to CI jobs (issued with each job's own OIDC token), then every
// job ends in one burst at the stand-ins (GitHub runs cancelled through the REST API, GitLab jobs
// failed as a runner reports it), whose organisation and group hooks deliver the signed events.
// Measures event-to-revoked per key, and the webhook endpoint's answer time as the senders saw it.
// Usage: node --import tsx bench/webhook.bench.ts [--quick] [--keys N]
// Prints one JSON object on stdout; progress goes to stderr.
import { SANDBOX_POLICY, STAND_IN_WRITES, type StandIns, sandboxAuthConfig } from '../sandbox/stand-ins.ts';
import {
  addGithubOrgHook,
  addGitlabGroupHook,
  endGitlabJob,
  githubApi,
  type StartedJob,
  startGithubRun,
  startGitlabPipeline,
  WEBHOOK_SECRETS_ENV,
} from '../test/support/ci-webhooks.ts';
import {
  type BenchProcess,
  type BenchService,
  benchArgs,
  check,
  emit,
  percentiles,
  round,
  runConcurrent,
  startBenchService,
  startServiceProcess,
  waitRevoked,
} from './support.ts';

const args = benchArgs({ keys: '', 'delivery-concurrency': '' });
const keyCount = args.number('keys', 300, 60);
// GitHub and GitLab send deliveries from many workers at once; the stand-ins' default is 4.
const deliveryConcurrency = args.number('delivery-concurrency', 32, 32);
const REPOSITORIES = Array.from({ length: 10 }, (_, i) => `acme/repo-${i}`);
const TARGET_P99_MS = 2_000;

interface BoundKey {
  id: string;
  platform: 'github' | 'gitlab';
  job: StartedJob;
}

async function issueBoundKeys(bench: BenchService): Promise<BoundKey[]> {
  const { standIns } = bench;
  const keys: BoundKey[] = new Array(keyCount);
  const run = await runConcurrent(keyCount, 16, async (i) => {
    const platform = i % 2 === 0 ? 'github' : 'gitlab';
    const repository = REPOSITORIES[i % REPOSITORIES.length]!;
    const [job] =
      platform === 'github'
        ? await startGithubRun(standIns, repository)
        : await startGitlabPipeline(standIns, repository);
    const answer = await bench.api('POST', '/v1/keys', {
      token: job!.idToken,
      body: { provider: platform, repository, jobId: `bench-${platform}-${job!.jobId}`, ttlSeconds: 3_600 },
    });
    check(answer.status === 201, `issue answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    keys[i] = { id: (answer.body as { id: string }).id, platform, job: job! };
  });
  check(run.errors === 0, `issuing bound keys failed: ${run.firstError}`);
  return keys;
}

/** Ends every key's job at once; returns when each end was asked of its platform (epoch ms). */
async function endAllJobs(standIns: StandIns, keys: BoundKey[]): Promise<number[]> {
  const octokit = githubApi(standIns);
  const endedAt: number[] = new Array(keys.length);
  const run = await runConcurrent(keys.length, 32, async (i) => {
    const { platform, job } = keys[i]!;
    const repository = REPOSITORIES[i % REPOSITORIES.length]!;
    endedAt[i] = Date.now();
    if (platform === 'gitlab') return endGitlabJob(standIns, job.jobId, 'failed');
    const [owner, repo] = repository.split('/') as [string, string];
    const cancelled = await octokit.rest.actions.cancelWorkflowRun({ owner, repo, run_id: job.runId });
    check(cancelled.status === 202, `cancel answered ${cancelled.status}`);
  });
  check(run.errors === 0, `ending jobs failed: ${run.firstError}`);
  return endedAt;
}

/** How long the service took to answer each job-end delivery, as GitHub's and GitLab's hook logs show. */
async function endpointAnswers(standIns: StandIns, githubHook: number, gitlabHook: number) {
  const github = await githubApi(standIns).paginate(githubApi(standIns).rest.orgs.listWebhookDeliveries, {
    org: 'acme',
    hook_id: githubHook,
    per_page: 100,
  });
  const ends = github.filter((delivery) => delivery.action === 'completed');
  const gitlabLogs = await gitlabEvents(standIns, gitlabHook);
  return {
    durationsMs: [...ends.map((d) => d.duration * 1000), ...gitlabLogs.map((log) => log.ms)],
    statuses: [...ends.map((d) => d.status_code), ...gitlabLogs.map((log) => log.status)],
  };
}

/** `GET /groups/acme/hooks/:id/events`, every page, final job and pipeline events only. */
async function gitlabEvents(standIns: StandIns, hookId: number) {
  const found: { ms: number; status: number }[] = [];
  for (let page = 1; ; page += 1) {
    const response = await fetch(
      `${standIns.gitlab.api.url}/groups/acme/hooks/${hookId}/events?per_page=100&page=${page}`,
      { headers: { 'PRIVATE-TOKEN': standIns.gitlab.token } },
    );
    check(response.status === 200, `hook events answered ${response.status}`);
    const logs = (await response.json()) as {
      request_data: { object_kind: string; build_status?: string; object_attributes?: { status?: string } };
      response_status: string;
      execution_duration: number;
    }[];
    for (const log of logs) {
      const status = log.request_data.build_status ?? log.request_data.object_attributes?.status;
      if (status === 'failed')
        found.push({ ms: log.execution_duration * 1000, status: Number(log.response_status) || 0 });
    }
    if (response.headers.get('x-next-page') === '' || logs.length === 0) return found;
    check(page < 1_000, 'the hook log does not end');
  }
}

async function revokeTimes(bench: BenchService, keys: BoundKey[], endedAt: number[]) {
  const { rows } = await bench.database.pool.query<{ id: string; requested: Date; revoked: Date }>(
    'SELECT id, revoke_requested_at AS requested, revoked_at AS revoked FROM deploy_keys WHERE id = ANY($1::uuid[])',
    [keys.map((key) => key.id)],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  const toRequested: number[] = [];
  const toRevoked: number[] = [];
  keys.forEach((key, i) => {
    const row = byId.get(key.id)!;
    toRequested.push(row.requested.getTime() - endedAt[i]!);
    toRevoked.push(row.revoked.getTime() - endedAt[i]!);
  });
  return { toRequested: percentiles(toRequested), toRevoked: percentiles(toRevoked) };
}

const bench = await startBenchService({
  repositories: REPOSITORIES,
  worker: false,
  deliveryConcurrency,
  overrides: { env: WEBHOOK_SECRETS_ENV },
  fileConfig: (standIns) => ({ auth: sandboxAuthConfig(standIns).auth, policy: SANDBOX_POLICY }),
});
let worker: BenchProcess | undefined;
try {
  // As in the revoke benchmark: the worker compiled in its own process; this one holds the API
  // (which receives the webhooks), the stand-ins (which send them) and the load generator.
  worker = await startServiceProcess(bench, 'worker');
  const githubHook = await addGithubOrgHook(bench.standIns, bench.service.url, 'acme');
  const gitlabHook = await addGitlabGroupHook(bench.standIns, bench.service.url, 'acme');
  const keys = await issueBoundKeys(bench);
  await Promise.all([
    bench.standIns.github.api.deliveries.idle(),
    bench.standIns.gitlab.api.deliveries.idle(),
  ]);
  console.error(`webhook: ${keyCount} bound keys issued; ending every job`);

  const workerCpu0 = await worker.cpuMs();
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const endedAt = await endAllJobs(bench.standIns, keys);
  const endCallsMs = performance.now() - started;
  console.error(`webhook: every job ended in ${round(endCallsMs)} ms; waiting for the revokes`);
  await waitRevoked(
    bench,
    keys.map((key) => key.id),
    120_000,
  );
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerKey = {
    // API (webhook endpoint) + stand-ins (ending jobs, sending deliveries, host DELETEs, Vault) + load.
    thisProcess: round((cpu.user + cpu.system) / 1000 / keyCount, 2),
    workerProcess: round(((await worker.cpuMs()) - workerCpu0) / keyCount, 2),
  };
  await Promise.all([
    bench.standIns.github.api.deliveries.idle(),
    bench.standIns.gitlab.api.deliveries.idle(),
  ]);
  const times = await revokeTimes(bench, keys, endedAt);
  console.error(`webhook: every key revoked after ${round(wallSeconds, 3)} s; reading the hook logs`);
  const endpoint = await endpointAnswers(bench.standIns, githubHook, gitlabHook);
  check(
    endpoint.statuses.every((status) => status === 200),
    `a job-end delivery was answered ${endpoint.statuses.find((s) => s !== 200)}`,
  );
  emit({
    benchmark: 'webhook',
    keys: keyCount,
    platforms: {
      github: keys.filter((k) => k.platform === 'github').length,
      gitlab: keys.filter((k) => k.platform === 'gitlab').length,
    },
    deliveryConcurrency,
    endCallsMs: round(endCallsMs),
    wallSeconds: round(wallSeconds, 3),
    cpuMsPerKey,
    eventToRevokedMs: times.toRevoked,
    eventToRevokeRequestedMs: times.toRequested,
    deliveries: endpoint.durationsMs.length,
    endpointMs: percentiles(endpoint.durationsMs),
    // The sandbox's budget for the stand-ins, which limit nothing themselves.
    hostBudget: STAND_IN_WRITES,
    targets: { eventToRevokedP99Ms: `<= ${TARGET_P99_MS}` },
    met: { eventToRevokedP99: times.toRevoked.p99 <= TARGET_P99_MS },
    notes: [
      "Each key is issued through POST /v1/keys with its job's own OIDC token, so it carries a real binding (GitHub run, attempt and job; GitLab job and pipeline). Half the jobs are GitHub runs cancelled with POST /repos/{o}/{r}/actions/runs/{id}/cancel, half GitLab jobs that fail (the only job of their pipeline, so the pipeline fails too): two job-end deliveries per key, from an organisation hook and a group hook.",
      "eventToRevokedMs is revoked_at minus the moment the bench asked the platform to end the job: the stand-ins' delivery queues (deliveryConcurrency in flight per platform), the webhook endpoint, the revoke request, and the worker's host DELETE, Vault checks and audited transitions.",
      "endpointMs is each job-end delivery's duration as the sender recorded it (GitHub's deliveries API, GitLab's hook logs): the service's answer time to the platform, duplicates of an already-ended key included.",
      'cpuMsPerKey: CPU time each process spent from the first job end to the last revoke, divided by the keys; on two cores, keys × (both figures) / 2 is the least wall time the burst can take however idle the machine.',
      `Host budget: the sandbox's stand-ins limit nothing, so the service's budget for them is ${JSON.stringify(STAND_IN_WRITES)}. The target holds only where the host's write budget allows ${keyCount} deletes within 2 s; the default GitHub budget (80 writes a minute, one a second) would take minutes for such a burst.`,
    ],
  });
} finally {
  await worker?.stop();
  await bench.close();
}
