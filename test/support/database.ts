import { randomBytes, randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createDb, type Db } from '../../src/db/database.ts';
import { migrateDatabase } from '../../src/db/migrate.ts';
import type { Database, NewDeployKeyRow } from '../../src/db/schema.ts';

export const ADMIN_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase extends Db {
  url: string;
  name: string;
  drop(): Promise<void>;
}

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** A fresh, migrated database of this test file's own; `drop()` removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `dkr_test_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  await migrateDatabase(url);
  const db = createDb(url, { max: 5 });
  return {
    ...db,
    url,
    name,
    async drop() {
      await db.close();
      await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * A Kysely on the test database's pool that counts the statements it sends (those `counted` picks),
 * to see how many round trips a piece of code makes. Never destroy it: the pool is the database's.
 */
export function countingDb(database: TestDatabase, counted: (sql: string) => boolean = () => true) {
  const counter = { statements: 0 };
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: database.pool }),
    log: (event) => {
      if (counted(event.query.sql)) counter.statements += 1;
    },
  });
  return { db, counter };
}

/** A pending key row as an issue writes it, for job `jobId` of `caller`. */
export const pendingKeyRow = (jobId: string, caller: string): NewDeployKeyRow => ({
  id: randomUUID(),
  provider: 'github',
  repository: 'acme/models',
  repository_key: 'acme/models',
  job_id: jobId,
  delivery: 'vault',
  caller,
  owner: caller,
  expires_at: new Date(Date.now() + 600_000),
});
