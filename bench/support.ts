import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { type SandboxService, sandboxServiceEnv, startSandboxService } from '../sandbox/service.ts';
import { type StandIns, startStandIns } from '../sandbox/stand-ins.ts';
import type { ContainerOverrides } from '../src/container.ts';
import type { NewDeployKeyRow } from '../src/db/schema.ts';
import { keyTitle } from '../src/hosts/git-host.ts';
import { ownerScope } from '../src/keys/ownership.ts';
import { createLogger } from '../src/log.ts';
import type { VaultAuthConfig } from '../src/vault/vault-auth-config.ts';
import { createServiceProcess, type ServiceRole } from '../test/chaos/processes.ts';
import { buildCompiled, COMPILED_CLI_PATH } from '../test/support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/database.ts';
import { createTestRedisPrefix, TEST_REDIS_URL } from '../test/support/redis.ts';

export const BENCH_REPOSITORY = 'acme/models';

/** `--quick` (smaller sizes) plus whatever options a benchmark names, all as strings. */
export function benchArgs(options: Record<string, string> = {}) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      ...Object.fromEntries(Object.keys(options).map((name) => [name, { type: 'string' as const }])),
    },
    strict: true,
  });
  const quick = values.quick === true;
  const number = (name: string, full: number, small: number) => {
    const given = (values as Record<string, unknown>)[name];
    const value = typeof given === 'string' ? Number(given) : quick ? small : full;
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a positive whole number`);
    return value;
  };
  return { quick, number };
}

export function machine() {
  const list = cpus();
  return {
    cpuModel: list[0]?.model ?? 'unknown',
    cpuCount: list.length,
    totalMemoryMb: Math.round(totalmem() / 1024 / 1024),
    node: process.version,
  };
}

export const round = (value: number, digits = 1) => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};
export const mb = (bytes: number) => round(bytes / 1024 / 1024);

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of millisecond samples, rounded to 0.1 ms. */
export function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: round(sorted.at(-1) ?? 0) };
}

/** Runs `task(i)` for i in 0..count-1 with `concurrency` in flight; latencies in ms. */
export async function runConcurrent(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<{ latencies: number[]; seconds: number; errors: number; firstError?: string }> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const lane = async () => {
    for (let index = next++; index < count; index = next++) {
      const t0 = performance.now();
      try {
        await task(index);
        latencies.push(performance.now() - t0);
      } catch (error) {
        errors += 1;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return {
    latencies,
    seconds: (performance.now() - started) / 1000,
    errors,
    ...(firstError ? { firstError } : {}),
  };
}

/**
 * Peak and last resident memory, in MB, sampled every `everyMs` until stopped: of this process, or
 * of whatever `read` measures (another process, through /proc).
 */
export function rssSampler(
  everyMs = 50,
  read: () => Promise<number> = async () => mb(process.memoryUsage().rss),
) {
  let peak = 0;
  let last = 0;
  let samples = 0;
  const sample = () =>
    read().then(
      (value) => {
        peak = Math.max(peak, value);
        last = value;
        samples += 1;
      },
      () => {},
    );
  void sample();
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return { peakMb: peak, lastMb: last, samples };
    },
  };
}

export interface BenchService {
  standIns: StandIns;
  service: SandboxService;
  database: TestDatabase;
  redisPrefix: string;
  /** The config-file sections the in-process service runs with, for a separate API process. */
  fileConfig: Record<string, unknown>;
  /** The issuer's token (`bench-ci`), and an auditor's (`bench-auditor`). */
  token: string;
  auditorToken: string;
  /** A request with the issuer's token unless another is given, to the in-process service unless `baseUrl` names another. */
  api(
    method: string,
    path: string,
    options?: { body?: unknown; token?: string; baseUrl?: string },
  ): Promise<{ status: number; headers: Headers; body: unknown }>;
  close(): Promise<void>;
}

// The service logs as in production (info, JSON), into a sink that drops the lines: formatting
// cost is part of what is measured, terminal output is not.
const discard = () =>
  new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });

/** The real service (API + worker, this process) on fresh stand-ins, database and Redis prefix. */
export async function startBenchService(
  options: {
    /** Config-file sections; a function gets the stand-ins first (e.g. to change a host's budget). */
    fileConfig?: Record<string, unknown> | ((standIns: StandIns) => Record<string, unknown>);
    worker?: boolean;
    repositories?: string[];
    /** Webhook deliveries each CI stand-in sends at once. */
    deliveryConcurrency?: number;
    /** What the in-process service gets beyond its config file (e.g. webhook secrets in `env`). */
    overrides?: ContainerOverrides;
  } = {},
): Promise<BenchService> {
  const database = await createTestDatabase();
  const redis = createTestRedisPrefix();
  const standIns = await startStandIns({
    ...(options.repositories ? { repositories: options.repositories } : {}),
    ...(options.deliveryConcurrency ? { deliveryConcurrency: options.deliveryConcurrency } : {}),
  });
  const fileConfig = {
    policy: [
      {
        name: 'bench-callers',
        match: { issuer: 'api-token', token: 'bench-*' },
        allow: { providers: ['*'], repositories: ['**'], deliveries: ['vault', 'response', 'wrapped'] },
      },
    ],
    rateLimit: {
      max: 10_000_000,
      timeWindowSeconds: 60,
      expensiveMax: 10_000_000,
      failedAuthMax: 10_000_000,
    },
    ...(typeof options.fileConfig === 'function' ? options.fileConfig(standIns) : options.fileConfig),
  };
  let service: SandboxService;
  try {
    service = await startSandboxService({
      standIns,
      databaseUrl: database.url,
      redisUrl: TEST_REDIS_URL,
      redisPrefix: redis.prefix,
      apiPort: 0,
      logger: createLogger('info', discard()),
      ...(options.worker === undefined ? {} : { worker: options.worker }),
      ...(options.overrides ? { overrides: options.overrides } : {}),
      fileConfig,
      callers: [
        { name: 'bench-ci', role: 'issuer' },
        { name: 'bench-auditor', role: 'auditor' },
      ],
    });
  } catch (error) {
    await standIns.close();
    await redis.cleanup();
    await database.drop();
    throw error;
  }
  const token = service.tokens['bench-ci']!;
  return {
    standIns,
    service,
    database,
    redisPrefix: redis.prefix,
    fileConfig,
    token,
    auditorToken: service.tokens['bench-auditor']!,
    async api(method, path, { body, token: callerToken = token, baseUrl = service.url } = {}) {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${callerToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return {
        status: response.status,
        headers: response.headers,
        body: text.startsWith('{') ? JSON.parse(text) : text,
      };
    },
    async close() {
      await service.stop().catch(() => {});
      await standIns.close().catch(() => {});
      await redis.cleanup().catch(() => {});
      await database.drop();
    },
  };
}

/** Fails the run with the benchmark's name when a step did not do what it should. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Keys in Postgres whose status is `active`. */
export async function activeKeyCount(bench: BenchService): Promise<number> {
  const { rows } = await bench.database.pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM deploy_keys WHERE status = 'active'",
  );
  return Number(rows[0]?.n);
}

/** One key issued through the API at `baseUrl` (delivered to Vault, for an hour unless told); fails unless 201. */
export async function issueThrough(
  bench: BenchService,
  baseUrl: string,
  jobId: string,
  ttlSeconds = 3_600,
): Promise<void> {
  const response = await bench.api('POST', '/v1/keys', {
    body: { provider: 'github', repository: BENCH_REPOSITORY, jobId, ttlSeconds, delivery: 'vault' },
    baseUrl,
  });
  check(
    response.status === 201,
    `POST /v1/keys answered ${response.status}: ${JSON.stringify(response.body)}`,
  );
}

export function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...result, machine: machine() })}\n`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An `ssh-ed25519` public key made with node:crypto alone, for seeding host keys quickly: the
 * service's own key pair generation parses through sshpk, which costs tens of ms per key.
 */
export function fastPublicKey(comment: string): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const field = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return [length, bytes];
  };
  const blob = Buffer.concat([...field(Buffer.from('ssh-ed25519')), ...field(raw)]);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}

export interface SeedKey {
  jobId: string;
  repository: string;
  expiresAt: Date;
}

/**
 * A read-only key put straight into the GitHub stand-in's state: seeding through its REST API would
 * spend the token's documented 5,000 requests an hour before the measured calls begin.
 */
export function seedHostKey(
  bench: BenchService,
  repository: string,
  title: string,
  publicKey: string,
): number {
  const { state } = bench.standIns.github;
  const found = state.findRepository(repository);
  check(found, `no repository ${repository} on the GitHub stand-in`);
  const blob = publicKey.split(' ').slice(0, 2).join(' ');
  return state.addKey({ repositoryId: found.id, title, key: blob, readOnly: true, expiresAt: null }).id;
}

/**
 * Active keys as an issue leaves them (host key, Vault secret, row, delayed revoke job) without the
 * issue flow's key generation and audit events, so a revoke benchmark starts from many keys fast.
 */
export async function seedActiveKeys(
  bench: BenchService,
  keys: SeedKey[],
  concurrency = 32,
): Promise<string[]> {
  const { container } = bench.service;
  const caller = 'token:bench-ci';
  const rows: (NewDeployKeyRow & { id: string; expires_at: Date })[] = new Array(keys.length);
  const run = await runConcurrent(keys.length, concurrency, async (i) => {
    const key = keys[i]!;
    const id = randomUUID();
    const title = keyTitle(id, key.jobId);
    const publicKey = fastPublicKey(title);
    const hostKeyId = String(seedHostKey(bench, key.repository, title, publicKey));
    const vaultPath = container.secrets.pathFor(ownerScope(caller), key.jobId, 'github', key.repository);
    await container.secrets.write(
      vaultPath,
      { privateKey: 'seeded', publicKey, knownHosts: '', fingerprint: 'seeded' },
      { keyId: id, expiresAt: key.expiresAt },
    );
    const now = new Date();
    rows[i] = {
      id,
      provider: 'github',
      repository: key.repository,
      job_id: key.jobId,
      status: 'active',
      delivery: 'vault',
      public_key: publicKey,
      host_key_id: hostKeyId,
      vault_path: vaultPath,
      caller,
      owner: caller,
      repository_key: key.repository,
      created_at: now,
      activated_at: now,
      expires_at: key.expiresAt,
    };
  });
  check(run.errors === 0, `seeding failed: ${run.firstError}`);
  for (let first = 0; first < rows.length; first += 1_000) {
    await container.db.db
      .insertInto('deploy_keys')
      .values(rows.slice(first, first + 1_000))
      .execute();
  }
  const scheduled = await runConcurrent(rows.length, concurrency, async (i) => {
    const row = rows[i]!;
    await container.revokeQueue.scheduleRevoke(row.id, row.expires_at);
  });
  check(scheduled.errors === 0, `seeding: scheduling failed: ${scheduled.firstError}`);
  return rows.map((row) => row.id);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  check(typeof address === 'object' && address, 'no port');
  return address.port;
}

/** Resident memory of another process, from /proc (Linux). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return mb(kb * 1024);
}

/**
 * CPU time of the whole machine so far, all cores together, in ms, from /proc/stat (Linux, 100 ticks
 * a second): `busy` is everything but idle and iowait, `total` everything (guest time is already in user).
 */
export async function machineCpuMs(): Promise<{ busy: number; total: number }> {
  const stat = await readFile('/proc/stat', 'utf8');
  const [user, nice, system, idle, iowait, irq, softirq, steal] = stat
    .slice(0, stat.indexOf('\n'))
    .split(/\s+/)
    .slice(1, 9)
    .map(Number) as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy * 10, total: (busy + idle + iowait) * 10 };
}

/** User plus system CPU time another process has used, in ms, from /proc (Linux, 100 ticks a second). */
async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export interface BenchProcess {
  /** The API's address (a worker listens nowhere; its value is unused). */
  url: string;
  /** Starts sampling the process's resident memory; `stop` gives the peak and the last sample. */
  rssSampler(everyMs?: number): { stop(): { peakMb: number; lastMb: number; samples: number } };
  rssMb(): Promise<number>;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

// Built once per benchmark process: the build empties dist/ first, so building again for a second
// service process would pull the files from under the first one.
let compiled: Promise<void> | undefined;

/**
 * `deploykey serve --role api|worker|controller` as its own process against the benchmark's stand-ins and
 * stores, run as the image runs it (compiled, no transpiler, logging at info): its memory and CPU
 * are the service's alone, without the stand-ins and the load generator. With `vaultAuth` it logs in
 * to Vault that way instead of holding the static token.
 */
export async function startServiceProcess(
  bench: BenchService,
  role: ServiceRole,
  options: { vaultAuth?: VaultAuthConfig } = {},
): Promise<BenchProcess> {
  compiled ??= buildCompiled();
  await compiled;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = await sandboxServiceEnv({
    standIns: bench.standIns,
    databaseUrl: bench.database.url,
    redisUrl: TEST_REDIS_URL,
    redisPrefix: bench.redisPrefix,
    apiPort: port,
    fileConfig: {
      ...bench.fileConfig,
      ...(options.vaultAuth
        ? { vault: { ...(bench.fileConfig.vault as object), auth: options.vaultAuth } }
        : {}),
    },
  });
  if (options.vaultAuth) delete env.VAULT_TOKEN;
  // Node flags for the service process alone, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (space
  // separated): the child gets a clean environment, and NODE_OPTIONS does not accept --cpu-prof.
  const nodeArgs = process.env.BENCH_SERVICE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const service = createServiceProcess({
    role,
    env,
    logDir: await mkdtemp(join(tmpdir(), 'deploykey-bench-')),
    apiUrl: url,
    cliPath: COMPILED_CLI_PATH,
    nodeArgs,
  });
  await service.start();
  const pid = service.pid();
  check(pid, `the ${role} process did not start`);
  return {
    url,
    rssMb: () => rssOf(pid),
    cpuMs: () => cpuMsOf(pid),
    rssSampler: (everyMs = 50) => rssSampler(everyMs, () => rssOf(pid)),
    stop: () => service.stop(),
  };
}

/** Waits until every one of `ids` is `revoked` in Postgres, failing the benchmark after `timeoutMs`. */
export async function waitRevoked(bench: BenchService, ids: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await bench.database.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM deploy_keys WHERE id = ANY($1::uuid[]) AND status = 'revoked'",
      [ids],
    );
    if (Number(rows[0]?.n) === ids.length) return;
    check(Date.now() < deadline, `only ${rows[0]?.n} of ${ids.length} keys revoked after ${timeoutMs} ms`);
    await sleep(25);
  }
}
