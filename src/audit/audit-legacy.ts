// Events hashed by the rule of versions before the format change, which hashed a Date in an
// event's details as `{}` (the canonical JSON of an object with no own keys) but stored its ISO
// string, so every such event (an API token created with an expiry) failed verification. A signed
// `audit.format_changed` event (see audit-repair.ts) names them; only those may match the old rule.
import { createPublicKey, verify } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { type AuditEvent, chainHash } from './audit.repository.ts';
import { canonicalJson } from './canonical-json.ts';

export const FORMAT_CHANGE_ACTION = 'audit.format_changed';
export const LEGACY_DATE_RULE = 'dates-hashed-as-empty-objects';

// What Date#toISOString (and so JSON.stringify of a Date) writes.
const ISO_INSTANT = /^(?:\d{4}|[+-]\d{6})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function datesAsEmptyObjects(value: unknown): unknown {
  if (typeof value === 'string') return ISO_INSTANT.test(value) ? {} : value;
  if (Array.isArray(value)) return value.map(datesAsEmptyObjects);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, datesAsEmptyObjects(entry)]));
}

/** The hash the versions before the format change gave this event. */
export function legacyChainHash(prevHash: string, event: Omit<AuditEvent, 'hash' | 'prevHash'>): string {
  return chainHash(prevHash, {
    ...event,
    details: datesAsEmptyObjects(event.details) as Record<string, unknown>,
  });
}

/** What a format change vouches for; its signature covers exactly these fields. */
export interface FormatChangeStatement {
  rule: typeof LEGACY_DATE_RULE;
  /** The chain's head when the repair ran. */
  throughSeq: string;
  head: string;
  /** The events whose hash follows the old rule. */
  legacySeqs: string[];
}

export function formatChangeMessage(statement: FormatChangeStatement): Buffer {
  const { rule, throughSeq, head, legacySeqs } = statement;
  return Buffer.from(
    canonicalJson({ kind: FORMAT_CHANGE_ACTION, rule, throughSeq, head, legacySeqs }),
    'utf8',
  );
}

function signedStatement(details: Record<string, unknown>, publicKey: string): string[] {
  const { rule, throughSeq, head, legacySeqs, signature } = details;
  if (rule !== LEGACY_DATE_RULE || typeof throughSeq !== 'string' || typeof head !== 'string') return [];
  if (!Array.isArray(legacySeqs) || !legacySeqs.every((seq) => typeof seq === 'string')) return [];
  if (typeof signature !== 'string') return [];
  const message = formatChangeMessage({ rule, throughSeq, head, legacySeqs });
  try {
    return verify(null, message, createPublicKey(publicKey), Buffer.from(signature, 'base64'))
      ? legacySeqs
      : [];
  } catch {
    return [];
  }
}

/**
 * The events a format change signed with the configured key vouches for. Without a key nothing
 * is vouched for: an unsigned statement in the table proves nothing.
 */
export async function legacyAllowance(
  db: Kysely<Database>,
  publicKey: string | undefined,
): Promise<Set<string>> {
  if (!publicKey) return new Set();
  const rows = await db
    .selectFrom('audit_events')
    .select('details')
    .where('action', '=', FORMAT_CHANGE_ACTION)
    .orderBy('seq')
    .execute();
  return new Set(rows.flatMap((row) => signedStatement(row.details, publicKey)));
}
