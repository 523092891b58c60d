import { createHash } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { AuditEventRow, Database } from '../db/schema.ts';
import { systemClock } from '../time.ts';
import { canonicalJson, type JsonValue, storableText, toJsonValue } from './canonical-json.ts';

export const GENESIS_HASH = '0'.repeat(64);
/** The advisory lock every append takes (migration 003: 0x646b72617564), so the chain never forks. */
export const AUDIT_CHAIN_LOCK = 110412643267940;

export interface AuditEventInput {
  actor: string;
  action: string;
  keyId?: string | null;
  provider?: string | null;
  repository?: string | null;
  jobId?: string | null;
  details?: Record<string, unknown>;
  /** When it happened, by the caller's clock; the system's for a command run by hand. */
  at?: Date;
}

export interface AuditEvent extends Required<Omit<AuditEventInput, 'details'>> {
  seq: string;
  at: Date;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

function hashedFields(event: Omit<AuditEvent, 'hash' | 'prevHash'>) {
  return canonicalJson({
    seq: event.seq,
    at: event.at.toISOString(),
    actor: event.actor,
    action: event.action,
    keyId: event.keyId,
    provider: event.provider,
    repository: event.repository,
    jobId: event.jobId,
    details: event.details,
  });
}

export function chainHash(prevHash: string, event: Omit<AuditEvent, 'hash' | 'prevHash'>): string {
  return createHash('sha256').update(prevHash).update(hashedFields(event)).digest('hex');
}

export function toAuditEvent(row: AuditEventRow): AuditEvent {
  return {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    keyId: row.key_id,
    provider: row.provider,
    repository: row.repository,
    jobId: row.job_id,
    details: row.details,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** What an append records besides the key it concerns. */
export type AuditBody = Pick<AuditEventInput, 'actor' | 'action' | 'details'>;

/** Which key an event concerns: values, or references to columns of the row the statement changes. */
export interface AuditKeyFields {
  keyId: unknown;
  provider: unknown;
  repository: unknown;
  jobId: unknown;
}

// Everything the canonical JSON holds after `details`: `audit_append` (migration 003) writes these
// keys itself, once it knows the seq, and reads the key fields from the row in the same statement.
const COMPLETED_IN_SQL = ',"jobId":null,"keyId":null,"provider":null,"repository":null,"seq":""}';

/** The event's own fields in the one form that is both hashed and stored. */
function storable(body: AuditBody): { actor: string; action: string; details: Record<string, JsonValue> } {
  const details = toJsonValue(body.details ?? {});
  return {
    actor: storableText(body.actor),
    action: storableText(body.action),
    details: details !== null && typeof details === 'object' && !Array.isArray(details) ? details : {},
  };
}

function hashedHead(at: Date, body: ReturnType<typeof storable>): string {
  const full = hashedFields({
    seq: '',
    at,
    actor: body.actor,
    action: body.action,
    keyId: null,
    provider: null,
    repository: null,
    jobId: null,
    details: body.details,
  });
  if (!full.endsWith(COMPLETED_IN_SQL)) throw new Error('audit fields after details changed');
  return `${full.slice(0, -COMPLETED_IN_SQL.length)},`;
}

/**
 * A call of `audit_append` for use as a table function: it takes the chain lock, appends the event
 * and yields its `seq`, `prev_hash` and `hash`. Embedding it in the statement that changes the key
 * keeps the change and its audit record one atomic statement, and the lock short.
 */
export function auditAppendCall(body: AuditBody, key: AuditKeyFields, at: Date) {
  const event = auditAppendArguments(body, at);
  return sql<{ seq: string; prev_hash: string; hash: string }>`audit_append(
    ${event.head}::text, ${event.at}::timestamptz, ${event.actor}::text, ${event.action}::text,
    ${event.details}::jsonb, ${key.keyId}::uuid, ${key.provider}::text,
    ${key.repository}::text, ${key.jobId}::text)`;
}

/**
 * The arguments of `audit_append` that the event alone decides, as values: for a statement that
 * passes many events at once (src/keys/key-transitions.ts) and names each one's key from its row.
 */
export function auditAppendArguments(body: AuditBody, at: Date) {
  const event = storable(body);
  return {
    head: hashedHead(at, event),
    at,
    actor: event.actor,
    action: event.action,
    details: JSON.stringify(event.details),
  };
}

const optionalText = (text: string | null | undefined) => (text == null ? null : storableText(text));

/**
 * Appends one event to the hash chain. Pass the transaction that makes the state change, so the
 * change and its audit record commit or roll back together; an event that goes with no other
 * change may be appended on its own.
 */
export async function appendAuditEvent(
  db: Kysely<Database> | Transaction<Database>,
  input: AuditEventInput,
): Promise<AuditEvent> {
  const at = input.at ?? systemClock();
  const event = {
    at,
    ...storable(input),
    keyId: input.keyId ?? null,
    provider: optionalText(input.provider),
    repository: optionalText(input.repository),
    jobId: optionalText(input.jobId),
  };
  const { rows } = await sql<{ seq: string; prev_hash: string; hash: string }>`
    SELECT seq, prev_hash, hash FROM ${auditAppendCall(event, event, at)}`.execute(db);
  const appended = rows[0];
  if (!appended) throw new Error('audit_append returned no row');
  return { seq: appended.seq, ...event, prevHash: appended.prev_hash, hash: appended.hash };
}
