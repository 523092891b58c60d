// The audit chain stays verifiable whatever is audited, a chain the old hashing rule broke can be
// repaired by a signed statement (and nothing else can be passed off as such), a broken chain
// raises an alert, and the head is signed after a bounded number of events, not only per period.
import { generateKeyPairSync, sign } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAuditEvent } from '../../src/audit/audit.repository.ts';
import {
  FORMAT_CHANGE_ACTION,
  type FormatChangeStatement,
  formatChangeMessage,
  LEGACY_DATE_RULE,
} from '../../src/audit/audit-legacy.ts';
import { canonicalJson } from '../../src/audit/canonical-json.ts';
import { runCli } from '../support/cli.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

const CLI_DEADLINE_MS = 90_000;
const EVERY_EVENTS = 5;
let harness: Harness;
let env: Record<string, string>;

beforeAll(async () => {
  harness = await startHarness({
    fileConfig: { audit: { checkpointPeriodSeconds: 3_600, checkpointEveryEvents: EVERY_EVENTS } },
  });
  env = await harness.childEnv();
});
afterAll(async () => {
  await harness?.close();
});

const verify = async () => {
  const answer = await harness.api('GET', '/v1/audit/verify', { token: harness.tokens.auditor! });
  expect(answer.status, answer.text).toBe(200);
  return answer.body;
};
const brokenGauge = async () => {
  const metrics = await harness.api('GET', '/metrics', { token: null });
  return /^deploykey_audit_chain_broken\{check="full"\} (\d+)$/m.exec(metrics.text)?.[1];
};
const headSeq = async () =>
  (
    await harness.database.db
      .selectFrom('audit_events')
      .select('seq')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirstOrThrow()
  ).seq;

/** Runs SQL as the superuser with the append-only trigger off, as an attacker with that access would. */
async function tamper(statement: string) {
  const client = await harness.database.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
    await client.query(statement);
    await client.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

describe('an API token created with an expiry', () => {
  it('keeps the chain verifiable, and the checkpointer keeps signing over it', async () => {
    const created = await harness.api('POST', '/v1/admin/tokens', {
      body: { name: 'expiring-x', role: 'issuer', expiresInSeconds: 3_600 },
      token: harness.tokens.admin!,
    });
    expect(created.status, created.text).toBe(201);
    const cli = await runCli(
      ['token', 'create', '--name', 'expiring-y', '--role', 'auditor', '--expires', '90d'],
      env,
      CLI_DEADLINE_MS,
    );
    expect(cli.code, cli.stderr).toBe(0);

    const result = await verify();
    expect(result).toMatchObject({ ok: true, badEventCount: 0, badEvents: [] });
    const [event] = await harness.database.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'token.created')
      .where(sql<boolean>`details->>'name' = 'expiring-x'`)
      .execute();
    expect(event?.details.expiresAt).toBe(created.body.expiresAt);
    expect(await harness.service.container.auditCheckpoints.runOnce()).toMatchObject({
      status: expect.stringMatching(/^(written|unchanged)$/),
    });
    expect(await brokenGauge()).toBe('0');
  });
});

describe('the head is signed', () => {
  it(`within ${EVERY_EVENTS} events, long before the period`, async () => {
    const before = await harness.service.container.auditCheckpoints.latest();
    for (let i = 0; i < EVERY_EVENTS; i += 1) {
      await appendAuditEvent(harness.database.db, { actor: 'test', action: 'test.filler', details: { i } });
    }
    const head = await headSeq();
    const signed = await eventually(
      async () => {
        const latest = await harness.service.container.auditCheckpoints.latest();
        return latest && BigInt(latest.seq) >= BigInt(head) ? latest : undefined;
      },
      { what: `a checkpoint covering seq ${head}`, timeoutMs: 15_000 },
    );
    expect(signed.seq).not.toBe(before?.seq);
    expect(harness.service.container.auditCheckpoints.isValid(signed)).toBe(true);
  });
});

/** An event as versions before the format change wrote it: the date hashed as {}, stored as a string. */
async function appendAsTheOldVersionDid(expiresAt: string): Promise<string> {
  const at = new Date();
  const actor = 'token:admin';
  const action = 'token.created';
  const details = { name: 'old-version-token', role: 'issuer', expiresAt };
  const head = `${canonicalJson({ action, actor, at: at.toISOString(), details: { ...details, expiresAt: {} } }).slice(0, -1)},`;
  const { rows } = await sql<{ seq: string }>`SELECT seq FROM audit_append(${head}::text, ${at}::timestamptz,
    ${actor}::text, ${action}::text, ${JSON.stringify(details)}::jsonb, NULL, NULL, NULL, NULL)`.execute(
    harness.database.db,
  );
  return rows[0]!.seq;
}

describe('a chain broken by the old hashing rule', () => {
  let legacySeq: string;

  it('is reported broken at that event and raises the alert metric', async () => {
    legacySeq = await appendAsTheOldVersionDid('2031-05-06T07:08:09.123Z');
    const result = await verify();
    expect(result).toMatchObject({ ok: false, firstBadSeq: legacySeq, badEventCount: 1 });
    expect(await brokenGauge()).toBe('1');
    expect(await harness.service.container.auditCheckpoints.runOnce()).toMatchObject({
      status: 'chain-broken',
      firstBadSeq: legacySeq,
    });
  });

  it('is not vouched for by a format change signed with another key', async () => {
    const forger = generateKeyPairSync('ed25519').privateKey;
    const statement: FormatChangeStatement = {
      rule: LEGACY_DATE_RULE,
      throughSeq: await headSeq(),
      head: 'f'.repeat(64),
      legacySeqs: [legacySeq],
    };
    const signature = sign(null, formatChangeMessage(statement), forger).toString('base64');
    await appendAuditEvent(harness.database.db, {
      actor: 'token:admin',
      action: FORMAT_CHANGE_ACTION,
      details: { ...statement, signature },
    });
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: legacySeq });
  });

  it('refuses to repair a chain with an edit as well, and appends nothing', async () => {
    const edited = await headSeq();
    await tamper(`UPDATE audit_events SET actor = 'token:nobody' WHERE seq = ${edited}`);
    const before = await headSeq();
    const result = await runCli(['audit', 'repair'], env, CLI_DEADLINE_MS);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stdout).toContain(`seq ${edited}: hash of seq ${edited} does not match its contents`);
    expect(result.stdout).not.toContain(`seq ${legacySeq}:`);
    expect(await headSeq()).toBe(before);
    await tamper(`UPDATE audit_events SET actor = 'token:admin' WHERE seq = ${edited}`);
  });

  it('is repaired by `deploykey audit repair`: verify passes, says why, and checkpoints resume', async () => {
    const result = await runCli(['audit', 'repair', '--json'], env, CLI_DEADLINE_MS);
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout);
    expect(outcome).toMatchObject({ status: 'repaired', statement: { legacySeqs: [legacySeq] } });

    const verified = await verify();
    expect(verified).toMatchObject({ ok: true, badEventCount: 0 });
    expect(verified.warnings.join(' ')).toMatch(/1 event\(s\) up to seq \d+ carry a hash made by the rule/);
    expect(await brokenGauge()).toBe('0');
    expect(await harness.service.container.auditCheckpoints.runOnce()).toMatchObject({ status: 'written' });

    // Running it again finds nothing left to vouch for.
    const again = await runCli(['audit', 'repair'], env, CLI_DEADLINE_MS);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^nothing to repair/);
  });

  it('still finds a later edit of a vouched-for event that is not the old rule', async () => {
    await tamper(`UPDATE audit_events SET details = details || '{"role":"admin"}' WHERE seq = ${legacySeq}`);
    // A verification is reused while the head is unchanged (for at most 30 s); the service's own
    // next event moves the head.
    await appendAuditEvent(harness.database.db, { actor: 'test', action: 'test.filler', details: {} });
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: legacySeq });
  });
});
