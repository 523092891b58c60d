// The burst benchmark's pool row: the same burst of issue requests served by one GitHub App, then
// by two Apps in a credential pool, against a stand-in that refuses more than 20 writes a second
// per identity (as GitHub counts its secondary limits). Each App keeps its own budget, so the pool
// should serve the burst at about twice the rate, with no refusal by the host either way.
import { hostsWithAppPool, installSecondApp } from '../sandbox/app-pool.ts';
import { type StandIns, serviceSettingsFor } from '../sandbox/stand-ins.ts';
import { BENCH_REPOSITORY, check, round, runConcurrent, startBenchService } from './support.ts';

const HOST_WRITES_PER_SECOND_PER_IDENTITY = 20;
// Per credential: a fifth under the host's limit, as the main row; a bound long enough that the
// single App serves the whole burst too, so both rows count keys, not refusals.
const BUDGET = { concurrency: 4, minIntervalMs: 0, requestsPerMinute: 16 * 60, maxQueueSeconds: 60 };

function hostsFor(standIns: StandIns, apps: 1 | 2) {
  if (apps === 2) return hostsWithAppPool(standIns, installSecondApp(standIns), BUDGET);
  return serviceSettingsFor(standIns).hosts.map((host) =>
    host.id === 'github' ? { ...host, writes: BUDGET } : host,
  );
}

async function burstWith(apps: 1 | 2, requests: number) {
  const bench = await startBenchService({ fileConfig: (standIns) => ({ hosts: hostsFor(standIns, apps) }) });
  try {
    const { github } = bench.standIns;
    // Installations looked up before the burst, so it measures the write budgets alone.
    await bench.service.container.hosts.get('github')!.checkAccess(BENCH_REPOSITORY);
    github.api.setRateLimit({
      secondary: { writesPerSecond: HOST_WRITES_PER_SECOND_PER_IDENTITY, retryAfterSeconds: 60 },
    });
    const statuses: Record<string, number> = {};
    const run = await runConcurrent(requests, requests, async (i) => {
      const response = await bench.api('POST', '/v1/keys', {
        body: {
          provider: 'github',
          repository: BENCH_REPOSITORY,
          jobId: `pool-${apps}-${i}`,
          delivery: 'vault',
        },
      });
      statuses[response.status] = (statuses[response.status] ?? 0) + 1;
    });
    check(run.errors === 0, `${run.errors} requests got no answer: ${run.firstError}`);
    const hostAnswers = github.api.faults.stats().byStatus;
    const issued = statuses['201'] ?? 0;
    return {
      apps,
      seconds: round(run.seconds, 2),
      answers: statuses,
      keysPerSecond: round(issued / run.seconds, 1),
      hostRefusals: (hostAnswers['403'] ?? 0) + (hostAnswers['429'] ?? 0),
    };
  } finally {
    await bench.close();
  }
}

/** One App, then two in a pool, each serving `requests` issue requests sent at once. */
export async function poolComparison(requests: number) {
  console.error(`burst pool: ${requests} issue requests at once, one App then two`);
  const oneApp = await burstWith(1, requests);
  const twoApps = await burstWith(2, requests);
  const ratio = round(twoApps.keysPerSecond / oneApp.keysPerSecond, 2);
  return {
    row: 'two Apps in a pool against a stand-in limited to 20 writes/s per identity',
    hostLimitWritesPerSecondPerIdentity: HOST_WRITES_PER_SECOND_PER_IDENTITY,
    budgetPerCredential: BUDGET,
    requests,
    oneApp,
    twoApps,
    ratio,
    met: {
      poolNoHostRefusals: oneApp.hostRefusals === 0 && twoApps.hostRefusals === 0,
      poolEveryRequestGotAKey: oneApp.answers['201'] === requests && twoApps.answers['201'] === requests,
      poolAboutTwiceOneApp: ratio >= 1.6,
    },
  };
}
