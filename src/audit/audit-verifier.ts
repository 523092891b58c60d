// Verification for the API. A full verification re-hashes the whole chain, so concurrent requests
// share the walk in flight and a result is reused while the chain's head and the last checkpoint
// are unchanged, for at most `maxAgeSeconds`: a burst of requests costs one walk, and an edit that
// leaves the head alone is still found within that time.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { auditChainHead } from './audit-query.ts';
import { type AuditVerification, type CheckpointSource, verifyAuditLog } from './audit-verify.ts';

/** How long the API reuses a verification of an unchanged chain head. */
export const AUDIT_VERIFY_MAX_AGE_SECONDS = 30;

export interface TimedVerification extends AuditVerification {
  /** When the chain was walked for this result. */
  verifiedAt: string;
}

export interface AuditVerifierDeps {
  db: Kysely<Database>;
  checkpoints: CheckpointSource;
  clock: () => Date;
  maxAgeSeconds: number;
  /** Called with the number of bad events of each walk (0: intact), e.g. to raise an alert. */
  onChainChecked?: (badEventCount: number) => void;
}

export function createAuditVerifier(deps: AuditVerifierDeps) {
  let cached: { state: string; at: number; result: TimedVerification } | undefined;
  let inFlight: { state: string; result: Promise<TimedVerification> } | undefined;

  /** What a result depends on besides the rows themselves: the head and the last checkpoint. */
  async function chainState(): Promise<string> {
    const [head, checkpoint] = await Promise.all([
      auditChainHead(deps.db),
      deps.checkpoints.enabled ? deps.checkpoints.latest() : undefined,
    ]);
    return JSON.stringify([head?.seq, head?.hash, checkpoint?.seq, checkpoint?.signature]);
  }

  async function walk(state: string): Promise<TimedVerification> {
    const at = deps.clock();
    const result = { ...(await verifyAuditLog(deps)), verifiedAt: at.toISOString() };
    deps.onChainChecked?.(result.badEventCount);
    cached = { state, at: at.getTime(), result };
    return result;
  }

  return {
    async verify(): Promise<TimedVerification> {
      const state = await chainState();
      const fresh = cached && deps.clock().getTime() - cached.at < deps.maxAgeSeconds * 1000;
      if (cached?.state === state && fresh) return cached.result;
      if (inFlight?.state !== state) {
        const result = walk(state).finally(() => {
          if (inFlight?.result === result) inFlight = undefined;
        });
        inFlight = { state, result };
      }
      return inFlight.result;
    },
  };
}

export type AuditVerifier = ReturnType<typeof createAuditVerifier>;
