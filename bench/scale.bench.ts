// Filtered reads over many keys and audit events, a reconciler pass over many keys due soon, and
// the API's resident memory throughout.
// Usage: node --import tsx bench/scale.bench.ts [--quick] [--keys N] [--events M] [--due D] [--requests R]
// Prints one JSON object on stdout; progress goes to stderr.
import { createReconciler } from '../src/queue/reconciler.ts';
import { systemTimers } from '../src/time.ts';
import {
  type BenchProcess,
  type BenchService,
  benchArgs,
  check,
  emit,
  mb,
  percentiles,
  round,
  rssSampler,
  startBenchService,
  startServiceProcess,
} from './support.ts';

const args = benchArgs({ keys: '', events: '', due: '', requests: '' });
const keyCount = args.number('keys', 100_000, 10_000);
const eventCount = args.number('events', 1_000_000, 50_000);
const due = Math.min(keyCount, args.number('due', 10_000, 2_000));
const requests = args.number('requests', 200, 20);
const WARMUP_REQUESTS = 3;
const REPOSITORY_COUNT = 50;
const OVERDUE = Math.min(500, Math.floor(keyCount / 100));

/** Keys: the first `due` active and due within a minute or two, 1 in 20 active for a day, 1 in 50 failed, the rest revoked. */
async function insertKeys(bench: BenchService) {
  await bench.database.pool.query(
    `INSERT INTO deploy_keys (id, provider, repository, repository_key, job_id, status, delivery, caller,
                              owner, created_at, activated_at, expires_at, revoke_requested_at, revoked_at,
                              revoke_reason)
     SELECT gen_random_uuid(), CASE WHEN g % 3 = 0 THEN 'gitlab' ELSE 'github' END,
            'acme/repo-' || (g % ${REPOSITORY_COUNT}), 'acme/repo-' || (g % ${REPOSITORY_COUNT}), 'job-' || g,
            k.status, 'vault', k.caller, k.caller, k.created, k.created,
            CASE WHEN k.status = 'active' AND g <= $2 THEN now() + interval '60 seconds' + (g % 30) * interval '1 second'
                 WHEN k.status = 'active' THEN now() + interval '1 day'
                 ELSE k.created + interval '1 hour' END,
            CASE WHEN k.status = 'revoked' THEN k.created + interval '10 minutes' END,
            CASE WHEN k.status = 'revoked' THEN k.created + interval '10 minutes 1 second' END,
            CASE WHEN k.status = 'revoked' THEN 'job-completed' END
       FROM generate_series(1, $1::int) AS g,
            LATERAL (SELECT now() - g * interval '30 seconds' AS created,
                            CASE WHEN g % 2 = 0 THEN 'token:bench-ci' ELSE 'token:other-ci' END AS caller,
                            CASE WHEN g <= $2 OR g % 20 = 0 THEN 'active'
                                 WHEN g % 50 = 1 THEN 'failed'
                                 ELSE 'revoked' END AS status) AS k`,
    [keyCount, due],
  );
}

/** Audit events in bulk; their hash chain is NOT valid (random-looking hashes), which no read here checks. */
async function insertEvents(bench: BenchService) {
  const { rows } = await bench.database.pool.query<{ seq: string }>(
    'SELECT coalesce(max(seq), 0) AS seq FROM audit_events',
  );
  const base = Number(rows[0]?.seq ?? 0);
  const batch = 100_000;
  for (let first = 1; first <= eventCount; first += batch) {
    await bench.database.pool.query(
      `INSERT INTO audit_events (seq, at, actor, action, key_id, provider, repository, job_id, details, prev_hash, hash)
       SELECT $1::bigint + g, now() - interval '90 days' + g * (7776000000 / $4::float8) * interval '1 millisecond',
              CASE WHEN g % 4 = 1 THEN 'token:bench-ci' ELSE 'system:deploykey-rotator' END,
              (ARRAY['key.requested','key.issued','key.revoke_requested','key.revoked'])[1 + (g - 1) % 4],
              md5('key-' || ((g - 1) / 4))::uuid, CASE WHEN g % 3 = 0 THEN 'gitlab' ELSE 'github' END,
              'acme/repo-' || ((g - 1) / 4 % ${REPOSITORY_COUNT}), 'job-' || ((g - 1) / 4), '{"bench":true}'::jsonb,
              md5((g - 1)::text) || md5('p' || (g - 1)), md5(g::text) || md5('p' || g)
         FROM generate_series($2::int, $3::int) AS g`,
      [base, first, Math.min(first + batch - 1, eventCount), eventCount],
    );
  }
}

async function timeRequests(bench: BenchService, apiUrl: string, path: (i: number) => string) {
  // Discarded, so the first query measured does not carry JIT and query-plan warm-up.
  for (let i = 0; i < WARMUP_REQUESTS; i += 1) {
    const response = await bench.api('GET', path(i), { token: bench.auditorToken, baseUrl: apiUrl });
    check(response.status === 200, `warm-up GET ${path(i)} answered ${response.status}`);
  }
  const latencies: number[] = [];
  let items = 0;
  for (let i = 0; i < requests; i += 1) {
    const started = performance.now();
    const response = await bench.api('GET', path(i), { token: bench.auditorToken, baseUrl: apiUrl });
    latencies.push(performance.now() - started);
    check(
      response.status === 200,
      `GET ${path(i)} answered ${response.status}: ${JSON.stringify(response.body)}`,
    );
    items += (response.body as { items: unknown[] }).items.length;
  }
  const latencyMs = percentiles(latencies);
  return { latencyMs, meanItems: round(items / requests), met: latencyMs.p99 <= 50 };
}

const memory = rssSampler();
const bench = await startBenchService({ worker: false });
let api: BenchProcess | undefined;
try {
  const startedMb = mb(process.memoryUsage().rss);
  // The queries go to the API as its own process, as deployed, so its memory is measured alone.
  api = await startServiceProcess(bench, 'api');
  const apiStartedMb = await api.rssMb();
  const apiMemory = api.rssSampler();
  const t1 = performance.now();
  await insertEvents(bench);
  console.error(`scale: ${eventCount} audit events in ${round((performance.now() - t1) / 1000)} s`);
  // Keys go in last: the due ones must still be ahead of their expiry when the reconciler runs.
  const t0 = performance.now();
  await insertKeys(bench);
  await bench.database.pool.query('ANALYZE deploy_keys; ANALYZE audit_events');
  console.error(`scale: ${keyCount} keys in ${round((performance.now() - t0) / 1000)} s`);

  const { container } = bench.service;
  const reconciler = createReconciler({
    db: container.db,
    keys: container.keys,
    hosts: container.hosts,
    keyService: container.keyService,
    queue: container.revokeQueue,
    clock: container.clock,
    timers: systemTimers,
    logger: container.logger,
    settings: {
      periodSeconds: 60,
      pendingTimeoutSeconds: 120,
      orphanScanSeconds: 300,
      orphanLookbackSeconds: 172_800,
    },
  });
  const passStarted = performance.now();
  const pass = await reconciler.runOnce({ orphans: false });
  const passMs = performance.now() - passStarted;
  console.error(`scale: reconciler pass ${round(passMs)} ms, scheduled ${pass.scheduled}`);

  await bench.database.pool.query(
    `UPDATE deploy_keys SET expires_at = now() - interval '1 hour'
      WHERE id IN (SELECT id FROM deploy_keys WHERE status = 'active' AND expires_at > now() + interval '1 hour' LIMIT $1)`,
    [OVERDUE],
  );
  const keyIds = (
    await bench.database.pool.query<{ id: string }>(
      'SELECT DISTINCT key_id AS id FROM audit_events WHERE key_id IS NOT NULL LIMIT $1',
      [requests],
    )
  ).rows.map((row) => row.id);
  const { rows: span } = await bench.database.pool.query<{ from: Date; to: Date }>(
    'SELECT min(at) AS from, max(at) AS to FROM audit_events',
  );
  const from = span[0]!.from.getTime();
  const width = span[0]!.to.getTime() - from;
  const repo = (i: number) => encodeURIComponent(`acme/repo-${(i * 7) % REPOSITORY_COUNT}`);
  const hour = (i: number) => {
    const start = from + ((i * 0.618) % 1) * Math.max(0, width - 3_600_000);
    return `from=${new Date(start).toISOString()}&to=${new Date(start + 3_600_000).toISOString()}`;
  };
  const timed = (path: (i: number) => string) => timeRequests(bench, api?.url ?? '', path);
  const queries = {
    keysByProviderAndRepository: await timed((i) => `/v1/keys?provider=github&repository=${repo(i)}`),
    keysByRepository: await timed((i) => `/v1/keys?repository=${repo(i)}`),
    keysByJobId: await timed((i) => `/v1/keys?jobId=job-${1 + ((i * 7919) % keyCount)}`),
    keysByStatusActive: await timed(() => '/v1/keys?status=active'),
    keysByStatusFailed: await timed(() => '/v1/keys?status=failed'),
    keysOverdue: await timed(() => '/v1/keys?overdue=true'),
    auditByRepository: await timed((i) => `/v1/audit/events?repository=${repo(i)}`),
    auditByKeyId: await timed((i) => `/v1/audit/events?keyId=${keyIds[i % keyIds.length]}`),
    auditByTimeRange: await timed((i) => `/v1/audit/events?${hour(i)}`),
  };
  const apiRss = apiMemory.stop();
  const rss = memory.stop();
  const met = {
    queriesP99: Object.values(queries).every((query) => query.met),
    reconcilerPass: passMs <= 2_000,
    apiRss: apiRss.peakMb <= 200,
  };
  emit({
    benchmark: 'scale',
    keys: keyCount,
    auditEvents: eventCount,
    requestsPerQuery: requests,
    queries,
    reconciler: { dueKeys: due, passMs: round(passMs), report: pass },
    apiRssMb: { ...apiRss, afterStartMb: apiStartedMb },
    benchProcessRssMb: { ...rss, afterStartMb: startedMb },
    targets: { queryP99Ms: '<= 50', reconcilerPassMs: '<= 2000', apiRssMb: '<= 200' },
    met,
    notes: [
      'Keys and audit events are inserted straight into Postgres with generate_series; the audit events carry made-up hashes, so the hash chain does NOT verify for this data set (nothing here reads it as a chain).',
      'Requests are sequential (one in flight) with an auditor token; each returns the first page (50 keys / 100 events).',
      `Each query first gets ${WARMUP_REQUESTS} warm-up requests that are not measured, so JIT and query-plan warm-up do not land in the first query's p99.`,
      `The reconciler makes sure of the revoke job of up to 10,000 keys due before its horizon per pass (ENQUEUE_BATCH in src/queue/reconciler.ts), 32 at a time: of ${due} keys due, this pass scheduled ${pass.scheduled}.`,
      'The queries go to `deploykey serve --role api` started as its own process, compiled by `npm run build` and run as the image runs it (node dist/src/cli/main.js), against the same stand-ins, Postgres and Redis; apiRssMb is that process, sampled every 50 ms from right after start-up through the last query.',
      'benchProcessRssMb is this benchmark process: the stand-ins with their SSH servers, the load generator, and an in-process service used for the reconciler pass.',
    ],
  });
} finally {
  await api?.stop();
  await bench.close();
}
