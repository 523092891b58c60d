// The reconciler's sweep after an outage: keys bound to GitHub Actions jobs (several keys per job),
// half of the jobs ended while no webhook reached the service. One pass: the host requests it
// spends (one per job, not per key), how long it takes, and whether every key of an ended job was
// set revoking in it.
// Usage: node --import tsx bench/ci-sweep.bench.ts [--quick] [--keys N] [--jobs J]
// Prints one JSON object on stdout; progress goes to stderr.
import { loadavg } from 'node:os';
import { bindingRefs } from '../src/keys/binding.ts';
import type { KeyBinding } from '../src/model/schemas.ts';
import {
  BENCH_REPOSITORY,
  benchArgs,
  check,
  emit,
  machine,
  round,
  type SeedKey,
  seedActiveKeys,
  startBenchService,
} from './support.ts';

const args = benchArgs({ keys: '', jobs: '' });
const keyCount = args.number('keys', 300, 60);
const jobCount = args.number('jobs', 100, 20);
const JOBS_PER_RUN = 5;

type Described = { run: { id: number }; jobs: { id: number }[] };

const bench = await startBenchService({
  worker: false,
  fileConfig: {
    reconciler: {
      periodSeconds: 3_600,
      pendingTimeoutSeconds: 120,
      orphanScanSeconds: 3_600,
      sweepGraceSeconds: 0,
      sweepJobsPerHost: 1_000,
    },
  },
});
let stopWorker: (() => Promise<void>) | undefined;
try {
  const origin = new URL(bench.standIns.github.api.url).origin;
  const drive = async (path: string, body: unknown) => {
    const response = await fetch(`${origin}/_sandbox/actions/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    check(response.status < 300, `stand-in ${path}: ${response.status}`);
    return (await response.json()) as Described;
  };

  const jobs: { runId: string; checkRunId: string }[] = [];
  while (jobs.length < jobCount) {
    const names = Array.from({ length: JOBS_PER_RUN }, (_, i) => `job-${i}`);
    const { run, jobs: created } = await drive('runs', { repository: BENCH_REPOSITORY, jobs: names });
    for (const job of created) jobs.push({ runId: String(run.id), checkRunId: String(job.id) });
  }
  jobs.length = jobCount;

  console.error(`seeding ${keyCount} keys bound to ${jobCount} jobs`);
  const expiresAt = new Date(Date.now() + 3_600_000);
  const seeds: SeedKey[] = Array.from({ length: keyCount }, (_, i) => ({
    jobId: `sweep-${i}`,
    repository: BENCH_REPOSITORY,
    expiresAt,
  }));
  const ids = await seedActiveKeys(bench, seeds);
  const { container } = bench.service;
  for (const [i, id] of ids.entries()) {
    const job = jobs[i % jobCount]!;
    const binding: KeyBinding = {
      kind: 'github-actions',
      host: 'github',
      repository: BENCH_REPOSITORY,
      runId: job.runId,
      runAttempt: '1',
      checkRunId: job.checkRunId,
    };
    await container.db.db
      .updateTable('deploy_keys')
      .set({ binding: JSON.stringify(binding), binding_refs: bindingRefs(binding) })
      .where('id', '=', id)
      .execute();
  }

  // Every other job ends while the service hears nothing of it.
  const ended = jobs.filter((_, i) => i % 2 === 0);
  for (const job of ended) await drive(`jobs/${job.checkRunId}/complete`, { conclusion: 'cancelled' });
  const endedKeys = ids.filter((_, i) => (i % jobCount) % 2 === 0);

  console.error('one reconciler pass');
  const load = loadavg();
  const started = performance.now();
  const worker = container.startWorker();
  stopWorker = () => worker.stop();
  const report = await worker.reconciler.runOnce();
  const passSeconds = (performance.now() - started) / 1000;

  const { rows } = await bench.database.pool.query<{ id: string }>(
    "SELECT id FROM deploy_keys WHERE revoke_reason = 'job-ended' AND id = ANY($1::uuid[])",
    [ids],
  );
  const revokedInPass = new Set(rows.map((row) => row.id));
  const allEndedRevoked = endedKeys.every((id) => revokedInPass.has(id));
  check(
    revokedInPass.size === endedKeys.length,
    `${revokedInPass.size} keys revoked, ${endedKeys.length} expected`,
  );

  emit({
    benchmark: 'ci-sweep',
    machine: machine(),
    loadAverage1m: round(load[0] ?? 0, 2),
    keys: keyCount,
    jobs: jobCount,
    jobsEnded: ended.length,
    keysOfEndedJobs: endedKeys.length,
    pass: {
      seconds: round(passSeconds, 3),
      hostRequests: report.jobsChecked + report.errors,
      hostRequestsPerKey: round((report.jobsChecked + report.errors) / keyCount, 3),
      jobsChecked: report.jobsChecked,
      keysSetRevoking: report.jobEndRevokes,
      errors: report.errors,
    },
    targets: { hostRequests: `= jobs (${jobCount})`, keysOfEndedJobsRevokedInOnePass: true },
    met: {
      hostRequests: report.jobsChecked + report.errors === jobCount,
      keysOfEndedJobsRevokedInOnePass: allEndedRevoked,
    },
    notes: [
      'Keys are seeded as an issue leaves them (host key, Vault secret, active row, delayed revoke job), then bound to stand-in jobs by writing binding and binding_refs as the issue flow does.',
      "The pass includes the reconciler's other steps (revoke jobs ensured for keys due soon, stuck issues); the orphan scan runs too, once, as the first pass of a worker does.",
      "hostRequests counts the sweep's own reads (one per job asked); the revokes the worker starts meanwhile are host writes paced by the host budget and are not part of it.",
    ],
  });
} finally {
  await stopWorker?.();
  await bench.close();
}
