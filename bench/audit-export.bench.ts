// How fast, and in how much memory, the audit export streams a large log.
// Usage: node --import tsx bench/audit-export.bench.ts [--events N] [--format ndjson|csv]
// Prints one JSON object on stdout; progress goes to stderr.
import { randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { chainHash, GENESIS_HASH } from '../src/audit/audit.repository.ts';
import { type ExportFormat, exportAuditEvents } from '../src/audit/audit-export.ts';
import { walkAuditChain } from '../src/audit/audit-verify.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/database.ts';

const BATCH = 5_000;
const SAMPLE_MS = 20;
const ACTIONS = ['key.requested', 'key.issued', 'key.revoke_requested', 'key.revoked'];

const { values } = parseArgs({
  options: { events: { type: 'string', default: '100000' }, format: { type: 'string', default: 'ndjson' } },
  strict: true,
});
const events = Number(values.events);
const format = values.format as ExportFormat;
if (!Number.isInteger(events) || events < 1) throw new Error('--events takes a positive whole number');
if (format !== 'ndjson' && format !== 'csv') throw new Error('--format is ndjson or csv');

/** Inserts `count` events chained exactly as appendAuditEvent chains them, in multi-row batches. */
async function insertChain(database: TestDatabase, count: number): Promise<void> {
  const start = Date.now() - count;
  let prevHash = GENESIS_HASH;
  let keyId = randomUUID();
  for (let first = 1; first <= count; first += BATCH) {
    const columns: string[][] = Array.from({ length: 11 }, () => []);
    for (let seq = first; seq < Math.min(first + BATCH, count + 1); seq += 1) {
      if (seq % 4 === 1) keyId = randomUUID();
      const event = {
        seq: String(seq),
        at: new Date(start + seq),
        actor: seq % 4 === 1 ? `token:bench-${seq % 7}` : 'system:deploykey-rotator',
        action: ACTIONS[(seq - 1) % 4]!,
        keyId,
        provider: seq % 2 ? 'github' : 'gitlab',
        repository: `acme/repo-${seq % 13}`,
        jobId: `bench-${Math.floor((seq - 1) / 4)}`,
        details: { attempt: seq % 3, reason: 'job-completed', note: 'a "quoted", comma' },
      };
      const hash = chainHash(prevHash, event);
      const row = [
        event.seq,
        event.at.toISOString(),
        event.actor,
        event.action,
        event.keyId,
        event.provider,
        event.repository,
        event.jobId,
        JSON.stringify(event.details),
        prevHash,
        hash,
      ];
      for (const [i, value] of row.entries()) columns[i]!.push(value);
      prevHash = hash;
    }
    await database.pool.query(
      `INSERT INTO audit_events (seq, at, actor, action, key_id, provider, repository, job_id, details, prev_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::uuid[], $6::text[],
                            $7::text[], $8::text[], $9::jsonb[], $10::text[], $11::text[])`,
      columns,
    );
  }
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

const database = await createTestDatabase();
try {
  const insertStarted = performance.now();
  await insertChain(database, events);
  console.error(`inserted ${events} events in ${((performance.now() - insertStarted) / 1000).toFixed(1)} s`);

  (globalThis as { gc?: () => void }).gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, SAMPLE_MS);
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      bytes += chunk.length;
      peak = Math.max(peak, process.memoryUsage().rss);
      done();
    },
  });
  const started = performance.now();
  await pipeline(Readable.from(exportAuditEvents(database.db, {}, format)), sink);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  console.error(`exported ${mb(bytes)} MB of ${format}`);

  const walk = await walkAuditChain(database.db);
  if (!walk.ok || walk.checked !== events) {
    throw new Error(`the inserted chain does not verify: ${walk.reason ?? `${walk.checked} checked`}`);
  }
  process.stdout.write(
    `${JSON.stringify({
      benchmark: 'audit-export',
      events,
      seconds: Math.round(seconds * 1000) / 1000,
      eventsPerSecond: Math.round(events / seconds),
      peakRssMb: mb(peak),
      baselineRssMb: mb(baseline),
    })}\n`,
  );
} finally {
  await database.drop();
}
