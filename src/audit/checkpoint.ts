// Signs the audit chain's head and writes it to Vault, every period and whenever the chain has
// grown by `everyEvents` since the last checkpoint, so a rewrite or truncation of the tail is
// detectable after at most that many events or that much time. Runs in the worker role from a
// timer under a Postgres advisory lock, so one replica at a time writes.
import type { KeyObject } from 'node:crypto';
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { systemTimers, type Timers } from '../time.ts';
import { legacyAllowance } from './audit-legacy.ts';
import { auditChainHead } from './audit-query.ts';
import { walkAuditChain } from './audit-verify.ts';
import {
  type AuditCheckpoint,
  checkpointSignatureValid,
  publicKeyPem,
  signCheckpoint,
} from './checkpoint-signing.ts';
import type { CheckpointStore } from './checkpoint-store.ts';

const AUDIT_CHECKPOINT_LOCK = 0x64_6b_72_63_6b_70;
// How often the head is looked at (one indexed read) to sign after `everyEvents` new events.
const HEAD_POLL_MS = 1_000;

export type CheckpointOutcome =
  | { status: 'written'; checkpoint: AuditCheckpoint }
  /** The chain has not grown since the last checkpoint. */
  | { status: 'unchanged'; checkpoint: AuditCheckpoint }
  | { status: 'empty' }
  | { status: 'disabled' }
  /** Another replica holds the lock. */
  | { status: 'busy' }
  /** The chain does not extend the last checkpoint; nothing is signed over it. */
  | { status: 'chain-broken'; firstBadSeq: string; reason: string };

export interface AuditCheckpointsDeps {
  db: Db;
  store: CheckpointStore;
  /** Without it nothing is written and `enabled` is false. */
  signingKey: KeyObject | undefined;
  clock: () => Date;
  /** What the passes are scheduled with; the system's timers by default. */
  timers?: Timers;
  logger: Logger;
  periodSeconds: number;
  /** Also sign once the chain has grown by this many events since the last checkpoint; 0: never. */
  everyEvents?: number;
  /** Called with the number of bad events each pass found (0: intact), e.g. to raise an alert. */
  onChainChecked?: (badEventCount: number) => void;
}

export interface AuditCheckpoints {
  readonly enabled: boolean;
  /** The configured public key (SPKI PEM), when a signing key is configured. */
  readonly publicKey: string | undefined;
  latest(): Promise<AuditCheckpoint | undefined>;
  /** Whether the checkpoint's signature verifies with the configured key. */
  isValid(checkpoint: AuditCheckpoint): boolean;
  /** One checkpoint pass now; concurrent callers share the pass in flight. */
  runOnce(): Promise<CheckpointOutcome>;
  start(): void;
  stop(): Promise<void>;
}

function isSignedBy(checkpoint: AuditCheckpoint, publicKey: string | undefined): boolean {
  return publicKey !== undefined && checkpointSignatureValid(checkpoint, publicKey);
}

async function writeCheckpoint(
  deps: AuditCheckpointsDeps,
  key: KeyObject,
  publicKey: string | undefined,
): Promise<CheckpointOutcome> {
  const { store, logger } = deps;
  const previous = await store.read();
  if (previous && !isSignedBy(previous, publicKey)) {
    logger.warn(
      { seq: previous.seq, location: store.location },
      'the last audit checkpoint was not signed by the configured key; continuing from it',
    );
  }
  // The new checkpoint is signed only over a chain that verifiably extends the previous one
  // (or, for the first, over the whole chain), so a rewrite is never endorsed.
  const walk = await walkAuditChain(deps.db.db, {
    ...(previous ? { start: { seq: previous.seq, hash: previous.head } } : {}),
    legacy: await legacyAllowance(deps.db.db, publicKey),
  });
  deps.onChainChecked?.(walk.badEventCount);
  if (!walk.ok) {
    const firstBadSeq = walk.firstBadSeq ?? '0';
    const reason = walk.reason ?? 'the chain is broken';
    logger.error({ firstBadSeq, reason }, 'audit chain does not extend the last checkpoint; not signing');
    return { status: 'chain-broken', firstBadSeq, reason };
  }
  if (!walk.last) return { status: 'empty' };
  if (previous && previous.seq === walk.last.seq) return { status: 'unchanged', checkpoint: previous };
  const checkpoint = signCheckpoint(key, {
    seq: walk.last.seq,
    head: walk.last.hash,
    at: deps.clock().toISOString(),
  });
  await store.write(checkpoint);
  logger.info({ seq: checkpoint.seq, location: store.location }, 'audit checkpoint written');
  return { status: 'written', checkpoint };
}

/** Runs `work` while holding the checkpoint advisory lock; 'busy' when another replica holds it. */
async function underCheckpointLock(
  db: Db,
  work: () => Promise<CheckpointOutcome>,
): Promise<CheckpointOutcome> {
  const client = await db.pool.connect();
  try {
    const { rows } = await client.query('SELECT pg_try_advisory_lock($1) AS locked', [AUDIT_CHECKPOINT_LOCK]);
    if (!rows[0]?.locked) return { status: 'busy' };
    try {
      return await work();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [AUDIT_CHECKPOINT_LOCK]);
    }
  } finally {
    client.release();
  }
}

/** Between looks at the head: the head poll when `everyEvents` is set, else the whole period. */
function checkpointWaitMs(deps: AuditCheckpointsDeps): number {
  const periodMs = deps.periodSeconds * 1000;
  return (deps.everyEvents ?? 0) > 0 ? Math.min(HEAD_POLL_MS, periodMs) : periodMs;
}

export function createAuditCheckpoints(deps: AuditCheckpointsDeps): AuditCheckpoints {
  const { store, signingKey, logger, clock } = deps;
  const timers = deps.timers ?? systemTimers;
  const publicKey = signingKey ? publicKeyPem(signingKey) : undefined;
  let cancelTimer = () => {};
  let running: Promise<CheckpointOutcome> | undefined;
  let started = false;
  let lastSignedSeq: bigint | undefined;
  let lastPassAt = 0;

  async function pass(): Promise<CheckpointOutcome> {
    if (!signingKey) return { status: 'disabled' };
    const outcome = await underCheckpointLock(deps.db, () => writeCheckpoint(deps, signingKey, publicKey));
    if (outcome.status === 'written' || outcome.status === 'unchanged') {
      lastSignedSeq = BigInt(outcome.checkpoint.seq);
    }
    return outcome;
  }

  function runOnce(): Promise<CheckpointOutcome> {
    running ??= pass().finally(() => {
      running = undefined;
    });
    return running;
  }

  const runLogged = () =>
    runOnce().catch((error: Error) => {
      logger.error({ err: error.message }, 'audit checkpoint pass failed');
    });

  /** Whether a pass is due: the period is over, or the chain grew by everyEvents since the last checkpoint. */
  async function due(): Promise<boolean> {
    if (clock().getTime() - lastPassAt >= deps.periodSeconds * 1000) return true;
    const everyEvents = deps.everyEvents ?? 0;
    if (everyEvents <= 0 || lastSignedSeq === undefined) return false;
    const head = await auditChainHead(deps.db.db);
    return head !== undefined && BigInt(head.seq) - lastSignedSeq >= BigInt(everyEvents);
  }

  const tick = async () => {
    if (await due()) {
      lastPassAt = clock().getTime();
      await runLogged();
    }
  };

  function schedule() {
    if (!started) return;
    cancelTimer = timers.after(checkpointWaitMs(deps), () => {
      void tick()
        .catch((error: Error) => logger.error({ err: error.message }, 'audit checkpoint pass failed'))
        .finally(schedule);
    });
  }

  return {
    enabled: signingKey !== undefined,
    publicKey,
    async latest() {
      return signingKey ? store.read() : undefined;
    },
    isValid: (checkpoint) => isSignedBy(checkpoint, publicKey),
    runOnce,
    start() {
      if (started || !signingKey) return;
      started = true;
      lastPassAt = clock().getTime();
      void runLogged().finally(schedule);
    },
    async stop() {
      started = false;
      cancelTimer();
      await running?.catch(() => {});
    },
  };
}
