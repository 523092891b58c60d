// Issue throughput with one API process and with two on the same Postgres and Redis, one worker
// beside them either way, and what bounds the second API's gain on this machine: every process's
// CPU per key and how busy the machine's cores were over the window.
// Usage: node --import tsx bench/issue-scaling.bench.ts [--quick] [--keys N] [--concurrency C]
// Prints one JSON object on stdout; progress goes to stderr.
import { performance } from 'node:perf_hooks';
import {
  activeKeyCount,
  type BenchProcess,
  benchArgs,
  check,
  emit,
  issueThrough,
  machineCpuMs,
  percentiles,
  round,
  runConcurrent,
  startBenchService,
  startServiceProcess,
} from './support.ts';

const args = benchArgs({ keys: '', concurrency: '' });
const keys = args.number('keys', 2_000, 300);
const concurrency = args.number('concurrency', 32, 32);
/** Issues per API process before the window, so each API has compiled its hot paths. */
const warmupPerApi = args.quick ? 10 : 50;
const TARGET_RATIO = 1.6;
/** At or above this share of a whole (all cores, one core, one event loop), it counts as saturated. */
const SATURATED = 0.9;

type Configuration = Awaited<ReturnType<typeof configuration>>;

/**
 * `apiCount` API processes and one worker process on fresh stand-ins, database and Redis prefix;
 * `keys` issues at `concurrency`, sent round-robin over the APIs.
 */
async function configuration(apiCount: number) {
  const bench = await startBenchService({ worker: false });
  const started: BenchProcess[] = [];
  try {
    started.push(await startServiceProcess(bench, 'worker'));
    while (started.length <= apiCount) started.push(await startServiceProcess(bench, 'api'));
    const apis = started.slice(1);
    const issue = (i: number, tag: string) => issueThrough(bench, apis[i % apiCount]!.url, `${tag}-${i}`);
    const warm = await runConcurrent(warmupPerApi * apiCount, concurrency, (i) => issue(i, 'warm'));
    check(warm.errors === 0, `warm-up: ${warm.errors} issues failed: ${warm.firstError}`);

    const machine0 = await machineCpuMs();
    const services0 = await Promise.all(started.map((service) => service.cpuMs()));
    const own0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const run = await runConcurrent(keys, concurrency, (i) => issue(i, 'job'));
    const elu = performance.eventLoopUtilization(elu0);
    const own = process.cpuUsage(own0);
    const services = (await Promise.all(started.map((service) => service.cpuMs()))).map(
      (ms, i) => ms - services0[i]!,
    );
    const machine1 = await machineCpuMs();
    check(run.errors === 0, `${run.errors} of ${keys} issues failed: ${run.firstError}`);
    const active = await activeKeyCount(bench);
    const expected = keys + warmupPerApi * apiCount;
    check(active === expected, `expected ${expected} active keys, found ${active}`);

    const ownMs = (own.user + own.system) / 1000;
    const [workerMs, ...apiMs] = services as [number, ...number[]];
    const apisMs = apiMs.reduce((sum, ms) => sum + ms, 0);
    const busyMs = machine1.busy - machine0.busy;
    const busyShare = busyMs / (machine1.total - machine0.total);
    const perSecond = keys / run.seconds;
    const coreShare = (ms: number) => round(ms / 1000 / run.seconds, 2);
    const perKey = (ms: number) => round(ms / keys, 2);
    return {
      apiProcesses: apiCount,
      seconds: round(run.seconds, 3),
      perSecond: round(perSecond),
      latencyMs: percentiles(run.latencies),
      apis: apiMs.map((ms, i) => {
        const served = Math.ceil((keys - i) / apiCount);
        return { keysServed: served, cpuMsPerKeyServed: round(ms / served, 2), coreShare: coreShare(ms) };
      }),
      worker: { coreShare: coreShare(workerMs) },
      benchProcess: { coreShare: coreShare(ownMs), eventLoopUtilization: round(elu.utilization, 2) },
      // Per key issued; `rest` is the machine's busy time the processes here do not account for:
      // Postgres, Redis, the kernel's own work and anything else running.
      cpuMsPerKey: {
        apis: perKey(apisMs),
        worker: perKey(workerMs),
        benchProcess: perKey(ownMs),
        rest: perKey(busyMs - ownMs - workerMs - apisMs),
        machineBusy: perKey(busyMs),
      },
      machine: { busyShare: round(busyShare, 2), keysPerSecondWithCoresFull: round(perSecond / busyShare) },
    };
  } finally {
    for (const service of started.reverse()) await service.stop().catch(() => {});
    await bench.close();
  }
}

/** The first thing that was saturated with two APIs, from the cores down to one event loop. */
function boundBy(two: Configuration, ratio: number): string {
  if (ratio >= TARGET_RATIO) return 'none at this size';
  if (two.machine.busyShare >= SATURATED) return 'cores';
  if (two.benchProcess.eventLoopUtilization >= SATURATED) return 'benchmark process event loop';
  if (two.apis.some((api) => api.coreShare >= SATURATED)) return 'an API process core';
  return 'not CPU (waits)';
}

console.error(`issue scaling: ${keys} keys at concurrency ${concurrency}, one API then two`);
const one = await configuration(1);
console.error(
  `one API: ${one.perSecond}/s, p99 ${one.latencyMs.p99} ms, machine busy ${one.machine.busyShare}`,
);
const two = await configuration(2);
console.error(
  `two APIs: ${two.perSecond}/s, p99 ${two.latencyMs.p99} ms, machine busy ${two.machine.busyShare}`,
);
const ratio = round(two.perSecond / one.perSecond, 2);
const bound = boundBy(two, ratio);
emit({
  benchmark: 'issue-scaling',
  keys,
  concurrency,
  oneApi: one,
  twoApis: two,
  scaling: { throughputRatio: ratio, boundBy: bound },
  targets: { throughputRatio: `>= ${TARGET_RATIO} where the cores allow it` },
  met: { throughputRatio: ratio >= TARGET_RATIO },
  notes: [
    'Each configuration runs on fresh stand-ins, database and Redis prefix: one worker process and one or two API processes (`deploykey serve`, compiled, each its own process), all on the same Postgres and Redis. This benchmark process holds the GitHub/GitLab/Vault stand-ins and the load generator, which sends every configuration the same keys at the same concurrency, round-robin over its APIs; every process shares the same cores.',
    "CPU comes from /proc for the service processes and from process.cpuUsage for this one. cpuMsPerKey is per key issued, all APIs together; each API's cpuMsPerKeyServed is per key it answered; coreShare is CPU ms per wall-clock ms (1 = one core busy). machine.busyShare is busy over total CPU time of all cores over the window (/proc/stat); cpuMsPerKey.rest is the machine's busy time the processes here do not account for (Postgres, Redis, the kernel, anything else running); keysPerSecondWithCoresFull is the rate the same CPU per key would give with every core busy.",
    `boundBy names the first thing saturated (>= ${SATURATED}) with two APIs: the machine's cores, this process's event loop (stand-ins and load generator), an API process's core; 'not CPU (waits)' when none was, i.e. time spent waiting on Postgres, Redis or the stand-ins.`,
    `CPU per key, one API -> two: APIs ${one.cpuMsPerKey.apis} -> ${two.cpuMsPerKey.apis} ms, worker ${one.cpuMsPerKey.worker} -> ${two.cpuMsPerKey.worker}, this process ${one.cpuMsPerKey.benchProcess} -> ${two.cpuMsPerKey.benchProcess}, rest ${one.cpuMsPerKey.rest} -> ${two.cpuMsPerKey.rest}; machine ${one.cpuMsPerKey.machineBusy} -> ${two.cpuMsPerKey.machineBusy} ms busy per key, cores ${Math.round(one.machine.busyShare * 100)}% -> ${Math.round(two.machine.busyShare * 100)}% busy.`,
  ],
});
