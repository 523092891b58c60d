// The Kubernetes controller: annotated Jobs started and ended in waves against the stand-ins, the
// controller as its own process (compiled, as the image runs it). Measures how long after a Job
// ends its keys are revoked (gone from the host and Vault), how fast keys are issued for a wave of
// new Jobs, and the controller's resident memory.
// Usage: node --import tsx bench/controller.bench.ts [--quick] [--jobs N] [--wave W]
// Prints one JSON object on stdout; progress goes to stderr.
import { loadavg } from 'node:os';
import type { JobOutcome } from '../sandbox/kubernetes/cluster.ts';
import {
  SANDBOX_OIDC_ISSUER_ID,
  SANDBOX_POLICY,
  sandboxAuthConfig,
  serviceSettingsFor,
} from '../sandbox/stand-ins.ts';
import {
  type BenchService,
  benchArgs,
  check,
  emit,
  percentiles,
  round,
  sleep,
  startBenchService,
  startServiceProcess,
} from './support.ts';

const args = benchArgs({ jobs: '', wave: '' });
const jobCount = args.number('jobs', 200, 40);
const waveSize = args.number('wave', 40, 20);
const NAMESPACE = 'training';
const OUTCOMES: JobOutcome[] = ['complete', 'failed', 'oom-killed', 'deleted'];
// A wave's Jobs end one every 25 ms (a second for 40), as Jobs of one sweep of training runs do.
const END_SPACING_MS = 25;
// The service's write budget per host: 32 at a time, no rate cap; the stand-in hosts set no rate
// limit. Revocation is then bounded by the service and the machine, not by a host's budget.
const HOST_WRITES = { concurrency: 32, minIntervalMs: 0, requestsPerMinute: 600_000 };
const trainingRule = SANDBOX_POLICY.find((rule) => rule.name === 'kubernetes-training-jobs');
check(trainingRule, 'the sandbox policy has no rule for training Jobs');

const bench = await startBenchService({
  fileConfig: (standIns) => ({
    hosts: serviceSettingsFor(standIns).hosts.map((host) => ({ ...host, writes: HOST_WRITES })),
    auth: sandboxAuthConfig(standIns).auth,
    policy: [
      // A wave's keys are all live at once; the sandbox rule's cap of 50 would refuse a larger wave.
      { ...trainingRule, allow: { ...trainingRule.allow, maxActiveKeys: 10_000 } },
    ],
    kubernetes: {
      kubeconfig: standIns.kubernetes.kubeconfigPath,
      namespaces: [NAMESPACE],
      oidcIssuerId: SANDBOX_OIDC_ISSUER_ID,
      sweepSeconds: 30,
      leaderRetrySeconds: 1,
    },
  }),
});

interface JobKeyRow {
  uid: string;
  activated_ms: number | null;
  revoked_ms: number | null;
}

/**
 * Per Job: when its key became active, and when its last live key was revoked (null while one still
 * lives). An attempt that failed on a dependency leaves a failed row beside the key issued after it.
 */
async function jobKeys(service: BenchService, uids: string[]): Promise<JobKeyRow[]> {
  const { rows } = await service.database.pool.query<JobKeyRow>(
    `SELECT binding->>'uid' AS uid,
            extract(epoch FROM min(activated_at)) * 1000 AS activated_ms,
            CASE WHEN bool_or(status IN ('pending', 'active', 'revoking')) THEN NULL
                 ELSE extract(epoch FROM max(revoked_at)) * 1000 END AS revoked_ms
       FROM deploy_keys WHERE binding->>'kind' = 'kubernetes-job' AND binding->>'uid' = ANY($1)
      GROUP BY 1`,
    [uids],
  );
  return rows.map((row) => ({
    uid: row.uid,
    activated_ms: row.activated_ms === null ? null : Number(row.activated_ms),
    revoked_ms: row.revoked_ms === null ? null : Number(row.revoked_ms),
  }));
}

async function waitForKeys(uids: string[], field: 'activated_ms' | 'revoked_ms', timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await jobKeys(bench, uids);
    const done = rows.filter((row) => row[field] !== null);
    if (done.length === uids.length) return rows;
    check(Date.now() < deadline, `only ${done.length} of ${uids.length} Jobs ${field} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

const { cluster } = bench.standIns.kubernetes;
const startJob = (name: string, outcome: JobOutcome) => {
  const job = cluster.createJob({
    namespace: NAMESPACE,
    name,
    serviceAccountName: 'trainer',
    annotations: { 'deploykey.dev/keys': 'github:acme/models', 'deploykey.dev/ttl': '1h' },
    ...(outcome === 'oom-killed' ? { backoffLimit: 0 } : {}),
  });
  return job.metadata.uid as string;
};

try {
  const controller = await startServiceProcess(bench, 'controller');
  const memory = controller.rssSampler(100);
  // The first key also opens the controller's connections to the host, Vault and the API.
  await waitForKeys([startJob('warm-up', 'complete')], 'activated_ms', 30_000);

  const endToRevokedMs: number[] = [];
  const startToKeyMs: number[] = [];
  let issuingMs = 0;
  const waves = Math.ceil(jobCount / waveSize);
  console.error(`controller: ${jobCount} annotated Jobs in ${waves} waves of ${waveSize}`);
  for (let wave = 0; wave < waves; wave += 1) {
    const size = Math.min(waveSize, jobCount - wave * waveSize);
    const jobs = Array.from({ length: size }, (_, i) => ({
      name: `bench-${wave}-${i}`,
      outcome: OUTCOMES[i % OUTCOMES.length] as JobOutcome,
      uid: '',
      startedAt: 0,
      endedAt: 0,
    }));
    const waveStarted = Date.now();
    for (const job of jobs) {
      job.startedAt = Date.now();
      job.uid = startJob(job.name, job.outcome);
    }
    const issued = await waitForKeys(
      jobs.map((job) => job.uid),
      'activated_ms',
      60_000,
    );
    const activated = new Map(issued.map((row) => [row.uid, row.activated_ms as number]));
    issuingMs += Math.max(...activated.values()) - waveStarted;
    for (const job of jobs) startToKeyMs.push((activated.get(job.uid) as number) - job.startedAt);

    await Promise.all(
      jobs.map(async (job, i) => {
        await sleep(i * END_SPACING_MS);
        await cluster.endJob(NAMESPACE, job.name, job.outcome);
        job.endedAt = Date.now();
      }),
    );
    const revoked = await waitForKeys(
      jobs.map((job) => job.uid),
      'revoked_ms',
      60_000,
    );
    const revokedAt = new Map(revoked.map((row) => [row.uid, row.revoked_ms as number]));
    for (const job of jobs) endToRevokedMs.push((revokedAt.get(job.uid) as number) - job.endedAt);
    console.error(`wave ${wave + 1}/${waves}: ${size} Jobs issued and revoked`);
  }
  const rss = memory.stop();
  const { rows: failed } = await bench.database.pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM deploy_keys WHERE binding->>'kind' = 'kubernetes-job' AND status = 'failed'",
  );
  const endToRevoked = percentiles(endToRevokedMs);
  emit({
    benchmark: 'controller',
    jobs: jobCount,
    waves,
    waveSize,
    endSpacingMs: END_SPACING_MS,
    outcomes: OUTCOMES,
    jobEndToRevokedMs: endToRevoked,
    targetP99Ms: 2_000,
    p99WithinTarget: endToRevoked.p99 <= 2_000,
    jobStartToKeyMs: percentiles(startToKeyMs),
    keysIssuedPerSecond: round(jobCount / (issuingMs / 1000)),
    issueAttemptsFailedThenRetried: Number(failed[0]?.n),
    controllerRssMb: { peak: rss.peakMb, last: rss.lastMb, samples: rss.samples },
    hostBudget: { service: HOST_WRITES, standInRateLimit: 'none' },
    loadAverage: loadavg().map((value) => round(value, 2)),
    note: 'Ended = the moment the stand-in gave the Job its final condition or deleted it; revoked = revoked_at (host key and Vault secret gone). Waves are issued all at once, then ended 25 ms apart.',
  });
  await controller.stop();
} finally {
  await bench.close();
}
