// Proves the audit log was not edited: recomputes the hash chain from seq 1 and holds its head
// against the last signed checkpoint, which lives outside Postgres.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { type AuditEvent, chainHash, GENESIS_HASH } from './audit.repository.ts';
import { legacyAllowance, legacyChainHash } from './audit-legacy.ts';
import { auditEventPages } from './audit-query.ts';
import type { AuditCheckpoint } from './checkpoint-signing.ts';

/** At most this many bad events are listed; `badEventCount` counts them all. */
export const MAX_LISTED_BAD_EVENTS = 100;

export interface BadEvent {
  seq: string;
  reason: string;
}

export interface ChainWalk {
  ok: boolean;
  /** Events walked, bad ones included. */
  checked: number;
  firstBadSeq?: string;
  reason?: string;
  /** Every event that failed a check, in seq order, at most MAX_LISTED_BAD_EVENTS of them. */
  badEvents: BadEvent[];
  badEventCount: number;
  /** Events whose hash matches only the rule of versions before the fix (see audit-repair.ts). */
  legacySeqs: string[];
  /** The last event that was checked. */
  last?: { seq: string; hash: string };
  /** The stored hash at `watchSeq`, when the chain reached it. */
  watchedHash?: string;
}

export interface WalkOptions {
  /** Start at this event instead of seq 1, trusting only that its hash is `hash` (a checkpoint). */
  start?: { seq: string; hash: string };
  watchSeq?: string;
  pageSize?: number;
  /**
   * Seqs that may match the pre-fix rule instead (vouched for by a signed format change), or
   * 'any' to accept every such event, which only the repair does to find them.
   */
  legacy?: ReadonlySet<string> | 'any';
}

function gapBefore(event: AuditEvent, expected: bigint): string | undefined {
  const seq = BigInt(event.seq);
  if (seq === expected) return undefined;
  return seq === expected + 1n
    ? `seq ${expected} is missing (the next event is seq ${seq})`
    : `seqs ${expected} to ${seq - 1n} are missing (the next event is seq ${seq})`;
}

function linkProblem(event: AuditEvent, prevHash: string | undefined): string | undefined {
  if (prevHash === undefined || event.prevHash === prevHash) return undefined;
  return event.seq === '1'
    ? 'prev_hash of seq 1 is not the genesis hash'
    : `prev_hash of seq ${event.seq} does not match the hash of seq ${BigInt(event.seq) - 1n}`;
}

/**
 * Walks the chain in keyset pages: seq continuity, prev_hash linkage and each row's own hash.
 * It goes on past a bad event (linking the next one to what is stored), so every edit is listed.
 */
export async function walkAuditChain(db: Kysely<Database>, options: WalkOptions = {}): Promise<ChainWalk> {
  const walk: ChainWalk = { ok: true, checked: 0, badEvents: [], badEventCount: 0, legacySeqs: [] };
  const report = (seq: bigint | string, reason: string) => {
    if (walk.ok) Object.assign(walk, { ok: false, firstBadSeq: String(seq), reason });
    walk.badEventCount += 1;
    if (walk.badEvents.length < MAX_LISTED_BAD_EVENTS) walk.badEvents.push({ seq: String(seq), reason });
  };
  let expected = BigInt(options.start?.seq ?? '1');
  let prevHash: string | undefined = options.start ? undefined : GENESIS_HASH;

  const pages = auditEventPages(
    db,
    {},
    {
      ...(options.start ? { fromSeq: options.start.seq } : {}),
      ...(options.pageSize ? { pageSize: options.pageSize } : {}),
    },
  );
  for await (const page of pages) {
    for (const event of page) {
      const gap = gapBefore(event, expected);
      if (gap) report(expected, gap);
      // After a gap the missing events are the finding; the next one cannot link to them.
      let problem = gap ? undefined : linkProblem(event, prevHash);
      if (chainHash(event.prevHash, event) !== event.hash) {
        const legacy = options.legacy === 'any' || options.legacy?.has(event.seq);
        if (legacy && legacyChainHash(event.prevHash, event) === event.hash) walk.legacySeqs.push(event.seq);
        else problem ??= `hash of seq ${event.seq} does not match its contents`;
      }
      if (options.start && walk.checked === 0 && event.hash !== options.start.hash) {
        problem ??= `the hash of seq ${event.seq} differs from the signed checkpoint`;
      }
      if (problem) report(event.seq, problem);
      if (event.seq === options.watchSeq) walk.watchedHash = event.hash;
      walk.checked += 1;
      prevHash = event.hash;
      walk.last = { seq: event.seq, hash: event.hash };
      expected = BigInt(event.seq) + 1n;
    }
  }
  if (options.start && walk.checked === 0) {
    report(options.start.seq, `seq ${options.start.seq}, which the last checkpoint covers, is missing`);
  }
  return walk;
}

export interface CheckpointView extends AuditCheckpoint {
  /** Whether the signature verifies with the configured key. */
  valid: boolean;
}

export interface AuditVerification {
  ok: boolean;
  /** Events whose hash was recomputed, from seq 1. */
  checked: number;
  firstBadSeq?: string;
  reason?: string;
  /** Every bad event found (at most MAX_LISTED_BAD_EVENTS); empty when the log is intact. */
  badEvents: BadEvent[];
  badEventCount: number;
  lastCheckpoint: CheckpointView | null;
  /** Why the result proves less than it could (no signing key, no checkpoint yet, pre-fix events). */
  warnings?: string[];
}

export interface CheckpointSource {
  readonly enabled: boolean;
  /** The configured public key (SPKI PEM), which also vouches for signed format changes. */
  readonly publicKey: string | undefined;
  latest(): Promise<AuditCheckpoint | undefined>;
  isValid(checkpoint: AuditCheckpoint): boolean;
}

export const NO_SIGNING_KEY_WARNING =
  'no audit signing key is configured (DEPLOYKEY_AUDIT_SIGNING_KEY): no checkpoints are written, so a truncated tail cannot be detected';
export const NO_CHECKPOINT_WARNING =
  'no checkpoint has been written yet, so a truncated tail cannot be detected';

function legacyWarning(seqs: string[]): string {
  return (
    `${seqs.length} event(s) up to seq ${seqs.at(-1)} carry a hash made by the rule of versions before the ` +
    'format change (dates hashed as {}); a signed audit.format_changed event vouches for them'
  );
}

/** Why the chain's head does not match the checkpoint, or undefined when it does. */
function checkpointProblem(walk: ChainWalk, checkpoint: CheckpointView): BadEvent | undefined {
  const lastSeq = BigInt(walk.last?.seq ?? '0');
  if (lastSeq < BigInt(checkpoint.seq)) {
    return {
      seq: String(lastSeq + 1n),
      reason: `the chain ends at seq ${lastSeq} but the last checkpoint covers seq ${checkpoint.seq}`,
    };
  }
  if (walk.watchedHash !== checkpoint.head) {
    return {
      seq: checkpoint.seq,
      reason: `the hash of seq ${checkpoint.seq} differs from the signed checkpoint (the chain up to it was rewritten)`,
    };
  }
  return undefined;
}

export async function verifyAuditLog(
  deps: { db: Kysely<Database>; checkpoints: CheckpointSource },
  options: { pageSize?: number } = {},
): Promise<AuditVerification> {
  // Read before the walk: the chain only grows meanwhile, so a checkpoint written during the walk
  // can never make a sound chain look truncated.
  const checkpoint = deps.checkpoints.enabled ? await deps.checkpoints.latest() : undefined;
  const lastCheckpoint = checkpoint ? { ...checkpoint, valid: deps.checkpoints.isValid(checkpoint) } : null;
  const warnings = !deps.checkpoints.enabled
    ? [NO_SIGNING_KEY_WARNING]
    : checkpoint
      ? []
      : [NO_CHECKPOINT_WARNING];
  const walk = await walkAuditChain(deps.db, {
    ...(checkpoint ? { watchSeq: checkpoint.seq } : {}),
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
    legacy: await legacyAllowance(deps.db, deps.checkpoints.publicKey),
  });
  if (walk.legacySeqs.length > 0) warnings.push(legacyWarning(walk.legacySeqs));
  const result: AuditVerification = {
    ok: walk.ok,
    checked: walk.checked,
    ...(walk.firstBadSeq ? { firstBadSeq: walk.firstBadSeq, reason: walk.reason } : {}),
    badEvents: walk.badEvents,
    badEventCount: walk.badEventCount,
    lastCheckpoint,
    ...(warnings.length ? { warnings } : {}),
  };
  if (!lastCheckpoint) return result;
  if (!lastCheckpoint.valid) {
    return {
      ...result,
      ok: false,
      reason: result.reason ?? "the last checkpoint's signature does not verify with the configured key",
    };
  }
  const mismatch = checkpointProblem(walk, lastCheckpoint);
  if (!mismatch) return result;
  return {
    ...result,
    ok: false,
    firstBadSeq: result.firstBadSeq ?? mismatch.seq,
    reason: result.reason ?? mismatch.reason,
    badEvents: [...result.badEvents, mismatch].slice(0, MAX_LISTED_BAD_EVENTS),
    badEventCount: result.badEventCount + 1,
  };
}
