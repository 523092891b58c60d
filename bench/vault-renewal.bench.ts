// The service under short-lived Vault tokens: the API and the worker, each its own process, log in
// with AppRole for 5 s tokens within a 30 s max TTL, while keys are issued through the API at a
// steady pace for 2 minutes (--quick: 20 s) and revoked by job completion or by expiry.
// Usage: node --import tsx bench/vault-renewal.bench.ts [--quick] [--seconds N] [--rate R]
// Prints one JSON object on stdout; progress goes to stderr.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setUpVaultLogin } from '../test/chaos/vault-login.ts';
import {
  type BenchProcess,
  type BenchService,
  benchArgs,
  emit,
  issueThrough,
  percentiles,
  sleep,
  startBenchService,
  startServiceProcess,
} from './support.ts';

const args = benchArgs({ seconds: '', rate: '' });
const seconds = args.number('seconds', 120, 20);
/** Keys issued a second; every other one expires after SHORT_TTL_SECONDS, the rest are completed. */
const rate = args.number('rate', 10, 10);
const SHORT_TTL_SECONDS = 5;
const COMPLETE_AFTER_MS = 2_000;
/** A revoke later than this after its key expired or its job completed counts as overdue. */
const OVERDUE_MS = 5_000;

/** Issues and revokes at a steady pace; a request that fails or is refused counts as failed. */
async function traffic(bench: BenchService, api: BenchProcess) {
  const issueMs: number[] = [];
  const failures: string[] = [];
  const tasks: Promise<void>[] = [];
  let completions = 0;
  const task = async (i: number) => {
    const jobId = `job-${i}`;
    const expires = i % 2 === 0;
    const started = performance.now();
    try {
      await issueThrough(bench, api.url, jobId, expires ? SHORT_TTL_SECONDS : 3_600);
      issueMs.push(performance.now() - started);
      if (expires) return;
      await sleep(COMPLETE_AFTER_MS);
      completions += 1;
      const answer = await bench.api('POST', `/v1/jobs/${jobId}/complete`, { baseUrl: api.url });
      if (answer.status !== 202) throw new Error(`job completion answered ${answer.status}`);
    } catch (error) {
      failures.push((error as Error).message);
    }
  };
  const began = Date.now();
  for (let i = 0; Date.now() - began < seconds * 1000; i += 1) {
    tasks.push(task(i));
    await sleep(Math.max(0, began + ((i + 1) * 1000) / rate - Date.now()));
  }
  await Promise.all(tasks);
  return { requests: tasks.length + completions, issueMs, failures };
}

/** Every key's revoke against when it was due (expiry or job completion), from Postgres. */
async function revokes(bench: BenchService, waitMs: number) {
  const query = () =>
    bench.database.pool.query<{ status: string; late_ms: number | null; by_expiry: boolean }>(
      `SELECT status, extract(epoch FROM revoked_at - least(expires_at, revoke_requested_at)) * 1000 AS late_ms,
              revoke_requested_at IS NULL OR expires_at <= revoke_requested_at AS by_expiry
         FROM deploy_keys`,
    );
  const deadline = Date.now() + waitMs;
  let { rows } = await query();
  while (rows.some((row) => row.status !== 'revoked') && Date.now() < deadline) {
    await sleep(250);
    ({ rows } = await query());
  }
  const revoked = rows.filter((row) => row.status === 'revoked');
  return {
    keys: rows.length,
    revoked: revoked.length,
    byExpiry: revoked.filter((row) => row.by_expiry).length,
    byJobCompletion: revoked.filter((row) => !row.by_expiry).length,
    overdue: rows.filter((row) => row.late_ms === null || Number(row.late_ms) > OVERDUE_MS).length,
    lateAfterDueMs: percentiles(revoked.map((row) => Number(row.late_ms))),
  };
}

const bench = await startBenchService({ worker: false });
const dir = await mkdtemp(join(tmpdir(), 'vault-renewal-bench-'));
const processes: BenchProcess[] = [];
try {
  const login = await setUpVaultLogin(bench.standIns, dir);
  const before = bench.standIns.vault.auth.granted();
  for (const role of ['api', 'worker'] as const) {
    processes.push(await startServiceProcess(bench, role, { vaultAuth: login.auth }));
  }
  const [api] = processes as [BenchProcess];
  console.error(`vault-renewal: ${rate} keys/s for ${seconds} s under 5 s Vault tokens (30 s max TTL)`);
  const run = await traffic(bench, api);
  const settled = await revokes(bench, 60_000);
  const after = bench.standIns.vault.auth.granted();
  const met = { noFailedRequest: run.failures.length === 0, noOverdueKey: settled.overdue === 0 };
  console.error(`vault-renewal: ${run.failures.length} failed, ${settled.overdue} overdue`);
  emit({
    benchmark: 'vault-renewal',
    seconds,
    keysPerSecond: rate,
    vaultTokenTtlSeconds: 5,
    vaultTokenMaxTtlSeconds: 30,
    requests: run.requests,
    requestsFailed: run.failures.length,
    ...(run.failures.length ? { firstFailure: run.failures[0] } : {}),
    keysIssued: settled.keys,
    keysRevoked: settled.revoked,
    revokedByExpiry: settled.byExpiry,
    revokedByJobCompletion: settled.byJobCompletion,
    keysOverdue: settled.overdue,
    revokedAfterDueMs: settled.lateAfterDueMs,
    issueLatencyMs: percentiles(run.issueMs),
    vaultLogins: after.logins - before.logins,
    vaultRenewals: after.renewals - before.renewals,
    targets: {
      requestsFailed: 0,
      keysOverdue: `0 (revoked within ${OVERDUE_MS / 1000} s of expiry or completion)`,
    },
    met,
    notes: [
      'The API and the worker run as deployed (compiled, each its own process) and log in to the Vault stand-in with AppRole under the policy in deploy/vault/ (the chaos run sets it up the same way), for 5 s tokens within a 30 s max TTL: each renews its token at half its lease and logs in again when Vault caps a renewal at the max TTL. No static Vault token is given to them.',
      `Every 1/${rate} s a key is issued through the API (delivered to Vault); every other key expires after ${SHORT_TTL_SECONDS} s, the rest have their job completed ${COMPLETE_AFTER_MS / 1000} s after issue. A request counts as failed unless the issue answers 201 and the completion 202.`,
      `Overdue: a key not revoked, or revoked more than ${OVERDUE_MS / 1000} s after it was due (revoked_at - least(expires_at, revoke_requested_at) in Postgres), read after the run once every key is revoked or 60 s have passed.`,
      'vaultLogins and vaultRenewals are what the Vault stand-in granted to both processes, from their start (one login each) to the end of the run.',
    ],
  });
} finally {
  for (const service of processes) await service.stop();
  await bench.close();
  await rm(dir, { recursive: true, force: true });
}
