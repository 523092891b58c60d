// Migration 004 on a database the earlier versions filled: every key gets its owner (its caller)
// and repository identity, and a job that held live keys for one repository in several spellings
// keeps the oldest; the others are revoked, audited, and the audit chain still verifies.
import { randomBytes, randomUUID } from 'node:crypto';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { appendAuditEvent } from '../../src/audit/audit.repository.ts';
import { walkAuditChain } from '../../src/audit/audit-verify.ts';
import { createDb, type Db } from '../../src/db/database.ts';
import { MIGRATIONS_DIR, migrateDatabase } from '../../src/db/migrate.ts';
import { ADMIN_DATABASE_URL } from '../support/database.ts';

const name = `dkr_test_${randomBytes(6).toString('hex')}`;
const url = `postgres://postgres@127.0.0.1:5432/${name}`;
let db: Db;

async function admin(statement: string) {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await admin(`CREATE DATABASE ${name}`);
  await runner({
    databaseUrl: url,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    count: 3,
    migrationsTable: 'schema_migrations',
    log: () => {},
  });
  db = createDb(url, { max: 2 });
});
afterAll(async () => {
  await db?.close();
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

const SPELLINGS = ['acme/models', 'ACME/models', 'Acme/Models'];

it('keeps the oldest live key of each spelling group, revokes the rest audited, and the chain verifies', async () => {
  const ids = SPELLINGS.map(() => randomUUID());
  const other = randomUUID();
  const start = Date.now() - 60_000;
  for (const [i, repository] of [...SPELLINGS, 'acme/datasets'].entries()) {
    await db.pool.query(
      `INSERT INTO deploy_keys (id, provider, repository, job_id, status, delivery, caller, created_at, expires_at)
       VALUES ($1, 'github', $2, 'job-1', 'active', 'vault', 'token:ci', $3, $4)`,
      [ids[i] ?? other, repository, new Date(start + i * 1000), new Date(Date.now() + 600_000)],
    );
  }
  await appendAuditEvent(db.db, {
    actor: 'token:ci',
    action: 'key.issued',
    details: { before: 'migration' },
  });

  expect(await migrateDatabase(url)).toEqual(
    expect.arrayContaining(['004_key-owner-and-repository-identity']),
  );

  const rows = await db.db.selectFrom('deploy_keys').selectAll().orderBy('created_at').execute();
  expect(rows.map((row) => [row.repository, row.status, row.owner, row.repository_key])).toEqual([
    ['acme/models', 'active', 'token:ci', 'acme/models'],
    ['ACME/models', 'revoking', 'token:ci', null],
    ['Acme/Models', 'revoking', 'token:ci', null],
    ['acme/datasets', 'active', 'token:ci', 'acme/datasets'],
  ]);
  const audited = await db.db
    .selectFrom('audit_events')
    .selectAll()
    .where('action', '=', 'key.revoke_requested')
    .orderBy('seq')
    .execute();
  expect(audited.map((event) => event.key_id)).toEqual([ids[1], ids[2]]);
  expect(audited[0]).toMatchObject({
    actor: 'system:deploykey-rotator',
    repository: 'ACME/models',
    job_id: 'job-1',
  });
  expect(await walkAuditChain(db.db)).toMatchObject({ ok: true, checked: 3 });

  // From now on one spelling more is refused by the database itself.
  await expect(
    db.pool.query(
      `INSERT INTO deploy_keys (id, provider, repository, repository_key, job_id, status, delivery, caller, owner, expires_at)
       VALUES ($1, 'github', 'acme/MODELS', 'acme/models', 'job-1', 'pending', 'vault', 'token:ci', 'token:ci', now())`,
      [randomUUID()],
    ),
  ).rejects.toThrow(/deploy_keys_one_live_per_owner_job_repository/);
});
