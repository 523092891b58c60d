// Reading the audit log: filtered, keyset-paginated by seq, so any range costs bounded memory.
import { type Kysely, type SelectQueryBuilder, sql } from 'kysely';
import type { AuditEventRow, Database } from '../db/schema.ts';
import { type AuditEvent, toAuditEvent } from './audit.repository.ts';

export interface AuditFilter {
  /** Inclusive lower bound of `at`. */
  from?: Date;
  /** Exclusive upper bound of `at`. */
  to?: Date;
  keyId?: string;
  repository?: string;
  jobId?: string;
  actor?: string;
  action?: string;
}

export type AuditOrder = 'asc' | 'desc';

/** An audit event as the API, the exports and the CLI show it; seq is a decimal string (bigint). */
export interface AuditEventView {
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

export interface AuditPage {
  items: AuditEventView[];
  /** The last seq of this page when more may follow, else null. */
  nextCursor: string | null;
}

export const AUDIT_PAGE_SIZE = 1_000;

export function toAuditEventView(event: AuditEvent): AuditEventView {
  return {
    seq: event.seq,
    at: event.at.toISOString(),
    actor: event.actor,
    action: event.action,
    keyId: event.keyId,
    provider: event.provider,
    repository: event.repository,
    jobId: event.jobId,
    details: event.details,
    prevHash: event.prevHash,
    hash: event.hash,
  };
}

type EventQuery = SelectQueryBuilder<Database, 'audit_events', AuditEventRow>;

function filtered(db: Kysely<Database>, filter: AuditFilter): EventQuery {
  let query = db.selectFrom('audit_events').selectAll() as EventQuery;
  if (filter.from) query = query.where('at', '>=', filter.from);
  if (filter.to) query = query.where('at', '<', filter.to);
  if (filter.keyId) query = query.where('key_id', '=', filter.keyId);
  // Repository paths are case-insensitive on GitHub and GitLab: any spelling finds every event.
  if (filter.repository) query = query.where(sql`lower(repository)`, '=', sql`lower(${filter.repository})`);
  if (filter.jobId) query = query.where('job_id', '=', filter.jobId);
  if (filter.actor) query = query.where('actor', '=', filter.actor);
  if (filter.action) query = query.where('action', '=', filter.action);
  return query;
}

/** One page of events; `after` is the previous page's nextCursor (a seq, exclusive). */
export async function listAuditEvents(
  db: Kysely<Database>,
  filter: AuditFilter,
  page: { after?: string; order?: AuditOrder; limit: number },
): Promise<AuditPage> {
  const order = page.order ?? 'asc';
  let query = filtered(db, filter);
  if (page.after !== undefined) query = query.where('seq', order === 'asc' ? '>' : '<', page.after);
  const rows = await query
    .orderBy('seq', order)
    .limit(page.limit + 1)
    .execute();
  const items = rows.slice(0, page.limit).map((row) => toAuditEventView(toAuditEvent(row)));
  return {
    items,
    nextCursor: rows.length > page.limit ? (items.at(-1)?.seq ?? null) : null,
  };
}

/** The newest event's seq and hash, or undefined while the log is empty. */
export async function auditChainHead(
  db: Kysely<Database>,
): Promise<{ seq: string; hash: string } | undefined> {
  return db
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/**
 * Every matching event in ascending seq, one page per query: no transaction or cursor stays open
 * between pages, so a long read neither holds a connection nor pins old row versions.
 */
export async function* auditEventPages(
  db: Kysely<Database>,
  filter: AuditFilter,
  options: { pageSize?: number; fromSeq?: string; throughSeq?: string } = {},
): AsyncGenerator<AuditEvent[]> {
  const pageSize = options.pageSize ?? AUDIT_PAGE_SIZE;
  let query = filtered(db, filter);
  if (options.throughSeq !== undefined) query = query.where('seq', '<=', options.throughSeq);
  let bound: { op: '>=' | '>'; seq: string } | undefined =
    options.fromSeq === undefined ? undefined : { op: '>=', seq: options.fromSeq };
  for (;;) {
    const rows = await (bound ? query.where('seq', bound.op, bound.seq) : query)
      .orderBy('seq', 'asc')
      .limit(pageSize)
      .execute();
    if (rows.length === 0) return;
    yield rows.map(toAuditEvent);
    if (rows.length < pageSize) return;
    bound = { op: '>', seq: rows.at(-1)!.seq };
  }
}
