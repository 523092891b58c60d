// The faults: stand-ins failing a share of requests, processes SIGKILLed at seeded-random moments,
// and one loss of every Redis key under the run's prefix.
import type { Redis } from 'ioredis';
import type { StandIns } from '../../sandbox/stand-ins.ts';
import type { ServiceProcess } from './processes.ts';
import { type Random, sleep } from './random.ts';
import { deletePrefix, dropConnectionsOf } from './redis-prefix.ts';

// Longer than the service's 10 s per-request host deadline, so the caller gives up while the host
// still does the work: the nastiest kind of time-out.
const HOST_TIMEOUT_LATENCY_MS = 10_500;

export interface ChaosLog {
  kills: { api: number; worker: number; both: number };
  redisFlush?: { keysDeleted: number; connectionsDropped: number; atMs: number };
  /** The fault "Vault token expired/revoked" (vault-login.ts). */
  vaultAuth: { vaultTokensRevoked: number; vaultLoginDownMs: number };
}

/** About 10% of host requests fail (500, 429, time-out) and 5% of Vault requests answer 500. */
export function injectStandInFaults(standIns: StandIns): void {
  for (const host of [standIns.github.api, standIns.gitlab.api]) {
    host.faults.add({ status: 500, probability: 0.034 });
    host.faults.add({ status: 429, probability: 0.034, headers: { 'retry-after': '1' } });
    host.faults.add({ latencyMs: HOST_TIMEOUT_LATENCY_MS, probability: 0.034 });
  }
  standIns.vault.faults.add({ status: 500, probability: 0.05 });
}

export function clearStandInFaults(standIns: StandIns): void {
  for (const injector of [standIns.github.api.faults, standIns.gitlab.api.faults, standIns.vault.faults]) {
    injector.clear();
  }
}

export async function runKiller(options: {
  api: ServiceProcess;
  worker: ServiceProcess;
  kills: number;
  durationMs: number;
  random: Random;
  redis: Redis;
  redisPrefix: string;
  log: ChaosLog;
}): Promise<void> {
  const { api, worker, random, log } = options;
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  // Drawn up front so the schedule depends on the seed alone, not on how long restarts take. A
  // kill lands whatever the process is doing, also in the middle of its restart.
  const plan = Array.from({ length: options.kills }, (_, index) => ({
    at: random.int(2_000, options.durationMs - 2_000),
    targets: [[api, worker], [api], [worker]][index % 3] as ServiceProcess[],
    pauseMs: random.int(300, 1_500),
  }));

  const kill = async ({ at, targets, pauseMs }: (typeof plan)[number]) => {
    await sleep(at);
    const generations = await Promise.all(targets.map((target) => target.kill()));
    if (targets.length === 2) log.kills.both += 1;
    else log.kills[targets[0]?.role === 'worker' ? 'worker' : 'api'] += 1;
    await sleep(pauseMs);
    await Promise.all(targets.map((target, index) => target.start(generations[index])));
  };

  const flush = async () => {
    await sleep(Math.round(options.durationMs * 0.55));
    // Mid-restart processes hold no connections to drop; wait (briefly) until both are up.
    for (let waited = 0; waited < 20_000 && !(api.up() && worker.up()); waited += 200) {
      await sleep(200);
    }
    const keysDeleted = await deletePrefix(options.redis, options.redisPrefix);
    const pids = [api.pid(), worker.pid()].filter((pid): pid is number => pid !== undefined);
    const connectionsDropped = await dropConnectionsOf(options.redis, pids);
    log.redisFlush = { keysDeleted, connectionsDropped, atMs: elapsed() };
  };

  await Promise.all([...plan.map(kill), flush()]);
}
