// Audit exports as NDJSON or CSV, produced page by page so memory stays bounded for any range.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import {
  type AuditEventView,
  type AuditFilter,
  auditChainHead,
  auditEventPages,
  toAuditEventView,
} from './audit-query.ts';

export type ExportFormat = 'ndjson' | 'csv';

export const EXPORT_FORMATS: Record<ExportFormat, { contentType: string; extension: string }> = {
  ndjson: { contentType: 'application/x-ndjson; charset=utf-8', extension: 'ndjson' },
  csv: { contentType: 'text/csv; charset=utf-8', extension: 'csv' },
};

/** CSV columns, in order; `details` holds the event's details as JSON. */
export const CSV_COLUMNS = [
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
] as const satisfies readonly (keyof AuditEventView)[];

const NEEDS_QUOTES = /[",\r\n]/;
// A spreadsheet reads a cell that starts with one of these as a formula (CWE-1236). Fields come
// from callers (job ids, repositories, token names, OIDC subjects), so none may start with one.
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One RFC 4180 field: a leading formula character is neutralised with a `'`, and the field is
 * quoted when it holds a quote, comma or line break; null is an empty field.
 */
export function csvField(value: string | null): string {
  if (value === null) return '';
  const inert = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(inert) ? `"${inert.replaceAll('"', '""')}"` : inert;
}

export function csvRow(event: AuditEventView): string {
  return `${CSV_COLUMNS.map((column) =>
    csvField(column === 'details' ? JSON.stringify(event.details) : event[column]),
  ).join(',')}\r\n`;
}

export const CSV_HEADER = `${CSV_COLUMNS.join(',')}\r\n`;

/**
 * The matching events as text chunks (one per page of rows), oldest first. The range ends at the
 * head as it was when the export started, so a long export has a definite end.
 */
export async function* exportAuditEvents(
  db: Kysely<Database>,
  filter: AuditFilter,
  format: ExportFormat,
  options: { pageSize?: number } = {},
): AsyncGenerator<string> {
  const head = await auditChainHead(db);
  if (format === 'csv') yield CSV_HEADER;
  if (!head) return;
  const pages = auditEventPages(db, filter, {
    throughSeq: head.seq,
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
  });
  for await (const page of pages) {
    let chunk = '';
    for (const event of page) {
      const view = toAuditEventView(event);
      chunk += format === 'csv' ? csvRow(view) : `${JSON.stringify(view)}\n`;
    }
    yield chunk;
  }
}
