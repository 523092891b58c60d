// The job catalog: every queue, its payload schema and its default options live here.
import type { JobsOptions } from 'bullmq';
import Type, { type Static } from 'typebox';
import { KEY_ID_PATTERN } from '../model/values.ts';

export const REVOKE_QUEUE = 'revoke';
export const REVOKE_JOB = 'revoke';
export const REVOKE_ATTEMPTS = 8;
export const REVOKE_BACKOFF = 'revoke-backoff';

export const RevokeJobData = Type.Object(
  { keyId: Type.String({ pattern: KEY_ID_PATTERN }) },
  { additionalProperties: false },
);
export type RevokeJobData = Static<typeof RevokeJobData>;

/** BullMQ job ids may not contain ':'; one id per key makes scheduling the same revoke idempotent. */
export function revokeJobId(keyId: string): string {
  return `revoke-${keyId}`;
}

export const REVOKE_JOB_OPTIONS: JobsOptions = {
  attempts: REVOKE_ATTEMPTS,
  backoff: { type: REVOKE_BACKOFF },
  removeOnComplete: true,
  // Kept so the reconciler can see a revoke whose attempts are spent and start it again.
  removeOnFail: { age: 7 * 24 * 3600 },
};

const BASE_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 5 * 60_000;

/** Exponential backoff with full jitter, never sooner than a host's `retry-after`. */
export function revokeBackoffMs(
  attemptsMade: number,
  retryAfterSeconds?: number,
  random = Math.random,
): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.max(0, attemptsMade - 1));
  const jittered = Math.round(ceiling / 2 + random() * (ceiling / 2));
  return Math.max(jittered, (retryAfterSeconds ?? 0) * 1_000);
}
