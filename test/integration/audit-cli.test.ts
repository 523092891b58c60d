// Operators check and export the audit log with `deploykey audit`, straight from Postgres, while
// the worker keeps anchoring the chain's head in Vault.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli as runCliWithin } from '../support/cli.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

// Each run starts node with tsx; a busy machine makes that slow, and a deadline here is no finding.
const CLI_DEADLINE_MS = 90_000;
const runCli = (args: string[], environment: Record<string, string>) =>
  runCliWithin(args, environment, CLI_DEADLINE_MS);

let harness: Harness;
let env: Record<string, string>;
let dir: string;

const headSeq = async () =>
  (
    await harness.database.db
      .selectFrom('audit_events')
      .select('seq')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst()
  )?.seq;

beforeAll(async () => {
  harness = await startHarness({ fileConfig: { audit: { checkpointPeriodSeconds: 1 } } });
  env = await harness.childEnv();
  dir = await mkdtemp(join(tmpdir(), 'deploykey-audit-cli-'));
  for (const jobId of ['cli-a', 'cli-b']) {
    const answer = await harness.api('POST', '/v1/keys', {
      body: { provider: 'github', repository: 'acme/models', jobId, ttlSeconds: 600 },
    });
    expect(answer.status, answer.text).toBe(201);
  }
});
afterAll(async () => {
  await harness?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('has the worker sign the chain head into Vault on its own', async () => {
  const head = await headSeq();
  const checkpoint = await eventually(
    async () => {
      const latest = await harness.service.container.auditCheckpoints.latest();
      return latest && latest.seq === head ? latest : undefined;
    },
    { what: `a checkpoint at seq ${head}`, timeoutMs: 10_000 },
  );
  expect(harness.service.container.auditCheckpoints.isValid(checkpoint)).toBe(true);
});

it('verifies an intact log with exit 0 and a one-line summary', async () => {
  const [result, json] = await Promise.all([
    runCli(['audit', 'verify'], env),
    runCli(['audit', 'verify', '--json'], env),
  ]);
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toMatch(
    /^audit log intact: \d+ events checked; last checkpoint seq \d+ \(signature valid\)\n$/,
  );
  expect(json.code, json.stderr).toBe(0);
  const body = JSON.parse(json.stdout);
  expect(body).toMatchObject({ ok: true, lastCheckpoint: { valid: true } });
  expect(body.checked).toBeGreaterThanOrEqual(Number(body.lastCheckpoint.seq));
}, 240_000);

it('exports NDJSON to stdout and CSV to a private file, within --from/--to', async () => {
  const rows = await harness.database.db
    .selectFrom('audit_events')
    .select(['seq', 'at'])
    .orderBy('seq')
    .execute();
  const out = join(dir, 'audit.csv');
  const from = rows[2]!.at.toISOString();
  const to = rows[5]!.at.toISOString();
  const [ndjson, csv] = await Promise.all([
    runCli(['audit', 'export'], env),
    runCli(['audit', 'export', '--format', 'csv', '--from', from, '--to', to, '--out', out], env),
  ]);
  expect(ndjson.code, ndjson.stderr).toBe(0);
  const seqs = ndjson.stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line).seq);
  expect(seqs.slice(0, rows.length)).toEqual(rows.map((row) => row.seq));

  expect(csv.code, csv.stderr).toBe(0);
  expect(csv.stdout).toBe('');
  const lines = (await readFile(out, 'utf8')).split('\r\n').filter(Boolean);
  expect(lines[0]).toBe('seq,at,actor,action,keyId,provider,repository,jobId,details,prevHash,hash');
  const expected = rows.filter((row) => row.at >= rows[2]!.at && row.at < rows[5]!.at).map((row) => row.seq);
  expect(lines.slice(1).map((line) => line.split(',')[0])).toEqual(expected);
  expect((await stat(out)).mode & 0o777).toBe(0o600);
}, 240_000);

it('explains wrong usage with exit 2', async () => {
  const cases = [
    ['audit', 'export', '--from', 'last tuesday'],
    ['audit', 'verify', '--out', 'x'],
  ];
  const results = await Promise.all(cases.map((args) => runCli(args, env)));
  results.forEach((result, i) => {
    expect(result.code, `${cases[i]!.join(' ')}: ${result.stderr}`).toBe(2);
    expect(result.stderr).toMatch(/usage: deploykey audit/);
  });
}, 240_000);

it('says so when no signing key is configured, and refuses a key that is not Ed25519', async () => {
  const { DEPLOYKEY_AUDIT_SIGNING_KEY: _key, ...unsigned } = env;
  const [result, wrong] = await Promise.all([
    runCli(['audit', 'verify'], unsigned),
    runCli(['audit', 'verify'], { ...env, DEPLOYKEY_AUDIT_SIGNING_KEY: 'bm90IGEga2V5' }),
  ]);
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toMatch(/^audit log intact: \d+ events checked; no checkpoint\n$/);
  expect(result.stderr).toMatch(/no audit signing key is configured \(DEPLOYKEY_AUDIT_SIGNING_KEY\)/);

  expect(wrong.code).toBe(1);
  expect(wrong.stderr).toMatch(/DEPLOYKEY_AUDIT_SIGNING_KEY is not a private key/);
}, 240_000);

it('exits 3 naming the bad seq once a row was edited', async () => {
  const client = await harness.database.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
    await client.query(`UPDATE audit_events SET actor = 'token:nobody' WHERE seq = 3`);
    await client.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  const [result, json] = await Promise.all([
    runCli(['audit', 'verify'], env),
    runCli(['audit', 'verify', '--json'], env),
  ]);
  expect(result.code, result.stderr).toBe(3);
  expect(result.stdout).toMatch(/^audit log BROKEN at seq 3: hash of seq 3 does not match its contents/);
  expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
  expect(json.code).toBe(3);
  expect(JSON.parse(json.stdout)).toMatchObject({
    ok: false,
    firstBadSeq: '3',
    badEventCount: 1,
    badEvents: [{ seq: '3', reason: 'hash of seq 3 does not match its contents' }],
  });
}, 240_000);
