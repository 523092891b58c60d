// One running service on fresh stand-ins, with this test file's own database, Redis prefix and
// captured logs. Tests talk to it over real HTTP and look behind it through the stand-ins.
import { type SandboxService, sandboxServiceEnv, startSandboxService } from '../../sandbox/service.ts';
import { type StandIns, serviceSettingsFor, startStandIns } from '../../sandbox/stand-ins.ts';
import type { ContainerOverrides } from '../../src/container.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { createCapturedLogger } from './log-capture.ts';
import { createTestRedisPrefix, TEST_REDIS_URL } from './redis.ts';

export interface Harness {
  standIns: StandIns;
  service: SandboxService;
  database: TestDatabase;
  redisPrefix: string;
  /** The `ci` caller's token (role issuer). */
  token: string;
  /** Tokens by caller name: `ci`, `other-ci` (issuers), `auditor`, `admin`. */
  tokens: Record<string, string>;
  logs: ReturnType<typeof createCapturedLogger>;
  /** Calls the API with the caller token; the body is parsed when it is JSON. */
  api(
    method: string,
    path: string,
    options?: { body?: unknown; headers?: Record<string, string>; token?: string | null },
    // biome-ignore lint/suspicious/noExplicitAny: tests assert response bodies field by field
  ): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  /** Environment that runs another `deploykey` process against the same stand-ins and stores. */
  childEnv(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Config-file sections; a function gets the stand-ins first (e.g. for the OIDC issuer's URL). */
  fileConfig?:
    | Record<string, unknown>
    | ((standIns: StandIns) => Record<string, unknown> | Promise<Record<string, unknown>>);
  worker?: boolean;
  overrides?: ContainerOverrides;
  repositories?: string[];
}

/** The policy rule that lets the `ci` and `other-ci` API tokens ask for any key. */
export const TEST_CALLERS_RULE = {
  name: 'test-callers',
  match: { issuer: 'api-token', token: '*ci' },
  allow: { providers: ['*'], repositories: ['**'], deliveries: ['vault', 'response', 'wrapped'] },
};

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const database = await createTestDatabase();
  const redis = createTestRedisPrefix();
  const standIns = await startStandIns(options.repositories ? { repositories: options.repositories } : {});
  const logs = createCapturedLogger('debug');
  const serviceOptions = {
    standIns,
    databaseUrl: database.url,
    redisUrl: TEST_REDIS_URL,
    redisPrefix: redis.prefix,
    apiPort: 0,
    fileConfig: {
      reconciler: { periodSeconds: 1, pendingTimeoutSeconds: 5, orphanScanSeconds: 1 },
      policy: [TEST_CALLERS_RULE],
      rateLimit: { max: 100_000, timeWindowSeconds: 60, expensiveMax: 100_000, failedAuthMax: 100_000 },
      ...(typeof options.fileConfig === 'function' ? await options.fileConfig(standIns) : options.fileConfig),
    },
  };
  const service = await startSandboxService({
    ...serviceOptions,
    callers: [
      { name: 'ci', role: 'issuer' },
      { name: 'other-ci', role: 'issuer' },
      { name: 'auditor', role: 'auditor' },
      { name: 'admin', role: 'admin' },
    ],
    logger: logs.logger,
    ...(options.worker === undefined ? {} : { worker: options.worker }),
    ...(options.overrides ? { overrides: options.overrides } : {}),
  });

  const token = service.tokens.ci!;
  return {
    standIns,
    service,
    database,
    redisPrefix: redis.prefix,
    token,
    tokens: service.tokens,
    logs,
    async api(method, path, { body, headers = {}, token: callerToken = token } = {}) {
      const response = await fetch(`${service.url}${path}`, {
        method,
        headers: {
          ...(callerToken ? { authorization: `Bearer ${callerToken}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    childEnv: () => sandboxServiceEnv(serviceOptions),
    async close() {
      await service.stop();
      await standIns.close();
      await redis.cleanup();
      await database.drop();
    },
  };
}

/** The stand-ins' `hosts` entries as the harness configures them, with `changes` made to some, by id. */
export function standInHosts(standIns: StandIns, changes: Record<string, Record<string, unknown>>) {
  return serviceSettingsFor(standIns).hosts.map((host) => ({ ...host, ...changes[host.id] }));
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  { timeoutMs = 15_000, intervalMs = 100, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
