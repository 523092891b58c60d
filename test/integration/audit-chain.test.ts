// The audit log proves it was not edited: the service's role cannot change a row, and rows edited,
// deleted, swapped or cut off by a superuser are found, every one of them at its own seq.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { appendAuditEvent, chainHash } from '../../src/audit/audit.repository.ts';
import { listAuditEvents } from '../../src/audit/audit-query.ts';
import { MAX_LISTED_BAD_EVENTS, verifyAuditLog } from '../../src/audit/audit-verify.ts';
import {
  type AuditCheckpoints,
  type AuditCheckpointsDeps,
  createAuditCheckpoints,
} from '../../src/audit/checkpoint.ts';
import { createVaultCheckpointStore } from '../../src/audit/checkpoint-store.ts';
import type { Timers } from '../../src/time.ts';
import { createVaultClient, staticToken } from '../../src/vault/vault-client.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createCapturedLogger } from '../support/log-capture.ts';

const EVENTS = 25;
const VAULT_TOKEN = 'hvs.audit-chain-test-root';
let database: TestDatabase;
let vault: VaultStandIn;
let checkpoints: AuditCheckpoints;
const logs = createCapturedLogger('debug');
const SIGNING_KEY = generateKeyPairSync('ed25519').privateKey;

/** Checkpoints of the test database into the Vault stand-in, signed with SIGNING_KEY unless told otherwise. */
function checkpointsWith(options: Partial<AuditCheckpointsDeps> = {}): AuditCheckpoints {
  return createAuditCheckpoints({
    db: database,
    store: createVaultCheckpointStore({
      vault: createVaultClient({ addr: vault.addr, token: staticToken(VAULT_TOKEN) }),
      kvMount: 'secret',
      pathPrefix: 'deploy-keys',
    }),
    signingKey: SIGNING_KEY,
    clock: () => new Date(),
    logger: logs.logger,
    periodSeconds: 300,
    ...options,
  });
}

async function append(count: number, tag: string) {
  for (let i = 0; i < count; i += 1) {
    await database.db.transaction().execute((trx) =>
      appendAuditEvent(trx, {
        actor: `token:${tag}`,
        action: i % 2 ? 'key.issued' : 'key.requested',
        repository: 'acme/models',
        jobId: `${tag}-${i}`,
        details: { i, note: 'quote " comma , newline \n' },
      }),
    );
  }
}

/** Runs SQL as the superuser with the append-only trigger off, as an attacker with that access would. */
async function tamper(...statements: string[]) {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
    for (const statement of statements) await client.query(statement);
    await client.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

const verify = () => verifyAuditLog({ db: database.db, checkpoints }, { pageSize: 7 });

beforeAll(async () => {
  database = await createTestDatabase();
  vault = await startVaultStandIn({ rootToken: VAULT_TOKEN });
  checkpoints = checkpointsWith();
});
afterAll(async () => {
  await vault?.close();
  await database?.drop();
});

beforeEach(async () => {
  // Every test starts from an intact chain of EVENTS events and no checkpoint.
  await tamper('DELETE FROM audit_events');
  await fetch(`${vault.addr}/v1/secret/metadata/deploy-keys-audit/checkpoints/latest`, {
    method: 'DELETE',
    headers: { 'x-vault-token': VAULT_TOKEN },
  });
  await append(EVENTS, 'chain');
  expect(await verify()).toMatchObject({ ok: true, checked: EVENTS });
});

it('rejects UPDATE, DELETE and TRUNCATE through the service’s own connection', async () => {
  await expect(database.pool.query(`UPDATE audit_events SET actor = 'x' WHERE seq = 3`)).rejects.toThrow(
    /append-only \(UPDATE rejected\)/,
  );
  await expect(database.pool.query('DELETE FROM audit_events WHERE seq = 3')).rejects.toThrow(
    /append-only \(DELETE rejected\)/,
  );
  await expect(database.pool.query('TRUNCATE audit_events')).rejects.toThrow(
    /append-only \(TRUNCATE rejected\)/,
  );
  expect(await verify()).toMatchObject({ ok: true, checked: EVENTS });
});

it('finds an edited row at its own seq', async () => {
  await tamper(`UPDATE audit_events SET details = '{"i": 11, "note": "harmless"}' WHERE seq = 12`);
  const result = await verify();
  expect(result).toMatchObject({ ok: false, firstBadSeq: '12', checked: EVENTS, badEventCount: 1 });
  expect(result.reason).toMatch(/does not match its contents/);
  expect(result.badEvents).toEqual([{ seq: '12', reason: result.reason }]);
});

it('finds an edited row whose hash was recomputed where the next row stops linking to it', async () => {
  const [row] = (await listAuditEvents(database.db, { jobId: 'chain-19' }, { limit: 1 })).items;
  expect(row?.seq).toBe('20');
  const forged = { ...row!, seq: '20', at: new Date(row!.at), actor: 'token:someone-else' };
  await tamper(
    `UPDATE audit_events SET actor = 'token:someone-else', hash = '${chainHash(row!.prevHash, forged)}' WHERE seq = 20`,
  );
  const result = await verify();
  expect(result).toMatchObject({ ok: false, firstBadSeq: '21', checked: EVENTS });
  expect(result.reason).toMatch(/prev_hash of seq 21 does not match the hash of seq 20/);
  expect(result.badEvents.map((bad) => bad.seq)).toEqual(['21']);
});

it('finds a deleted row at the missing seq', async () => {
  await tamper('DELETE FROM audit_events WHERE seq = 8');
  const result = await verify();
  expect(result).toMatchObject({ ok: false, firstBadSeq: '8', checked: EVENTS - 1 });
  expect(result.reason).toMatch(/seq 8 is missing/);
  expect(result.badEvents.map((bad) => bad.seq)).toEqual(['8']);
});

it('finds a deleted first row', async () => {
  await tamper('DELETE FROM audit_events WHERE seq = 1');
  expect(await verify()).toMatchObject({
    ok: false,
    firstBadSeq: '1',
    checked: EVENTS - 1,
    badEventCount: 1,
  });
});

it('finds a swapped pair at the first of the two', async () => {
  await tamper(
    'UPDATE audit_events SET seq = -1 WHERE seq = 15',
    'UPDATE audit_events SET seq = 15 WHERE seq = 16',
    'UPDATE audit_events SET seq = 16 WHERE seq = -1',
  );
  const result = await verify();
  expect(result).toMatchObject({ ok: false, firstBadSeq: '15', checked: EVENTS });
  // Both moved rows, and the row after them, which no longer links to what precedes it.
  expect(result.badEvents.map((bad) => bad.seq)).toEqual(['15', '16', '17']);
});

it('lists every edited row, so a second edit changes the verdict', async () => {
  await tamper(`UPDATE audit_events SET details = '{"i": 4}' WHERE seq = 5`);
  const once = await verify();
  expect(once.badEvents.map((bad) => bad.seq)).toEqual(['5']);
  await tamper(`UPDATE audit_events SET actor = 'token:nobody' WHERE seq = 18`);
  const twice = await verify();
  expect(twice).toMatchObject({ ok: false, firstBadSeq: '5', badEventCount: 2 });
  expect(twice.badEvents).toEqual([
    { seq: '5', reason: 'hash of seq 5 does not match its contents' },
    { seq: '18', reason: 'hash of seq 18 does not match its contents' },
  ]);
  expect(JSON.stringify(twice)).not.toBe(JSON.stringify(once));
});

it('bounds the list of bad rows but counts them all', async () => {
  await append(MAX_LISTED_BAD_EVENTS + 10 - EVENTS, 'many');
  await tamper(`UPDATE audit_events SET details = '{"edited": true}'`);
  const result = await verify();
  expect(result).toMatchObject({ ok: false, firstBadSeq: '1', badEventCount: MAX_LISTED_BAD_EVENTS + 10 });
  expect(result.badEvents).toHaveLength(MAX_LISTED_BAD_EVENTS);
  expect(result.badEvents.at(-1)?.seq).toBe(String(MAX_LISTED_BAD_EVENTS));
});

it('reports a chain with no checkpoint as intact but says a truncated tail would go unseen', async () => {
  const result = await verify();
  expect(result).toMatchObject({ ok: true, lastCheckpoint: null });
  expect(result.warnings?.join(' ')).toMatch(/no checkpoint has been written yet/);
});

it('catches a truncated tail against the last checkpoint, and signs nothing over it', async () => {
  expect(await checkpoints.runOnce()).toMatchObject({
    status: 'written',
    checkpoint: { seq: String(EVENTS) },
  });
  const intact = await verify();
  expect(intact).toMatchObject({
    ok: true,
    checked: EVENTS,
    lastCheckpoint: { seq: String(EVENTS), valid: true },
  });
  expect(intact.warnings).toBeUndefined();

  await tamper(`DELETE FROM audit_events WHERE seq > ${EVENTS - 3}`);
  const truncated = await verify();
  expect(truncated).toMatchObject({ ok: false, checked: EVENTS - 3, firstBadSeq: String(EVENTS - 2) });
  expect(truncated.reason).toMatch(/chain ends at seq 22 but the last checkpoint covers seq 25/);

  // New events grow the cut chain past the checkpoint again: the head there no longer matches.
  await append(5, 'after-cut');
  const regrown = await verify();
  expect(regrown).toMatchObject({ ok: false, checked: EVENTS + 2, firstBadSeq: String(EVENTS) });
  expect(regrown.reason).toMatch(/differs from the signed checkpoint/);
  expect(await checkpoints.runOnce()).toMatchObject({ status: 'chain-broken', firstBadSeq: String(EVENTS) });
  expect((await checkpoints.latest())?.seq).toBe(String(EVENTS));
  expect(logs.text()).toContain('audit chain does not extend the last checkpoint');
});

it('moves the checkpoint forward as the chain grows, and only when it grows', async () => {
  const first = await checkpoints.runOnce();
  expect(first).toMatchObject({ status: 'written', checkpoint: { seq: String(EVENTS) } });
  expect(await checkpoints.runOnce()).toMatchObject({ status: 'unchanged' });
  await append(3, 'more');
  expect(await checkpoints.runOnce()).toMatchObject({
    status: 'written',
    checkpoint: { seq: String(EVENTS + 3) },
  });
  expect(await verify()).toMatchObject({ ok: true, checked: EVENTS + 3, lastCheckpoint: { valid: true } });
});

it('schedules passes on the injected clock and timers: none before the period is over, one once it is', async () => {
  let nowMs = Date.parse('2030-01-01T00:00:00.000Z');
  const due: (() => void)[] = [];
  let onScheduled = () => {};
  const timers: Timers = {
    sleep: async () => {},
    after(_ms, run) {
      due.push(run);
      onScheduled();
      return () => {};
    },
  };
  const scheduled = () => new Promise<void>((resolve) => (onScheduled = resolve));
  // Fires the waiting timer and returns once its pass (if any) is over and the next one is set.
  const fire = async () => {
    const next = scheduled();
    due.shift()!();
    await next;
  };
  const periodic = checkpointsWith({ clock: () => new Date(nowMs), timers });
  try {
    const first = scheduled();
    periodic.start();
    await first;
    expect((await periodic.latest())?.seq, 'a pass at start').toBe(String(EVENTS));
    await append(2, 'later');
    nowMs += 299_000;
    await fire();
    expect((await periodic.latest())?.seq, 'the period is not over on the injected clock').toBe(
      String(EVENTS),
    );
    nowMs += 1_000;
    await fire();
    expect(await periodic.latest()).toMatchObject({
      seq: String(EVENTS + 2),
      at: '2030-01-01T00:05:00.000Z',
    });
  } finally {
    await periodic.stop();
  }
});

it('does not trust a checkpoint whose signature does not verify', async () => {
  await checkpoints.runOnce();
  const written = (await checkpoints.latest())!;
  // A forged checkpoint (another key) that matches the chain exactly is still refused.
  const forger = checkpointsWith({ signingKey: generateKeyPairSync('ed25519').privateKey });
  await append(1, 'forged');
  expect(await forger.runOnce()).toMatchObject({ status: 'written' });
  const result = await verify();
  expect(result).toMatchObject({ ok: false, lastCheckpoint: { seq: String(EVENTS + 1), valid: false } });
  expect(result.reason).toMatch(/signature does not verify/);
  expect(written.seq).toBe(String(EVENTS));
});

it('locks out a second writer while one checkpoint pass runs', async () => {
  const client = await database.pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [0x64_6b_72_63_6b_70]);
    expect(await checkpoints.runOnce()).toEqual({ status: 'busy' });
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [0x64_6b_72_63_6b_70]);
    client.release();
  }
  expect(await checkpoints.runOnce()).toMatchObject({ status: 'written' });
});
