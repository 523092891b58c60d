// Runs the real service (API and worker, one process) against the stand-ins.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type Config, loadConfig } from '../src/config.ts';
import { type Container, type ContainerOverrides, createContainer } from '../src/container.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { type App, buildApp } from '../src/http/app.ts';
import type { Logger } from '../src/log.ts';
import type { Role } from '../src/model/schemas.ts';
import { type StandIns, serviceSettingsFor } from './stand-ins.ts';

export interface SandboxServiceOptions {
  standIns: StandIns;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  apiPort: number;
  /** API tokens to create for the demo or tests, by name. */
  callers?: { name: string; role: Role }[];
  logger: Logger;
  /** Extra config-file sections (e.g. reconciler periods in tests). */
  fileConfig?: Record<string, unknown>;
  worker?: boolean;
  overrides?: ContainerOverrides;
}

export interface SandboxService {
  url: string;
  config: Config;
  container: Container;
  app: App;
  /** The created callers' tokens by name (shown once, like any API token). */
  tokens: Record<string, string>;
  stop(): Promise<void>;
}

/** Writes the service's config file for these stand-ins and returns the environment that runs it. */
export async function sandboxServiceEnv(
  options: Omit<SandboxServiceOptions, 'logger' | 'worker' | 'overrides' | 'callers'>,
): Promise<Record<string, string>> {
  const settings = serviceSettingsFor(options.standIns);
  const configPath = join(options.standIns.dataDir, `deploykey-${options.redisPrefix}.yaml`);
  await writeFile(
    configPath,
    stringify({
      hosts: settings.hosts,
      auth: settings.auth,
      policy: settings.policy,
      // The sandbox lets keys live for as little as one second, so expiry can be watched.
      keys: { minTtlSeconds: 1, maxTtlSeconds: 86_400, defaultTtlSeconds: 3_600 },
      ...options.fileConfig,
    }),
  );
  return {
    ...settings.env,
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    REDIS_PREFIX: options.redisPrefix,
    PORT: String(options.apiPort),
    HOST: '127.0.0.1',
    DEPLOYKEY_CONFIG: configPath,
  };
}

export async function startSandboxService(options: SandboxServiceOptions): Promise<SandboxService> {
  const config = loadConfig(await sandboxServiceEnv(options));
  await migrateDatabase(config.databaseUrl);
  const container = createContainer(config, options.logger, options.overrides);
  await container.connect();
  const app = await buildApp(container);
  const url = await app.listen({ host: config.http.host, port: config.http.port });
  const worker = options.worker === false ? undefined : container.startWorker();
  const tokens: Record<string, string> = {};
  for (const caller of options.callers ?? []) {
    tokens[caller.name] = (await container.tokens.create({ ...caller, actor: 'sandbox' })).token;
  }
  return {
    url,
    tokens,
    config,
    container,
    app,
    async stop() {
      await app.close();
      await worker?.stop();
      await container.close();
    },
  };
}
