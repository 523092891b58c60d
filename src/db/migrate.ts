import { runner } from 'node-pg-migrate';
import { projectPath } from '../project-root.ts';

export const MIGRATIONS_DIR = projectPath('migrations');

/** Applies every pending forward migration; returns the names applied. Safe to run concurrently. */
export async function migrateDatabase(
  databaseUrl: string,
  log: (message: string) => void = () => {},
): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'schema_migrations',
    checkOrder: true,
    singleTransaction: true,
    advisoryLockMode: 'wait',
    log,
    logger: { debug: () => {}, info: log, warn: log, error: log },
  });
  return applied.map((migration) => migration.name);
}
