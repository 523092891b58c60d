// The repair of a chain broken by the old hashing rule (see audit-legacy.ts): it proves, event by
// event, that each failing hash matches that old rule and nothing else, then appends one
// `audit.format_changed` event, signed with the audit key, that names them. Verification accepts
// the old rule for exactly those events, and only while that signature verifies.
import { type KeyObject, sign } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { appendAuditEvent } from './audit.repository.ts';
import {
  FORMAT_CHANGE_ACTION,
  type FormatChangeStatement,
  formatChangeMessage,
  LEGACY_DATE_RULE,
  legacyAllowance,
} from './audit-legacy.ts';
import { type BadEvent, walkAuditChain } from './audit-verify.ts';
import { publicKeyPem } from './checkpoint-signing.ts';

export type RepairOutcome =
  | { status: 'intact'; checked: number }
  /** Events fail for another reason than the old rule: an edit, which no repair may cover. */
  | { status: 'tampered'; checked: number; badEvents: BadEvent[]; badEventCount: number }
  | { status: 'repaired'; checked: number; seq: string; statement: FormatChangeStatement };

export async function repairAuditChain(deps: {
  db: Kysely<Database>;
  signingKey: KeyObject;
  actor: string;
}): Promise<RepairOutcome> {
  const publicKey = publicKeyPem(deps.signingKey);
  const vouched = await legacyAllowance(deps.db, publicKey);
  const walk = await walkAuditChain(deps.db, { legacy: 'any' });
  if (!walk.ok) {
    const { checked, badEvents, badEventCount } = walk;
    return { status: 'tampered', checked, badEvents, badEventCount };
  }
  const legacySeqs = walk.legacySeqs.filter((seq) => !vouched.has(seq));
  if (legacySeqs.length === 0 || !walk.last) return { status: 'intact', checked: walk.checked };
  const statement: FormatChangeStatement = {
    rule: LEGACY_DATE_RULE,
    throughSeq: walk.last.seq,
    head: walk.last.hash,
    legacySeqs,
  };
  const signature = sign(null, formatChangeMessage(statement), deps.signingKey).toString('base64');
  const event = await appendAuditEvent(deps.db, {
    actor: deps.actor,
    action: FORMAT_CHANGE_ACTION,
    details: { ...statement, signature, publicKey },
  });
  return { status: 'repaired', checked: walk.checked, seq: event.seq, statement };
}
