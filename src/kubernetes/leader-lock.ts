// One active controller: the replica holding a Postgres session-level advisory lock acts. Postgres
// already is the source of truth every replica reaches, the lock needs no extra RBAC, and it is
// released the moment the holder's connection ends (a killed replica's session closes with it).
import pg from 'pg';
import type { Logger } from '../log.ts';

// "dkrk8s" as a number: the lock id of the Kubernetes controller.
const CONTROLLER_LOCK_ID = 0x646b_726b_3873;

export interface LeaderLock {
  /** Resolves once this replica holds the lock; `onLost` runs if the connection holding it ends. */
  acquire(onLost: () => void): Promise<void>;
  release(): Promise<void>;
}

export function createLeaderLock(databaseUrl: string, retryMs: number, logger: Logger): LeaderLock {
  let client: pg.Client | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;

  const connect = async (): Promise<pg.Client> => {
    const next = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
    next.on('error', () => {});
    await next.connect();
    return next;
  };

  async function acquire(onLost: () => void): Promise<void> {
    while (!stopped) {
      try {
        client ??= await connect();
        const { rows } = await client.query('SELECT pg_try_advisory_lock($1) AS held', [CONTROLLER_LOCK_ID]);
        if (rows[0]?.held) {
          client.once('end', () => {
            client = undefined;
            if (!stopped) onLost();
          });
          return;
        }
      } catch (error) {
        logger.warn({ err: (error as Error).message }, 'leader lock: Postgres not reachable');
        await client?.end().catch(() => undefined);
        client = undefined;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, retryMs).unref();
      });
    }
  }

  return {
    acquire,
    async release() {
      stopped = true;
      wake?.();
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}
