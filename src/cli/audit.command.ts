import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { type ExportFormat, exportAuditEvents } from '../audit/audit-export.ts';
import type { AuditFilter } from '../audit/audit-query.ts';
import { type AuditVerification, type CheckpointSource, verifyAuditLog } from '../audit/audit-verify.ts';
import { checkpointSignatureValid, publicKeyPem } from '../audit/checkpoint-signing.ts';
import { createVaultCheckpointStore } from '../audit/checkpoint-store.ts';
import type { Config } from '../config.ts';
import { createDb } from '../db/database.ts';
import { createVaultClient, staticToken } from '../vault/vault-client.ts';
import { assertDatabaseReachable, loadConfigOrExplain } from './startup.ts';
import { UsageError } from './usage-error.ts';

export const AUDIT_USAGE = `usage: deploykey audit verify [--json]
       deploykey audit export [--format ndjson|csv] [--from ISO] [--to ISO] [--out FILE]

Reads the audit log straight from the database (needs DATABASE_URL and the service's other settings).
verify recomputes the whole hash chain and checks it against the last signed checkpoint in Vault;
it exits 0 when the log is intact and 3 when it is broken. export streams the events, oldest first,
to stdout or FILE; --from is inclusive, --to exclusive.

examples:
  deploykey audit verify
  deploykey audit export --format csv --from 2024-01-01T00:00:00Z --out audit.csv`;

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
    vault: createVaultClient({ addr: config.vault.addr, token: staticToken(config.vault.token) }),
    kvMount: config.vault.kvMount,
    pathPrefix: config.vault.pathPrefix,
  });
  return {
    enabled: publicKey !== undefined,
    latest: () => store.read(),
    isValid: (checkpoint) => publicKey !== undefined && checkpointSignatureValid(checkpoint, publicKey),
  };
}

function parseAuditArgs(action: 'verify' | 'export', args: string[]) {
  try {
    return parseArgs({
      args,
      options:
        action === 'verify'
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
  return `audit log BROKEN${where}: ${result.reason} (${result.checked} events checked${checkpoint})`;
}

export async function runAuditCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'verify' && action !== 'export') {
    throw new UsageError(action ? `unknown audit command "${action}"` : 'missing audit command', AUDIT_USAGE);
  }
  const { values } = parseAuditArgs(action, rest);
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
