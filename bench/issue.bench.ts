// Issue throughput and latency through HTTP with real auth, against the same work done bare.
// Usage: node --import tsx bench/issue.bench.ts [--quick] [--keys N] [--concurrency C]
// Prints one JSON object on stdout; progress goes to stderr.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { keyTitle } from '../src/hosts/git-host.ts';
import { generateDeployKeyPair } from '../src/keys/ssh-keypair.ts';
import { TEST_REDIS_URL } from '../test/support/redis.ts';
import {
  activeKeyCount,
  BENCH_REPOSITORY,
  type BenchProcess,
  type BenchService,
  benchArgs,
  check,
  emit,
  fastPublicKey,
  issueThrough,
  percentiles,
  round,
  runConcurrent,
  startBenchService,
  startServiceProcess,
} from './support.ts';

const args = benchArgs({ keys: '', concurrency: '' });
const keys = args.number('keys', 2_000, 300);
const concurrency = args.number('concurrency', 32, 32);
const warmup = Math.min(args.quick ? 5 : 50, keys);
const TTL = 3_600;
/** A typical per-caller limit: an issue under a limited rule counts live keys up to it. */
const LIMIT_CHECK_UP_TO = 50;

/**
 * Runs `task`, with this process's CPU and event-loop utilisation over exactly that window, and the
 * service process's CPU when there is one.
 */
async function measured(count: number, task: (index: number) => Promise<void>, service?: BenchProcess) {
  const serviceCpu0 = await service?.cpuMs();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const run = await runConcurrent(count, concurrency, task);
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const serviceCpu1 = await service?.cpuMs();
  const ok = run.latencies.length;
  check(run.errors === 0, `${run.errors} of ${count} failed: ${run.firstError}`);
  return {
    count: ok,
    seconds: round(run.seconds, 3),
    perSecond: round(ok / run.seconds),
    latencyMs: percentiles(run.latencies),
    benchProcessCpuMsPerOp: round((cpu.user + cpu.system) / 1000 / ok, 2),
    benchEventLoopUtilization: round(elu.utilization, 2),
    ...(serviceCpu0 === undefined || serviceCpu1 === undefined
      ? {}
      : { serviceProcessCpuMsPerKey: round((serviceCpu1 - serviceCpu0) / ok, 2) }),
  };
}

/** The same work as one issue, each step done directly: no service, no audit, no HTTP in front. */
async function baseline(bench: BenchService) {
  const { github, vault } = bench.standIns;
  const pool = bench.database.pool;
  await pool.query(
    'CREATE TABLE bench_scratch (id uuid PRIMARY KEY, job_id text NOT NULL, public_key text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
  );
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  const queue = new Queue('bench-scratch', { connection, prefix: bench.redisPrefix });
  const step = async (index: number) => {
    const id = randomUUID();
    const jobId = `bare-${index}`;
    const pair = generateDeployKeyPair(keyTitle(id, jobId));
    const added = await fetch(`${github.api.url}/repos/${BENCH_REPOSITORY}/keys`, {
      method: 'POST',
      headers: { authorization: `token ${github.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: keyTitle(id, jobId), key: pair.publicKey, read_only: true }),
    });
    check(added.status === 201, `host POST answered ${added.status}`);
    await added.arrayBuffer();
    const written = await fetch(`${vault.addr}/v1/${vault.mount}/data/bench-bare/${jobId}`, {
      method: 'POST',
      headers: { 'x-vault-token': vault.token, 'content-type': 'application/json' },
      body: JSON.stringify({ data: { 'ssh-privatekey': pair.privateKey, 'ssh-publickey': pair.publicKey } }),
    });
    check(written.status === 200, `Vault write answered ${written.status}`);
    await written.arrayBuffer();
    await pool.query('INSERT INTO bench_scratch (id, job_id, public_key) VALUES ($1, $2, $3)', [
      id,
      jobId,
      pair.publicKey,
    ]);
    await queue.add('revoke', { keyId: id }, { jobId: `revoke-${id}`, delay: TTL * 1000 });
  };
  try {
    await runConcurrent(warmup, concurrency, (i) => step(keys + i));
    return await measured(keys, step);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

async function viaService(bench: BenchService, service: BenchProcess) {
  const issue = (jobId: string) => issueThrough(bench, service.url, jobId);
  await runConcurrent(warmup, concurrency, (i) => issue(`warm-${i}`));
  return measured(keys, (i) => issue(`job-${i}`), service);
}

/** Each step of an issue alone, at the same concurrency, through the service's own clients. */
async function steps(bench: BenchService) {
  const { container } = bench.service;
  const github = container.hosts.get('github');
  check(github, 'no github host');
  const caller = (
    await bench.database.pool.query<{ caller: string }>('SELECT caller FROM deploy_keys LIMIT 1')
  ).rows[0]?.caller;
  check(caller, 'no key was issued');
  const count = Math.min(keys, args.quick ? 20 : 300);
  const time = async (task: (index: number) => Promise<unknown>) => {
    const run = await runConcurrent(count, concurrency, async (i) => {
      await task(i);
    });
    check(run.errors === 0, `${run.errors} step calls failed: ${run.firstError}`);
    return { perSecond: round(count / run.seconds), latencyMs: percentiles(run.latencies) };
  };
  const future = new Date(Date.now() + TTL * 1000);
  const publicKeys = Array.from({ length: count }, (_, i) => fastPublicKey(`step-${i}`));
  return {
    keyPair: await time(async (i) => generateDeployKeyPair(`step-${i}`)),
    auditAppend: await time((i) =>
      container.keys.recordEvent({ actor: 'bench', action: 'bench.step', details: { i } }),
    ),
    countLiveForCaller: await time(() => container.keys.countLiveForCaller(caller, LIMIT_CHECK_UP_TO)),
    hostAddDeployKey: await time(async (i) => {
      await github.addDeployKey({
        repository: BENCH_REPOSITORY,
        title: keyTitle(randomUUID(), `step-${i}`),
        publicKey: publicKeys[i]!,
        expiresAt: future,
        caller: 'token:test',
      });
    }),
    vaultWriteMetadataAndData: await time((i) =>
      container.secrets.write(
        `deploy-keys/step-${i}/github/${BENCH_REPOSITORY}`,
        { privateKey: 'x', publicKey: 'y', knownHosts: '', fingerprint: 'z' },
        { keyId: randomUUID(), expiresAt: future },
      ),
    ),
    queueSchedule: await time(() => container.revokeQueue.scheduleRevoke(randomUUID(), future)),
  };
}

const bench = await startBenchService({ worker: false });
let api: BenchProcess | undefined;
try {
  // The service as deployed: the API in its own process, compiled; this process holds the
  // stand-ins and the load generator, and runs the baseline.
  api = await startServiceProcess(bench, 'api');
  console.error(`issue: ${keys} keys at concurrency ${concurrency}`);
  const bare = await baseline(bench);
  console.error(`baseline: ${bare.perSecond}/s, p99 ${bare.latencyMs.p99} ms`);
  const service = await viaService(bench, api);
  console.error(`service: ${service.perSecond}/s, p99 ${service.latencyMs.p99} ms`);
  const active = await activeKeyCount(bench);
  check(active === keys + warmup, `expected ${keys + warmup} active keys, found ${active}`);
  const stepTimes = await steps(bench);
  const ratio = round(service.perSecond / bare.perSecond, 2);
  const p99Ratio = round(service.latencyMs.p99 / bare.latencyMs.p99, 2);
  const appendBound = round(stepTimes.auditAppend.perSecond / 2);
  const met = { throughputRatio: ratio >= 0.8, p99: service.latencyMs.p99 <= 2 * bare.latencyMs.p99 };
  emit({
    benchmark: 'issue',
    keys,
    concurrency,
    service,
    baseline: bare,
    ratio,
    p99Ratio,
    stepsAlone: stepTimes,
    targets: { throughputRatio: '>= 0.8', p99: '<= 2 x baseline p99' },
    met,
    notes: [
      'The service runs as deployed: `deploykey serve --role api`, compiled (npm run build), in its own process. This benchmark process holds the GitHub/GitLab/Vault stand-ins and the load generator, and runs the baseline itself; Postgres and Redis are separate processes; all share the same 2 cores. serviceProcessCpuMsPerKey is the API process alone (from /proc); benchProcessCpuMsPerOp is this process (stand-ins + client, and for the baseline also the key pair and the bare calls).',
      "Per key the service does more than the bare sequence: token lookup, policy count of the caller's live keys, two audit appends (key.requested, key.issued), each one statement together with its state change, group-committed under the global chain lock, a Vault metadata write before the data write, a BullMQ add, and an HTTP request/response with schema validation and rate-limit counting in Redis.",
      `Each audit append holds pg_advisory_xact_lock on the chain until it commits; one append per transaction (auditAppend, a policy denial's path) at concurrency ${concurrency} runs at ${stepTimes.auditAppend.perSecond}/s, which would cap issues near ${appendBound}/s. The key changes of an issue are group-committed (src/audit/audit-group-commit.ts): those arriving during a commit share the next one, so that figure no longer bounds issues.`,
      `The live-key limit check runs only when a rule with maxActiveKeys applies to the caller (none does here), and counts up to the largest such limit: counted up to ${LIMIT_CHECK_UP_TO} with ${keys + warmup} live keys it takes p50 ${stepTimes.countLiveForCaller.latencyMs.p50} ms (bench/live-keys.bench.ts compares few and many live keys).`,
      ...(met.throughputRatio && met.p99
        ? []
        : [
            'Target not met: see stepsAlone for the per-step throughput that bounds the service (the slowest step per key, with the two audit appends counted twice).',
          ]),
    ],
  });
} finally {
  await api?.stop();
  await bench.close();
}
