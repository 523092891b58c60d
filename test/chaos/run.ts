// Chaos run: keys issued, completed and expiring on both hosts while the API and worker are
// SIGKILLed, Redis loses the run's keys and the stand-ins fail; afterwards every invariant must hold.
// `node --import tsx test/chaos/run.ts [--quick] [--seed N]`; exits 1 when an invariant fails.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { sandboxServiceEnv } from '../../sandbox/service.ts';
import { type StandIns, startStandIns } from '../../sandbox/stand-ins.ts';
import { createApiTokens } from '../../src/auth/api-tokens.ts';
import { systemClock } from '../../src/time.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { needlesOf, recordInstallationTokens, serviceCredentialNeedles } from '../support/leak-scan.ts';
import { createTestRedisPrefix } from '../support/redis.ts';
import { type ChaosLog, clearStandInFaults, injectStandInFaults, runKiller } from './chaos-agent.ts';
import { type Check, checkKeyInvariants, keyRows, unsettled } from './invariants.ts';
import {
  checkEndedJobsRevoked,
  controllerConfig,
  newJobChaosLog,
  runControllerFaults,
  runJobTraffic,
} from './kubernetes-jobs.ts';
import { createServiceProcess, type ServiceProcess } from './processes.ts';
import { createRandom, sleep } from './random.ts';
import { REDIS_URL } from './redis-prefix.ts';
import { printSummary } from './report.ts';
import { scanForKeyMaterial } from './scans.ts';
import { runTraffic } from './traffic.ts';
import { revokeVaultTokens, setUpVaultLogin } from './vault-login.ts';

const PROFILES = {
  quick: {
    keys: 80,
    chaosMs: 60_000,
    kills: 9,
    concurrency: 4,
    settleMs: 45_000,
    jobs: 30,
    controllerKills: 3,
    watchFaults: 4,
  },
  full: {
    keys: 500,
    chaosMs: 150_000,
    kills: 18,
    concurrency: 8,
    settleMs: 90_000,
    jobs: 120,
    controllerKills: 6,
    watchFaults: 10,
  },
};
const RECONCILE_PERIOD_MS = 1_000;
const CLI_PATH = fileURLToPath(new URL('../../bin/deploykey.js', import.meta.url));

function parseArgs(argv: string[]) {
  const quick = argv.includes('--quick');
  const seedAt = argv.indexOf('--seed');
  const seed = seedAt >= 0 ? Number(argv[seedAt + 1]) : 20_261_128;
  if (!Number.isInteger(seed)) throw new Error('--seed takes an integer');
  return { profileName: quick ? 'quick' : 'full', profile: quick ? PROFILES.quick : PROFILES.full, seed };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

async function auditVerify(env: Record<string, string>): Promise<Check> {
  const result = await promisify(execFile)(process.execPath, [CLI_PATH, 'audit', 'verify', '--json'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    cwd: tmpdir(),
  }).then(
    (done) => ({ code: 0, stdout: done.stdout }),
    (error: { code?: number; stdout?: string }) => ({ code: error.code ?? 1, stdout: error.stdout ?? '' }),
  );
  let parsed: { ok?: boolean; checked?: number; reason?: string; lastCheckpoint?: unknown } = {};
  try {
    parsed = JSON.parse(result.stdout);
  } catch {}
  return {
    name: 'audit hash chain verifies (deploykey audit verify)',
    ok: result.code === 0 && parsed.ok === true,
    detail: parsed.ok
      ? `${parsed.checked} events, checkpoint ${parsed.lastCheckpoint ? 'matched' : 'none'}`
      : `exit ${result.code}: ${parsed.reason ?? result.stdout.slice(0, 200)}`,
  };
}

/**
 * Waits for one expiry plus a reconcile period past the last key's expiry, then until no key is
 * pending, revoking or active past its expiry; returns ms after that last expiry, or -1.
 */
async function waitUntilSettled(database: TestDatabase, timeoutMs: number): Promise<number> {
  const rows = await keyRows(database.pool);
  // A Job's key lives until its Job ends (its TTL outlives the run): it settles when the Job has.
  const expiring = rows.filter((row) => row.binding?.kind !== 'kubernetes-job');
  const lastExpiry = Math.max(Date.now(), ...expiring.map((row) => row.expires_at.getTime()));
  await sleep(Math.max(0, lastExpiry + RECONCILE_PERIOD_MS - Date.now()));
  while (Date.now() - lastExpiry < timeoutMs) {
    if (unsettled(await keyRows(database.pool)).length === 0) return Date.now() - lastExpiry;
    await sleep(500);
  }
  return -1;
}

async function main(): Promise<number> {
  const { profileName, profile, seed } = parseArgs(process.argv.slice(2));
  const random = createRandom(seed);
  const runStarted = Date.now();
  const cleanups: (() => Promise<unknown>)[] = [];
  const processes: ServiceProcess[] = [];
  try {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const prefix = createTestRedisPrefix();
    cleanups.push(() => prefix.cleanup());
    const standIns: StandIns = await startStandIns();
    cleanups.push(() => standIns.close());
    const redis = new Redis(REDIS_URL);
    cleanups.push(async () => redis.disconnect());
    const logDir = await mkdtemp(join(tmpdir(), 'deploykey-chaos-'));
    cleanups.push(() => rm(logDir, { recursive: true, force: true }));

    const vaultLogin = await setUpVaultLogin(standIns, logDir);
    const kubernetes = controllerConfig(standIns);
    const port = await freePort();
    const apiUrl = `http://127.0.0.1:${port}`;
    const env = {
      ...(await sandboxServiceEnv({
        standIns,
        databaseUrl: database.url,
        redisUrl: REDIS_URL,
        redisPrefix: prefix.prefix,
        apiPort: port,
        fileConfig: {
          reconciler: { periodSeconds: 1, pendingTimeoutSeconds: 5, orphanScanSeconds: 2 },
          worker: { lockSeconds: 2, stalledCheckSeconds: 1 },
          keys: { minTtlSeconds: 1, maxTtlSeconds: 3_600, defaultTtlSeconds: 60 },
          policy: [
            {
              name: 'chaos-callers',
              match: { issuer: 'api-token', token: 'chaos-ci' },
              allow: { providers: ['*'], repositories: ['**'], deliveries: ['vault', 'response', 'wrapped'] },
            },
            kubernetes.policyRule,
          ],
          kubernetes: kubernetes.kubernetes,
          rateLimit: { max: 100_000, timeWindowSeconds: 60, expensiveMax: 100_000, failedAuthMax: 100_000 },
          vault: { auth: vaultLogin.auth },
        },
      })),
      LOG_LEVEL: 'info',
    };
    // The services log in with AppRole; no static token.
    delete (env as Record<string, string | undefined>).VAULT_TOKEN;
    const { token } = await createApiTokens(database.db, systemClock).create({
      name: 'chaos-ci',
      role: 'issuer',
      actor: 'chaos',
    });

    const api = createServiceProcess({ role: 'api', env, logDir, apiUrl });
    const worker = createServiceProcess({ role: 'worker', env, logDir, apiUrl });
    const controller = createServiceProcess({ role: 'controller', env, logDir, apiUrl });
    processes.push(api, worker, controller);
    await Promise.all([api.start(), worker.start()]);
    // After the others: three processes loading the sources at once slow each start past its bound.
    await controller.start();

    process.stdout.write(
      `chaos ${profileName}: seed ${seed}, ${profile.keys} keys over ${profile.chaosMs / 1000}s\n`,
    );
    const chaosLog: ChaosLog = {
      kills: { api: 0, worker: 0, both: 0 },
      vaultAuth: { vaultTokensRevoked: 0, vaultLoginDownMs: 0 },
    };
    const jobLog = newJobChaosLog();
    const privateKeys: string[] = [];
    const errorBodies: string[] = [];
    const installationTokens = recordInstallationTokens(standIns.github.api);
    injectStandInFaults(standIns);
    const chaosStarted = Date.now();
    const [traffic] = await Promise.all([
      runTraffic({
        apiUrl,
        token,
        keys: profile.keys,
        durationMs: profile.chaosMs,
        concurrency: profile.concurrency,
        random: createRandom(seed + 1),
        privateKeys,
        errorBodies,
      }),
      runKiller({
        api,
        worker,
        kills: profile.kills,
        durationMs: profile.chaosMs,
        random,
        redis,
        redisPrefix: prefix.prefix,
        log: chaosLog,
      }),
      revokeVaultTokens(standIns, profile.chaosMs, chaosLog.vaultAuth),
      runJobTraffic({
        standIns,
        jobs: profile.jobs,
        durationMs: profile.chaosMs,
        random: createRandom(seed + 2),
        log: jobLog,
      }),
      runControllerFaults({
        controller,
        standIns,
        kills: profile.controllerKills,
        watchFaults: profile.watchFaults,
        durationMs: profile.chaosMs,
        random: createRandom(seed + 3),
        log: jobLog,
      }),
    ]);
    const faultStats = {
      github: standIns.github.api.faults.stats(),
      gitlab: standIns.gitlab.api.faults.stats(),
      vault: standIns.vault.faults.stats(),
    };
    clearStandInFaults(standIns);
    const chaosMs = Date.now() - chaosStarted;
    for (const service of processes) if (!service.running()) await service.start();

    const settledMs = await waitUntilSettled(database, profile.settleMs);
    const checks: Check[] = [
      {
        name: `every key settled within ${profile.settleMs / 1000}s of the last expiry (faults off)`,
        ok: settledMs >= 0,
        detail: settledMs >= 0 ? `${(settledMs / 1000).toFixed(1)}s after the last expiry` : 'timed out',
      },
      ...(await checkKeyInvariants(database.pool, standIns)),
      await checkEndedJobsRevoked(database.pool, standIns),
      await auditVerify(env),
    ];
    const metrics = await fetch(`${apiUrl}/metrics`).then(
      (response) => response.text(),
      () => '',
    );
    for (const service of processes) await service.stop();
    checks.push(
      ...(await scanForKeyMaterial({
        databaseUrl: database.url,
        redis,
        redisPrefix: prefix.prefix,
        logPaths: processes.map((service) => service.logPath),
        metrics,
        errorBodies,
        privateKeys,
        credentials: [
          ...needlesOf('AppRole secret id', vaultLogin.secretId),
          ...serviceCredentialNeedles(standIns, installationTokens),
        ],
      })),
    );
    printSummary({
      traffic,
      chaosLog,
      jobLog: { ...jobLog, expiredAnswers: standIns.kubernetes.expiredWatches() },
      faultStats,
      checks,
      chaosMs,
      totalMs: Date.now() - runStarted,
      privateKeys,
      processes,
      vaultGranted: standIns.vault.auth.granted(),
    });
    return checks.every((check) => check.ok) ? 0 : 1;
  } finally {
    for (const service of processes) await service.stop().catch(() => {});
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`chaos run failed: ${error.stack ?? error.message}`);
    process.exit(2);
  },
);
