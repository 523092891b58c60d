// Revoke speed: many jobs completed at once (against a bare host DELETE + Vault metadata delete),
// then many keys expiring in the same second (lateness).
// Usage: node --import tsx bench/revoke.bench.ts [--quick] [--keys N] [--jobs J] [--expiring E]
// Prints one JSON object on stdout; progress goes to stderr.
import { randomUUID } from 'node:crypto';
import {
  type BenchProcess,
  type BenchService,
  benchArgs,
  check,
  emit,
  fastPublicKey,
  percentiles,
  round,
  runConcurrent,
  type SeedKey,
  seedActiveKeys,
  seedHostKey,
  startBenchService,
  startServiceProcess,
  waitRevoked,
} from './support.ts';

const args = benchArgs({ keys: '', jobs: '', expiring: '' });
const keyCount = args.number('keys', 1_000, 200);
const jobs = args.number('jobs', 100, 20);
const expiring = args.number('expiring', 1_000, 200);
const REPOSITORIES = Array.from(
  { length: Math.max(1, Math.ceil(keyCount / jobs)) },
  (_, i) => `acme/repo-${i}`,
);
const LONG = 3_600_000;

async function revokedSpread(bench: BenchService, ids: string[], from: 'revoke_requested_at' | 'expires_at') {
  const { rows } = await bench.database.pool.query<{ ms: number; done: Date; start: Date }>(
    `SELECT extract(epoch FROM revoked_at - ${from}) * 1000 AS ms, revoked_at AS done, ${from} AS start
       FROM deploy_keys WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  const starts = rows.map((row) => row.start.getTime());
  const ends = rows.map((row) => row.done.getTime());
  const seconds = (Math.max(...ends) - Math.min(...starts)) / 1000;
  return {
    latencyMs: percentiles(rows.map((row) => Number(row.ms))),
    seconds: round(seconds, 3),
    perSecond: round(rows.length / seconds),
  };
}

/** The revoke's external work done bare: host DELETE, then Vault metadata DELETE. */
async function baseline(bench: BenchService, count: number, concurrency: number) {
  const { github, vault } = bench.standIns;
  const made: { repository: string; hostKeyId: string; path: string }[] = [];
  const seed = await runConcurrent(count, 32, async (i) => {
    const repository = REPOSITORIES[i % REPOSITORIES.length]!;
    const id = seedHostKey(bench, repository, `bare ${i}`, fastPublicKey(`bare-${i}`));
    const path = `bench-bare/${randomUUID()}`;
    const written = await fetch(`${vault.addr}/v1/${vault.mount}/data/${path}`, {
      method: 'POST',
      headers: { 'x-vault-token': vault.token, 'content-type': 'application/json' },
      body: JSON.stringify({ data: { 'ssh-privatekey': 'bare' } }),
    });
    check(written.status === 200, `Vault write answered ${written.status}`);
    made[i] = { repository, hostKeyId: String(id), path };
  });
  check(seed.errors === 0, `baseline seeding failed: ${seed.firstError}`);
  const run = await runConcurrent(count, concurrency, async (i) => {
    const { repository, hostKeyId, path } = made[i]!;
    const deleted = await fetch(`${github.api.url}/repos/${repository}/keys/${hostKeyId}`, {
      method: 'DELETE',
      headers: { authorization: `token ${github.token}` },
    });
    check(deleted.status === 204, `host DELETE answered ${deleted.status}`);
    const destroyed = await fetch(`${vault.addr}/v1/${vault.mount}/metadata/${path}`, {
      method: 'DELETE',
      headers: { 'x-vault-token': vault.token },
    });
    check(destroyed.status === 204, `Vault metadata DELETE answered ${destroyed.status}`);
  });
  check(run.errors === 0, `baseline failed: ${run.firstError}`);
  return {
    seconds: round(run.seconds, 3),
    perSecond: round(count / run.seconds),
    latencyMs: percentiles(run.latencies),
  };
}

async function completeJobs(bench: BenchService) {
  const planned: SeedKey[] = Array.from({ length: keyCount }, (_, i) => ({
    jobId: `job-${i % jobs}`,
    repository: REPOSITORIES[Math.floor(i / jobs) % REPOSITORIES.length]!,
    expiresAt: new Date(Date.now() + LONG),
  }));
  const ids = await seedActiveKeys(bench, planned);
  console.error(`revoke: seeded ${keyCount} active keys across ${jobs} jobs`);
  const started = performance.now();
  const answers = await Promise.all(
    Array.from({ length: jobs }, (_, j) => bench.api('POST', `/v1/jobs/job-${j}/complete`)),
  );
  const callsMs = performance.now() - started;
  check(
    answers.every((answer) => answer.status === 202),
    'a job completion was not accepted',
  );
  await waitRevoked(bench, ids, 120_000);
  const wallSeconds = (performance.now() - started) / 1000;
  return { ids, callsMs, wallSeconds, spread: await revokedSpread(bench, ids, 'revoke_requested_at') };
}

async function expiry(bench: BenchService) {
  const planned: SeedKey[] = Array.from({ length: expiring }, (_, i) => ({
    jobId: `exp-${i}`,
    repository: REPOSITORIES[i % REPOSITORIES.length]!,
    expiresAt: new Date(Date.now() + LONG),
  }));
  const ids = await seedActiveKeys(bench, planned);
  // Seeded far out, then all moved to one whole second just ahead, as issue would have scheduled them.
  const target = Math.ceil((Date.now() + 1_000 + expiring * 3) / 1000) * 1000;
  const dueAt = (i: number) => new Date(target + Math.floor((i * 1000) / expiring));
  await bench.database.pool.query(
    `UPDATE deploy_keys AS k SET expires_at = d.at
       FROM unnest($1::uuid[], $2::timestamptz[]) AS d(id, at) WHERE k.id = d.id`,
    [ids, ids.map((_, i) => dueAt(i))],
  );
  const { revokeQueue } = bench.service.container;
  const moved = await runConcurrent(ids.length, 32, async (i) => {
    await revokeQueue.cancel(ids[i]!);
    await revokeQueue.scheduleRevoke(ids[i]!, dueAt(i));
  });
  check(moved.errors === 0, `rescheduling failed: ${moved.firstError}`);
  const scheduledBeforeDue = Date.now() < target;
  console.error(`revoke: ${expiring} keys expiring in one second, ${target - Date.now()} ms ahead`);
  await waitRevoked(bench, ids, 120_000 + Math.max(0, target - Date.now()));
  return { scheduledBeforeDue, spread: await revokedSpread(bench, ids, 'expires_at') };
}

const bench = await startBenchService({ repositories: REPOSITORIES, worker: false });
let worker: BenchProcess | undefined;
try {
  const workerConcurrency = bench.service.config.worker.concurrency;
  // The worker as deployed: `serve --role worker`, compiled, in its own process. This process holds
  // the stand-ins, answers the job completions (the API) and runs the baseline.
  worker = await startServiceProcess(bench, 'worker');
  const workerCpu0 = await worker.cpuMs();
  const completed = await completeJobs(bench);
  const workerCpuMsPerRevoke = round(((await worker.cpuMs()) - workerCpu0) / keyCount, 2);
  console.error(`revoke: completed jobs revoked at ${completed.spread.perSecond}/s`);
  const bare = await baseline(bench, keyCount, workerConcurrency);
  console.error(`revoke: bare at ${bare.perSecond}/s`);
  const expired = await expiry(bench);
  const ratio = round(completed.spread.perSecond / bare.perSecond, 2);
  const met = {
    throughputRatio: ratio >= 0.8,
    expiryLatenessP99: expired.spread.latencyMs.p99 <= 1_000,
  };
  emit({
    benchmark: 'revoke',
    workerConcurrency,
    jobCompletion: {
      keys: keyCount,
      jobs,
      completeCallsMs: round(completed.callsMs),
      wallSeconds: round(completed.wallSeconds, 3),
      completionToRevokedMs: completed.spread.latencyMs,
      perSecond: completed.spread.perSecond,
      workerProcessCpuMsPerKey: workerCpuMsPerRevoke,
    },
    baseline: bare,
    ratio,
    expiry: {
      keys: expiring,
      scheduledBeforeDue: expired.scheduledBeforeDue,
      latenessMs: expired.spread.latencyMs,
      perSecond: expired.spread.perSecond,
      // Keys due evenly over one second, served at the bare calls' rate R: the last waits N/R - 1 s.
      bareCallsLatenessP99MsEstimate: round(
        Math.max(0, 0.99 * (expiring / bare.perSecond - 1) * 1000) + bare.latencyMs.p50,
      ),
    },
    targets: { throughputRatio: '>= 0.8', expiryLatenessP99Ms: '<= 1000' },
    met,
    notes: [
      'Active keys are seeded as an issue leaves them (host key, Vault secret with its ownership metadata, active row, delayed BullMQ revoke job) but without the issue flow: no key.requested/key.issued audit events and a node:crypto public key instead of the sshpk pair, so seeding is fast. Revokes themselves run through the real worker and audit.',
      'completionToRevokedMs is revoked_at - revoke_requested_at per key; perSecond is keys / (last revoked_at - first revoke_requested_at).',
      `Each service revoke does: BullMQ job fetch, row read, a revoking->revoked transition with an audit append under the global chain lock (group-committed with the other changes in flight) (plus the revoking transition with its own append when the job completion marks it), host DELETE, Vault metadata read (ownership check) and metadata DELETE. The worker runs ${workerConcurrency} jobs at once in its own process (compiled, as deployed); the baseline runs at that concurrency from this process, which also holds the stand-ins.`,
      "Expiry: keys are seeded with a far expiry, then their rows and delayed revoke jobs are moved to one whole second just ahead (spread evenly over it). Lateness is revoked_at - expires_at. With N keys due evenly over a second and revokes done at R a second, the last one waits about N / R - 1 s, so lateness is bounded by the same per-revoke cost as job completion; bareCallsLatenessP99MsEstimate applies that to the bare calls' own rate, the least any revoke that starts at expiry could achieve here.",
    ],
  });
} finally {
  await worker?.stop();
  await bench.close();
}
