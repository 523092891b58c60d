// Proves the audit log was not edited: recomputes the hash chain from seq 1 and holds its head
// against the last signed checkpoint, which lives outside Postgres.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { chainHash, GENESIS_HASH } from './audit.repository.ts';
import { auditEventPages } from './audit-query.ts';
import type { AuditCheckpoint } from './checkpoint-signing.ts';

export interface ChainWalk {
  ok: boolean;
  checked: number;
  firstBadSeq?: string;
  reason?: string;
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
}

/** Walks the chain in keyset pages: seq continuity, prev_hash linkage and each row's own hash. */
export async function walkAuditChain(db: Kysely<Database>, options: WalkOptions = {}): Promise<ChainWalk> {
  let expected = BigInt(options.start?.seq ?? '1');
  let prevHash: string | undefined = options.start ? undefined : GENESIS_HASH;
  let checked = 0;
  let last: ChainWalk['last'];
  let watchedHash: string | undefined;
  const bad = (seq: bigint | string, reason: string): ChainWalk => ({
    ok: false,
    checked,
    firstBadSeq: String(seq),
    reason,
    ...(last ? { last } : {}),
    ...(watchedHash ? { watchedHash } : {}),
  });

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
      if (BigInt(event.seq) !== expected) {
        return bad(expected, `seq ${expected} is missing (the next event is seq ${event.seq})`);
      }
      if (prevHash !== undefined && event.prevHash !== prevHash) {
        return bad(
          expected,
          expected === 1n
            ? 'prev_hash of seq 1 is not the genesis hash'
            : `prev_hash of seq ${expected} does not match the hash of seq ${expected - 1n}`,
        );
      }
      if (chainHash(event.prevHash, event) !== event.hash) {
        return bad(expected, `hash of seq ${expected} does not match its contents`);
      }
      if (options.start && checked === 0 && event.hash !== options.start.hash) {
        return bad(expected, `the hash of seq ${expected} differs from the signed checkpoint`);
      }
      if (event.seq === options.watchSeq) watchedHash = event.hash;
      checked += 1;
      prevHash = event.hash;
      last = { seq: event.seq, hash: event.hash };
      expected += 1n;
    }
  }
  if (options.start && checked === 0) {
    return bad(options.start.seq, `seq ${options.start.seq}, which the last checkpoint covers, is missing`);
  }
  return { ok: true, checked, ...(last ? { last } : {}), ...(watchedHash ? { watchedHash } : {}) };
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
  lastCheckpoint: CheckpointView | null;
  /** Why the result proves less than it could (no signing key, no checkpoint yet). */
  warnings?: string[];
}

export interface CheckpointSource {
  readonly enabled: boolean;
  latest(): Promise<AuditCheckpoint | undefined>;
  isValid(checkpoint: AuditCheckpoint): boolean;
}

export const NO_SIGNING_KEY_WARNING =
  'no audit signing key is configured (DEPLOYKEY_AUDIT_SIGNING_KEY): no checkpoints are written, so a truncated tail cannot be detected';
export const NO_CHECKPOINT_WARNING =
  'no checkpoint has been written yet, so a truncated tail cannot be detected';

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
  });
  const result = (extra: Partial<AuditVerification>): AuditVerification => ({
    ok: walk.ok,
    checked: walk.checked,
    ...(walk.firstBadSeq ? { firstBadSeq: walk.firstBadSeq, reason: walk.reason } : {}),
    lastCheckpoint,
    ...(warnings.length ? { warnings } : {}),
    ...extra,
  });
  if (!walk.ok || !lastCheckpoint) return result({});
  if (!lastCheckpoint.valid) {
    return result({
      ok: false,
      reason: "the last checkpoint's signature does not verify with the configured key",
    });
  }
  const lastSeq = BigInt(walk.last?.seq ?? '0');
  if (lastSeq < BigInt(lastCheckpoint.seq)) {
    return result({
      ok: false,
      firstBadSeq: String(lastSeq + 1n),
      reason: `the chain ends at seq ${lastSeq} but the last checkpoint covers seq ${lastCheckpoint.seq}`,
    });
  }
  if (walk.watchedHash !== lastCheckpoint.head) {
    return result({
      ok: false,
      firstBadSeq: lastCheckpoint.seq,
      reason: `the hash of seq ${lastCheckpoint.seq} differs from the signed checkpoint (the chain up to it was rewritten)`,
    });
  }
  return result({});
}
