// Issue cost for one caller with few and with many live keys: the per-caller limit check must not
// grow with the caller's live keys.
// Usage: node --import tsx bench/live-keys.bench.ts [--quick] [--keys N] [--few F] [--many M]
// Prints one JSON object on stdout; progress goes to stderr.
import { randomUUID } from 'node:crypto';
import type { NewDeployKeyRow } from '../src/db/schema.ts';
import {
  BENCH_REPOSITORY,
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
} from './support.ts';

const args = benchArgs({ keys: '', few: '', many: '' });
const keys = args.number('keys', 500, 150);
const few = args.number('few', 100, 100);
const many = args.number('many', 10_000, 10_000);
const CONCURRENCY = 32;
const CALLER = 'token:bench-ci';
/** A typical per-caller limit, for timing the bounded count alone. */
const LIMIT = 50;

/** Live rows for the caller, written directly: only their number matters to the limit check. */
async function seedLiveRows(bench: BenchService, count: number, tag: string) {
  const now = new Date();
  const expiresAt = new Date(now.getTime() + 3_600_000);
  const rows: NewDeployKeyRow[] = Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    provider: 'github',
    repository: BENCH_REPOSITORY,
    repository_key: BENCH_REPOSITORY,
    job_id: `seeded-${tag}-${i}`,
    status: 'active',
    delivery: 'vault',
    caller: CALLER,
    owner: CALLER,
    created_at: now,
    activated_at: now,
    expires_at: expiresAt,
  }));
  for (let first = 0; first < rows.length; first += 1_000) {
    await bench.service.container.db.db
      .insertInto('deploy_keys')
      .values(rows.slice(first, first + 1_000))
      .execute();
  }
  await bench.database.pool.query('ANALYZE deploy_keys');
}

async function liveCount(bench: BenchService): Promise<number> {
  const { rows } = await bench.database.pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM deploy_keys WHERE caller = $1 AND status IN ('pending', 'active', 'revoking')",
    [CALLER],
  );
  return Number(rows[0]?.n);
}

/** Issues `keys` keys through the API process, with its CPU over exactly that window. */
async function issueRun(bench: BenchService, api: BenchProcess, tag: string) {
  const liveBefore = await liveCount(bench);
  const cpu0 = await api.cpuMs();
  const run = await runConcurrent(keys, CONCURRENCY, async (i) => {
    const response = await bench.api('POST', '/v1/keys', {
      body: { provider: 'github', repository: BENCH_REPOSITORY, jobId: `${tag}-${i}`, ttlSeconds: 3_600 },
      baseUrl: api.url,
    });
    check(response.status === 201, `POST /v1/keys answered ${response.status}`);
  });
  const cpu1 = await api.cpuMs();
  check(run.errors === 0, `${run.errors} of ${keys} issues failed: ${run.firstError}`);
  return {
    liveKeysBefore: liveBefore,
    perSecond: round(keys / run.seconds),
    latencyMs: percentiles(run.latencies),
    serviceProcessCpuMsPerKey: round((cpu1 - cpu0) / keys, 2),
  };
}

/** The limit check alone: counted up to a limit, and counted in full (what every issue used to do). */
async function countTimes(bench: BenchService) {
  const repository = bench.service.container.keys;
  const time = async (upTo: number) => {
    const run = await runConcurrent(200, CONCURRENCY, async () => {
      await repository.countLiveForCaller(CALLER, upTo);
    });
    check(run.errors === 0, `count failed: ${run.firstError}`);
    return percentiles(run.latencies).p50;
  };
  return { upToLimitP50Ms: await time(LIMIT), fullCountP50Ms: await time(Number.MAX_SAFE_INTEGER) };
}

const bench = await startBenchService({ worker: false });
let api: BenchProcess | undefined;
try {
  api = await startServiceProcess(bench, 'api');
  await runConcurrent(20, CONCURRENCY, async (i) => {
    const response = await bench.api('POST', '/v1/keys', {
      body: { provider: 'github', repository: BENCH_REPOSITORY, jobId: `warm-${i}`, ttlSeconds: 3_600 },
      baseUrl: api!.url,
    });
    check(response.status === 201, `warm-up issue answered ${response.status}`);
  });
  await seedLiveRows(bench, Math.max(0, few - (await liveCount(bench))), 'few');
  const fewCounts = await countTimes(bench);
  const atFew = await issueRun(bench, api, 'few');
  console.error(`live-keys: ${atFew.perSecond}/s with ${atFew.liveKeysBefore} live keys`);
  await seedLiveRows(bench, Math.max(0, many - (await liveCount(bench))), 'many');
  const manyCounts = await countTimes(bench);
  const atMany = await issueRun(bench, api, 'many');
  console.error(`live-keys: ${atMany.perSecond}/s with ${atMany.liveKeysBefore} live keys`);
  const ratio = round(atMany.perSecond / atFew.perSecond, 2);
  emit({
    benchmark: 'live-keys',
    keys,
    concurrency: CONCURRENCY,
    atFew: { ...atFew, limitCheck: fewCounts },
    atMany: { ...atMany, limitCheck: manyCounts },
    ratio,
    targets: { ratio: '>= 0.8 (flat within ~20%)' },
    met: { flat: ratio >= 0.8 },
    notes: [
      'One caller issues keys through the API process (compiled, its own process) twice: once with few live keys, then with many more seeded as active rows (no host key or secret: only their number matters to the limit check).',
      `limitCheck times countLiveForCaller alone in this process: counted up to a limit of ${LIMIT} (what an issue under such a rule does now) and counted in full (what every issue did before). A caller no limited rule applies to is not counted at all.`,
    ],
  });
} finally {
  await api?.stop();
  await bench.close();
}
