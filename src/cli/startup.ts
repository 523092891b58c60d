import { type Config, ConfigError, loadConfig } from '../config.ts';
import { createDb } from '../db/database.ts';

export class StartupError extends Error {
  override name = 'StartupError';
}

export function loadConfigOrExplain(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw new StartupError(error.message);
    throw error;
  }
}

/** Where a URL points, without its credentials, for messages an operator reads. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'an unparsable address';
  }
}

export async function assertDatabaseReachable(config: Config): Promise<void> {
  const db = createDb(config.databaseUrl, { max: 1 });
  try {
    await db.ping();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new StartupError(
      `cannot reach PostgreSQL at DATABASE_URL (${describeUrl(config.databaseUrl)}): ${reason}`,
    );
  } finally {
    await db.close();
  }
}
