// A burst of issue requests, all at once, against a GitHub stand-in that refuses more than 20 writes
// a second (403 + retry-after, as GitHub's secondary limit): the service's per-host budget should
// keep it under that limit, answer each request with a key or 503 + Retry-After, and leave nothing
// behind for the refused ones.
// A second row runs a burst with one GitHub App and then with two in a credential pool, the stand-in
// limiting writes per identity (burst-pool.ts).
// Usage: node --import tsx bench/burst.bench.ts [--quick] [--requests N] [--callers K] [--pool-requests N]
// Prints one JSON object on stdout; progress goes to stderr.
import { serviceSettingsFor } from '../sandbox/stand-ins.ts';
import { TITLE_PREFIX } from '../src/hosts/git-host.ts';
import { ownerScope } from '../src/keys/ownership.ts';
import { secretExists } from '../test/support/vault-secrets.ts';
import { poolComparison } from './burst-pool.ts';
import {
  BENCH_REPOSITORY,
  benchArgs,
  check,
  emit,
  percentiles,
  round,
  runConcurrent,
  startBenchService,
} from './support.ts';

const args = benchArgs({ requests: '', callers: '', 'pool-requests': '' });
const requests = args.number('requests', 500, 100);
const callers = args.number('callers', 5, 5);
const poolRequests = args.number('pool-requests', 240, 80);
const HOST_WRITES_PER_SECOND = 20;
// A fifth under the host's limit, spread evenly, so jitter on the way there never adds up to a
// refusal. Requests wait at most 15 s for their turn (the default is 30), so a burst of 500 meets
// both answers: keys for what fits in that time, 503 with Retry-After for the rest.
const BUDGET = { concurrency: 4, minIntervalMs: 0, requestsPerMinute: 16 * 60, maxQueueSeconds: 15 };

let result: Record<string, unknown> & { met: Record<string, boolean> };
const bench = await startBenchService({
  fileConfig: (standIns) => ({
    hosts: serviceSettingsFor(standIns).hosts.map((host) =>
      host.id === 'github' ? { ...host, writes: BUDGET } : host,
    ),
  }),
});
try {
  const { github } = bench.standIns;
  github.api.setRateLimit({ secondary: { writesPerSecond: HOST_WRITES_PER_SECOND, retryAfterSeconds: 60 } });
  const tokens = [bench.token];
  for (let i = 1; i < callers; i += 1) {
    const created = await bench.service.container.tokens.create({
      name: `bench-ci-${i}`,
      role: 'issuer',
      actor: 'bench',
    });
    tokens.push(created.token);
  }
  console.error(`burst: ${requests} issue requests at once from ${callers} callers`);

  const answers: { index: number; status: number; retryAfter: string | null; ms: number; caller: number }[] =
    [];
  const run = await runConcurrent(requests, requests, async (i) => {
    const caller = i % callers;
    const started = performance.now();
    const response = await bench.api('POST', '/v1/keys', {
      body: {
        provider: 'github',
        repository: BENCH_REPOSITORY,
        jobId: `burst-${i}`,
        ttlSeconds: 3_600,
        delivery: 'vault',
      },
      ...(tokens[caller] ? { token: tokens[caller] } : {}),
    });
    answers.push({
      index: i,
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      ms: performance.now() - started,
      caller,
    });
  });
  check(run.errors === 0, `${run.errors} requests got no answer: ${run.firstError}`);

  const byStatus: Record<string, number> = {};
  for (const answer of answers) byStatus[answer.status] = (byStatus[answer.status] ?? 0) + 1;
  const issued = answers.filter((answer) => answer.status === 201);
  const refused = answers.filter((answer) => answer.status === 503);
  const refusedWithRetryAfter = refused.filter((answer) => Number(answer.retryAfter) >= 1);
  const otherStatuses = answers.filter((answer) => answer.status !== 201 && answer.status !== 503);
  const hostAnswers = github.api.faults.stats().byStatus;

  // Nothing left behind: host keys, Vault secrets and rows agree with the answers.
  const repository = github.state.findRepository(BENCH_REPOSITORY);
  check(repository, 'no repository on the stand-in');
  const hostKeys = github.state.listKeys(repository.id).filter((key) => key.title.startsWith(TITLE_PREFIX));
  const rows = await bench.database.pool.query<{ status: string; n: string }>(
    "SELECT status, count(*) AS n FROM deploy_keys WHERE job_id LIKE 'burst-%' GROUP BY status",
  );
  const rowsByStatus = Object.fromEntries(rows.rows.map((row) => [row.status, Number(row.n)]));
  const { secrets, vault } = bench.service.container;
  const secretsOfRefused = await runConcurrent(refused.length, 16, async (i) => {
    const owner = refused[i]!.caller === 0 ? 'token:bench-ci' : `token:bench-ci-${refused[i]!.caller}`;
    const path = secrets.pathFor(ownerScope(owner), `burst-${refused[i]!.index}`, 'github', BENCH_REPOSITORY);
    check(!(await secretExists(vault, secrets.mount, path)), `a Vault secret is left at ${path}`);
  });

  const perCaller = Array.from({ length: callers }, (_, caller) => {
    const mine = answers.filter((answer) => answer.caller === caller);
    return mine.filter((answer) => answer.status === 201).length;
  });
  const nothingLeftBehind =
    hostKeys.length === issued.length &&
    (rowsByStatus.active ?? 0) === issued.length &&
    (rowsByStatus.failed ?? 0) <= refused.length &&
    (rowsByStatus.pending ?? 0) === 0 &&
    secretsOfRefused.errors === 0;
  const met = {
    no5xxButRetryable503: otherStatuses.length === 0,
    every503HasRetryAfter: refusedWithRetryAfter.length === refused.length,
    hostRefusalsAtMostAHandful: (hostAnswers['403'] ?? 0) + (hostAnswers['429'] ?? 0) <= 5,
    nothingLeftBehind,
  };
  result = {
    benchmark: 'burst',
    requests,
    callers,
    hostLimitWritesPerSecond: HOST_WRITES_PER_SECOND,
    budget: BUDGET,
    seconds: round(run.seconds, 2),
    answers: byStatus,
    issuedLatencyMs: percentiles(issued.map((answer) => answer.ms)),
    refusedLatencyMs: percentiles(refused.map((answer) => answer.ms)),
    retryAfterSeconds: percentiles(refused.map((answer) => Number(answer.retryAfter))),
    issuedPerCaller: perCaller,
    hostAnswers,
    leftBehind: {
      hostKeysOfOurs: hostKeys.length,
      rows: rowsByStatus,
      vaultSecretsOfRefused: secretsOfRefused.errors,
    },
    met,
    notes: [
      'All requests are sent at once; the budget admits what it can start within maxQueueSeconds and refuses the rest at once with 503 and Retry-After, before anything is recorded (a request refused only once queued ends as a failed row). Requests refused together are told to come back one budget interval apart, so they return in turn.',
      'Callers are served in turn, so issuedPerCaller stays even although every caller sent the same number at the same moment.',
      'hostAnswers counts every answer of the GitHub stand-in, including the undo calls and reads; 403 there would be secondary-limit refusals.',
      'pool: the same kind of burst served by one GitHub App, then by two Apps in a credential pool, each App with the budget shown and its own limit at the stand-in; keysPerSecond is keys issued over the time from the first request to the last answer.',
    ],
  };
} finally {
  await bench.close();
}
const pool = await poolComparison(poolRequests);
emit({ ...result, pool, met: { ...result.met, ...pool.met } });
if (![...Object.values(result.met), ...Object.values(pool.met)].every(Boolean)) process.exitCode = 1;
