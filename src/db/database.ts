import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

// Timestamps come back as Date, bigint sequence numbers as strings (exact, never rounded).
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => value);

export interface Db {
  pool: pg.Pool;
  db: Kysely<Database>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createDb(databaseUrl: string, options: { max?: number } = {}): Db {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    pool,
    db,
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
      // Kysely ends the pool only once it has run a query itself; ping() goes to the pool directly,
      // and an open idle client would keep a CLI process alive for idleTimeoutMillis.
      if (!pool.ending) await pool.end();
    },
  };
}
