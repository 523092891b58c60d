import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { AuditEventRow, Database } from '../db/schema.ts';
import { canonicalJson } from './canonical-json.ts';

export const GENESIS_HASH = '0'.repeat(64);
// Every append takes this transaction-scoped lock so concurrent writers can never fork the chain.
const AUDIT_CHAIN_LOCK = 0x64_6b_72_61_75_64;

export interface AuditEventInput {
  actor: string;
  action: string;
  keyId?: string | null;
  provider?: string | null;
  repository?: string | null;
  jobId?: string | null;
  details?: Record<string, unknown>;
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

/**
 * Appends one event to the hash chain. Pass the transaction that makes the state change, so the
 * change and its audit record commit or roll back together.
 */
export async function appendAuditEvent(
  trx: Transaction<Database>,
  input: AuditEventInput,
): Promise<AuditEvent> {
  await sql`SELECT pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`.execute(trx);
  const head = await trx
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  const prevHash = head?.hash ?? GENESIS_HASH;
  const event = {
    seq: String(BigInt(head?.seq ?? '0') + 1n),
    at: new Date(),
    actor: input.actor,
    action: input.action,
    keyId: input.keyId ?? null,
    provider: input.provider ?? null,
    repository: input.repository ?? null,
    jobId: input.jobId ?? null,
    details: input.details ?? {},
  };
  const hash = chainHash(prevHash, event);
  await trx
    .insertInto('audit_events')
    .values({
      seq: event.seq,
      at: event.at,
      actor: event.actor,
      action: event.action,
      key_id: event.keyId,
      provider: event.provider,
      repository: event.repository,
      job_id: event.jobId,
      details: JSON.stringify(event.details),
      prev_hash: prevHash,
      hash,
    })
    .execute();
  return { ...event, prevHash, hash };
}
