import { createContainer } from '../container.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { buildApp } from '../http/app.ts';
import { startKubernetesController } from '../kubernetes/controller.ts';
import { createLogger } from '../log.ts';
import { assertDatabaseReachable, loadConfigOrExplain } from './startup.ts';

export type Role = 'api' | 'worker' | 'controller' | 'all';
const SHUTDOWN_DEADLINE_MS = 10_000;

export interface RunningService {
  /** Where the API listens; undefined for a role that serves no HTTP. */
  url: string | undefined;
  stop(): Promise<void>;
}

export async function startService(role: Role, options: { migrate: boolean }): Promise<RunningService> {
  const config = loadConfigOrExplain();
  await assertDatabaseReachable(config);
  const logger = createLogger(config.logLevel);
  if (options.migrate) {
    const applied = await migrateDatabase(config.databaseUrl);
    if (applied.length > 0) logger.info({ applied }, 'database migrated');
  }
  const container = createContainer(config, logger);
  await container.connect();
  const stops: (() => Promise<void>)[] = [];
  let url: string | undefined;

  if (role === 'api' || role === 'all') {
    const app = await buildApp(container);
    url = await app.listen({ host: config.http.host, port: config.http.port });
    stops.push(() => app.close());
  }
  if (role === 'worker' || role === 'all') {
    const worker = container.startWorker();
    stops.push(() => worker.stop());
  }
  if (role === 'controller' || (role === 'all' && config.kubernetes.enabled)) {
    const controller = startKubernetesController(container);
    stops.push(() => controller.stop());
  }
  logger.info({ role, url }, 'deploykey-rotator started');

  return {
    url,
    async stop() {
      for (const stop of stops) await stop();
      await container.close();
      logger.info('deploykey-rotator stopped');
    },
  };
}

/** Stops on SIGTERM/SIGINT: in-flight work finishes, then pools close; never longer than 10 s. */
export function stopOnSignals(service: RunningService): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const deadline = setTimeout(() => {
      console.error(`deploykey: shutdown took longer than ${SHUTDOWN_DEADLINE_MS / 1000}s after ${signal}`);
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    service.stop().then(
      () => process.exit(0),
      (error: Error) => {
        console.error(`deploykey: shutdown failed: ${error.message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
