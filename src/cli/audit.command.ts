import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { type ExportFormat, exportAuditEvents } from '../audit/audit-export.ts';
import type { AuditFilter } from '../audit/audit-query.ts';
import { type RepairOutcome, repairAuditChain } from '../audit/audit-repair.ts';
import { type AuditVerification, type CheckpointSource, verifyAuditLog } from '../audit/audit-verify.ts';
import { checkpointSignatureValid, publicKeyPem } from '../audit/checkpoint-signing.ts';
import { createVaultCheckpointStore } from '../audit/checkpoint-store.ts';
import type { Config } from '../config.ts';
import { createDb } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { createLogger } from '../log.ts';
import { systemClock, systemTimers } from '../time.ts';
import { createServiceVault } from '../vault/service-vault.ts';
import { assertDatabaseReachable, loadConfigOrExplain, StartupError } from './startup.ts';
import { UsageError } from './usage-error.ts';

export const AUDIT_USAGE = `usage: deploykey audit verify [--json]
       deploykey audit export [--format ndjson|csv] [--from ISO] [--to ISO] [--out FILE]
       deploykey audit repair [--json]

Reads the audit log straight from the database (needs DATABASE_URL and the service's other settings).
verify recomputes the whole hash chain and checks it against the last signed checkpoint in Vault;
it lists every bad event and exits 0 when the log is intact and 3 when it is broken. export streams
the events, oldest first, to stdout or FILE; --from is inclusive, --to exclusive.
repair is for a chain that earlier versions broke by hashing a date in an event's details as {}
(an API token created with an expiry): if every failing event matches that old rule and nothing
else, it appends one audit.format_changed event, signed with DEPLOYKEY_AUDIT_SIGNING_KEY, naming
them, and verify accepts exactly those from then on. Any other failure is an edit: repair changes
nothing and exits 3.

examples:
  deploykey audit verify
  deploykey audit export --format csv --from 2024-01-01T00:00:00Z --out audit.csv
  deploykey audit repair`;

/** Exit status of `audit verify` when the chain is broken or no longer matches its checkpoint. */
export const EXIT_CHAIN_BROKEN = 3;
const FORMATS: ExportFormat[] = ['ndjson', 'csv'];

function parseInstant(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(date.getTime())) {
    throw new UsageError(`${flag} takes an ISO 8601 date-time such as 2024-05-01T00:00:00Z`, AUDIT_USAGE);
  }
  return date;
}

function checkpointSource(config: Config): CheckpointSource {
  const key = config.audit.signingKey;
  const publicKey = key ? publicKeyPem(key) : undefined;
  const store = createVaultCheckpointStore({
    vault: createServiceVault(config.vault, {
      clock: systemClock,
      timers: systemTimers,
      logger: createLogger('silent'),
    }).client,
    kvMount: config.vault.kvMount,
    pathPrefix: config.vault.pathPrefix,
  });
  return {
    enabled: publicKey !== undefined,
    publicKey,
    latest: () => store.read(),
    isValid: (checkpoint) => publicKey !== undefined && checkpointSignatureValid(checkpoint, publicKey),
  };
}

type AuditAction = 'verify' | 'export' | 'repair';
const ACTIONS: AuditAction[] = ['verify', 'export', 'repair'];

function parseAuditArgs(action: AuditAction, args: string[]) {
  try {
    return parseArgs({
      args,
      options:
        action !== 'export'
          ? { json: { type: 'boolean' } }
          : {
              format: { type: 'string' },
              from: { type: 'string' },
              to: { type: 'string' },
              out: { type: 'string' },
            },
      strict: true,
    }) as { values: { json?: boolean; format?: string; from?: string; to?: string; out?: string } };
  } catch (error) {
    throw new UsageError((error as Error).message, AUDIT_USAGE);
  }
}

export function verificationSummary(result: AuditVerification): string {
  const checkpoint = result.lastCheckpoint
    ? `; last checkpoint seq ${result.lastCheckpoint.seq} (signature ${result.lastCheckpoint.valid ? 'valid' : 'INVALID'})`
    : '; no checkpoint';
  if (result.ok) return `audit log intact: ${result.checked} events checked${checkpoint}`;
  const where = result.firstBadSeq ? ` at seq ${result.firstBadSeq}` : '';
  const more = result.badEventCount > 1 ? ` and ${result.badEventCount - 1} more bad event(s)` : '';
  const lines = result.badEvents.map((bad) => `  seq ${bad.seq}: ${bad.reason}`);
  const listed = lines.length > 1 ? `\n${lines.join('\n')}` : '';
  return `audit log BROKEN${where}: ${result.reason}${more} (${result.checked} events checked${checkpoint})${listed}`;
}

const listSeqs = (seqs: string[]) =>
  seqs.length > 20 ? `${seqs.slice(0, 20).join(', ')}, …` : seqs.join(', ');

function repairSummary(outcome: RepairOutcome): string {
  switch (outcome.status) {
    case 'intact':
      return `nothing to repair: ${outcome.checked} events checked, none hashed by the old rule`;
    case 'repaired':
      return `repaired: audit.format_changed at seq ${outcome.seq} vouches for ${outcome.statement.legacySeqs.length} event(s) hashed by the old rule (seq ${listSeqs(outcome.statement.legacySeqs)})`;
    case 'tampered':
      return `NOT repaired: ${outcome.badEventCount} event(s) fail for another reason than the old rule, which is an edit:\n${outcome.badEvents.map((bad) => `  seq ${bad.seq}: ${bad.reason}`).join('\n')}`;
  }
}

async function runRepair(config: Config, db: Kysely<Database>, json: boolean): Promise<void> {
  if (!config.audit.signingKey) {
    throw new StartupError('audit repair signs its statement: set DEPLOYKEY_AUDIT_SIGNING_KEY');
  }
  const outcome = await repairAuditChain({
    db,
    signingKey: config.audit.signingKey,
    actor: 'operator:deploykey-audit-repair',
  });
  process.stdout.write(`${json ? JSON.stringify(outcome) : repairSummary(outcome)}\n`);
  if (outcome.status === 'tampered') process.exitCode = EXIT_CHAIN_BROKEN;
}

export async function runAuditCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (!ACTIONS.includes(action as AuditAction)) {
    throw new UsageError(action ? `unknown audit command "${action}"` : 'missing audit command', AUDIT_USAGE);
  }
  const { values } = parseAuditArgs(action as AuditAction, rest);
  const format = (values.format ?? 'ndjson') as ExportFormat;
  if (!FORMATS.includes(format))
    throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`, AUDIT_USAGE);
  const from = parseInstant(values.from, '--from');
  const to = parseInstant(values.to, '--to');
  if (from && to && from > to) throw new UsageError('--from must not be later than --to', AUDIT_USAGE);
  if (values.out === '') throw new UsageError('--out needs a file name', AUDIT_USAGE);

  const config = loadConfigOrExplain();
  await assertDatabaseReachable(config);
  const db = createDb(config.databaseUrl, { max: 1 });
  try {
    if (action === 'repair') return await runRepair(config, db.db, values.json === true);
    if (action === 'verify') {
      const result = await verifyAuditLog({ db: db.db, checkpoints: checkpointSource(config) });
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        process.stdout.write(`${verificationSummary(result)}\n`);
        for (const warning of result.warnings ?? []) console.error(`warning: ${warning}`);
      }
      if (!result.ok) process.exitCode = EXIT_CHAIN_BROKEN;
      return;
    }
    const filter: AuditFilter = { ...(from ? { from } : {}), ...(to ? { to } : {}) };
    const source = Readable.from(exportAuditEvents(db.db, filter, format));
    if (values.out) {
      // The export names every key, repository and caller: readable by its owner only.
      await pipeline(source, createWriteStream(values.out, { mode: 0o600 }));
    } else {
      await pipeline(source, process.stdout, { end: false });
    }
  } finally {
    await db.close();
  }
}
