// Security teams read the audit log over the API: concurrent issues leave one unbroken chain, events
// filter and page by seq, exports round-trip, checkpoints verify, and issuers are kept out.
import { verify as verifySignature } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { appendAuditEvent, chainHash } from '../../src/audit/audit.repository.ts';
import { expectProblem, vaultClient } from '../support/issue-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

interface EventView {
  seq: string;
  at: string;
  actor: string;
  action: string;
  keyId: string | null;
  provider: string | null;
  repository: string | null;
  jobId: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

const CONCURRENT_ISSUES = 50;
const TRICKY = { note: 'a "quoted" word, a comma\nand a new line\r\n', nested: { list: [1, 'two'] } };
let harness: Harness;
let keyIds: string[];
/** Every event, ascending, read straight from Postgres after setup. */
let all: EventView[];

const asAuditor = (path: string) => harness.api('GET', path, { token: harness.tokens.auditor! });

async function allPages(query: string, limit: number): Promise<EventView[]> {
  const seen: EventView[] = [];
  let cursor: string | null = null;
  do {
    const answer = await asAuditor(
      `/v1/audit/events?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.items.length).toBeLessThanOrEqual(limit);
    seen.push(...answer.body.items);
    cursor = answer.body.nextCursor;
  } while (cursor);
  return seen;
}

/** RFC 4180: quoted fields may hold quotes (doubled), commas and line breaks; rows end in CRLF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i]!;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      row.push(field);
      field = '';
    } else if (char === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 1;
    } else field += char;
  }
  expect(field === '' && row.length === 0, 'the CSV ends with a complete row').toBe(true);
  return rows;
}

beforeAll(async () => {
  harness = await startHarness({ worker: false });
  const answers = await Promise.all(
    Array.from({ length: CONCURRENT_ISSUES }, (_, i) =>
      harness.api('POST', '/v1/keys', {
        body: {
          provider: i % 2 ? 'gitlab' : 'github',
          repository: i % 3 ? 'acme/models' : 'acme/datasets',
          jobId: `audit-${i}`,
          ttlSeconds: 600,
        },
      }),
    ),
  );
  for (const answer of answers) expect(answer.status, answer.text).toBe(201);
  keyIds = answers.map((answer) => answer.body.id);
  await harness.database.db.transaction().execute((trx) =>
    appendAuditEvent(trx, {
      actor: 'operator:o"brien, jr',
      action: 'test.tricky',
      repository: 'acme/with,comma',
      details: TRICKY,
    }),
  );
  all = await readAll();
}, 120_000);
afterAll(async () => {
  await harness?.close();
});

async function readAll(): Promise<EventView[]> {
  const rows = await harness.database.db.selectFrom('audit_events').selectAll().orderBy('seq').execute();
  return rows.map((row) => ({
    seq: row.seq,
    at: row.at.toISOString(),
    actor: row.actor,
    action: row.action,
    keyId: row.key_id,
    provider: row.provider,
    repository: row.repository,
    jobId: row.job_id,
    details: row.details,
    prevHash: row.prev_hash,
    hash: row.hash,
  }));
}

it('keeps one unbroken chain through 50 concurrent issues', async () => {
  expect(all.map((event) => event.seq)).toEqual(all.map((_, i) => String(i + 1)));
  expect(all.filter((event) => event.action === 'key.issued')).toHaveLength(CONCURRENT_ISSUES);
  const answer = await asAuditor('/v1/audit/verify');
  expect(answer.status, answer.text).toBe(200);
  expect(answer.body).toMatchObject({ ok: true, checked: all.length, lastCheckpoint: null });
  expect(answer.body.firstBadSeq).toBeUndefined();
});

it.each(['/v1/audit/events', '/v1/audit/events/export', '/v1/audit/verify', '/v1/audit/checkpoints/latest'])(
  'keeps issuers and strangers out of %s',
  async (path) => {
    expectProblem(await harness.api('GET', path), 403, 'role-not-allowed', /auditor or admin/);
    expectProblem(await harness.api('GET', path, { token: null }), 401, 'unauthorized', undefined);
    // The issuer's refusal is itself audited (the stranger is nobody to name).
    const appended = (await readAll()).slice(all.length);
    expect(appended.map((event) => [event.action, event.actor, event.details.reason])).toEqual([
      ['access.denied', 'token:ci', 'role-not-allowed'],
    ]);
    all = await readAll();
  },
);

it.each(['auditor', 'admin'])('lets an %s read events, exports and verification', async (role) => {
  for (const path of ['/v1/audit/events', '/v1/audit/events/export', '/v1/audit/verify']) {
    const answer = await harness.api('GET', path, { token: harness.tokens[role]! });
    expect(answer.status, `${path}: ${answer.text.slice(0, 200)}`).toBe(200);
  }
});

it('answers 404 for the latest checkpoint before one is written, then the signed head', async () => {
  expectProblem(
    await asAuditor('/v1/audit/checkpoints/latest'),
    404,
    'checkpoint-not-found',
    /no audit checkpoint/,
  );
  expect(await harness.service.container.auditCheckpoints.runOnce()).toMatchObject({ status: 'written' });
  const head = all.at(-1)!;
  const answer = await asAuditor('/v1/audit/checkpoints/latest');
  expect(answer.status, answer.text).toBe(200);
  expect(answer.body).toMatchObject({ seq: head.seq, head: head.hash, valid: true });
  expect(answer.body.publicKey).toBe(harness.standIns.auditSigningKey.publicKeyPem);

  // The record in Vault, checked with node:crypto against the key the service was configured with.
  const stored = await vaultClient(harness).read('secret/data/deploy-keys-audit/checkpoints/latest');
  const { seq, head: hash, at, signature } = stored.data.data as Record<string, string>;
  expect({ seq, head: hash, at, signature }).toEqual({
    seq: head.seq,
    head: head.hash,
    at: answer.body.at,
    signature: answer.body.signature,
  });
  const message = Buffer.from(`{"at":${JSON.stringify(at)},"head":"${hash}","seq":"${seq}"}`);
  const publicKey = harness.standIns.auditSigningKey.publicKeyPem;
  expect(verifySignature(null, message, publicKey, Buffer.from(signature!, 'base64'))).toBe(true);
  expect(
    verifySignature(
      null,
      Buffer.from(message.toString().replace(seq!, '1')),
      publicKey,
      Buffer.from(signature!, 'base64'),
    ),
  ).toBe(false);

  const verified = await asAuditor('/v1/audit/verify');
  expect(verified.body).toMatchObject({
    ok: true,
    checked: all.length,
    lastCheckpoint: { seq: head.seq, valid: true },
  });
});

it('pages through every event by seq, ascending and descending', async () => {
  expect(await allPages('order=asc', 17)).toEqual(all);
  expect(await allPages('order=desc', 23)).toEqual([...all].reverse());
  const first = await asAuditor('/v1/audit/events');
  expect(first.body.items).toEqual(all.slice(0, 100));
  expect(first.body.nextCursor).toBe(all.length > 100 ? '100' : null);
});

it('filters by key, repository, job, actor, action and time', async () => {
  const keyId = keyIds[7]!;
  const cases: [string, (event: EventView) => boolean][] = [
    [`keyId=${keyId}`, (e) => e.keyId === keyId],
    ['repository=acme%2Fdatasets', (e) => e.repository === 'acme/datasets'],
    ['jobId=audit-3', (e) => e.jobId === 'audit-3'],
    ['actor=token%3Aci', (e) => e.actor === 'token:ci'],
    ['action=key.issued', (e) => e.action === 'key.issued'],
    [`from=${all[9]!.at}&to=${all[30]!.at}`, (e) => e.at >= all[9]!.at && e.at < all[30]!.at],
    [
      `action=key.issued&repository=acme%2Fmodels`,
      (e) => e.action === 'key.issued' && e.repository === 'acme/models',
    ],
  ];
  for (const [query, keep] of cases) {
    const expected = all.filter(keep);
    expect(expected.length, `${query} matches something`).toBeGreaterThan(0);
    expect(await allPages(query, 10), query).toEqual(expected);
  }
  expect(all.filter((e) => e.keyId === keyId).map((e) => e.action)).toEqual(['key.requested', 'key.issued']);
});

it('refuses malformed queries as problem+json', async () => {
  expectProblem(await asAuditor('/v1/audit/events?limit=501'), 400, 'validation-failed', /limit/);
  expectProblem(await asAuditor('/v1/audit/events?cursor=abc'), 400, 'validation-failed', /cursor/);
  expectProblem(await asAuditor('/v1/audit/events?from=yesterday'), 400, 'validation-failed', /from/);
  expectProblem(await asAuditor('/v1/audit/events?order=sideways'), 400, 'validation-failed', /order/);
  expectProblem(await asAuditor('/v1/audit/events?keyId=42'), 400, 'validation-failed', /keyId/);
  expectProblem(await asAuditor('/v1/audit/events?colour=red'), 400, 'validation-failed', undefined);
  expectProblem(
    await asAuditor('/v1/audit/events?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z'),
    400,
    'invalid-range',
    /from/,
  );
  expectProblem(await asAuditor('/v1/audit/events/export?format=xml'), 400, 'validation-failed', /format/);
});

it('exports NDJSON that parses back to the same events and re-verifies offline', async () => {
  const answer = await asAuditor('/v1/audit/events/export?format=ndjson');
  expect(answer.status).toBe(200);
  expect(answer.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
  expect(answer.headers.get('content-disposition')).toMatch(
    /^attachment; filename="audit-events-.*\.ndjson"$/,
  );
  const lines = answer.text.trimEnd().split('\n');
  const events = lines.map((line) => JSON.parse(line) as EventView);
  expect(events).toEqual(all);
  for (const event of events) {
    expect(chainHash(event.prevHash, { ...event, at: new Date(event.at) })).toBe(event.hash);
  }
  const tricky = events.find((event) => event.action === 'test.tricky');
  expect(tricky?.details).toEqual(TRICKY);

  const filtered = await asAuditor(`/v1/audit/events/export?action=key.issued&keyId=${keyIds[0]}`);
  expect(
    filtered.text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line).seq),
  ).toEqual(all.filter((e) => e.action === 'key.issued' && e.keyId === keyIds[0]).map((e) => e.seq));
});

it('exports CSV whose quoting survives quotes, commas and line breaks', async () => {
  const answer = await asAuditor('/v1/audit/events/export?format=csv');
  expect(answer.status).toBe(200);
  expect(answer.headers.get('content-type')).toBe('text/csv; charset=utf-8');
  expect(answer.headers.get('content-disposition')).toMatch(/^attachment; filename="audit-events-.*\.csv"$/);
  const [header, ...rows] = parseCsv(answer.text);
  expect(header).toEqual([
    'seq',
    'at',
    'actor',
    'action',
    'keyId',
    'provider',
    'repository',
    'jobId',
    'details',
    'prevHash',
    'hash',
  ]);
  const nullable = (value: string | undefined) => (value === '' ? null : value);
  const parsed = rows.map((row) => ({
    seq: row[0],
    at: row[1],
    actor: row[2],
    action: row[3],
    keyId: nullable(row[4]),
    provider: nullable(row[5]),
    repository: nullable(row[6]),
    jobId: nullable(row[7]),
    details: JSON.parse(row[8]!),
    prevHash: row[9],
    hash: row[10],
  }));
  expect(parsed).toEqual(all);
  expect(parsed.find((event) => event.action === 'test.tricky')).toMatchObject({
    actor: 'operator:o"brien, jr',
    repository: 'acme/with,comma',
    details: TRICKY,
  });

  const empty = await asAuditor('/v1/audit/events/export?format=csv&action=never.happened');
  expect(empty.text).toBe(`${header!.join(',')}\r\n`);
});
