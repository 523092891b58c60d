// A key's life as one table: its states, the moves between them, who may make each move and what
// the move leaves to undo. The repository refuses any status change that is not in this table.

import { DomainError } from '../errors.ts';
import type { KeyStatus } from '../model/schemas.ts';

/** Who moves a key: a caller by role, or one of the service's own processes. */
export type KeyActor =
  | 'issuer' // a caller with the issuer role, on its own keys
  | 'admin' // a caller with the admin role, on any key
  | 'issue-flow' // the request that is issuing the key
  | 'worker' // the revoke worker: revokes, expires a key at its TTL, undoes a key stuck pending
  | 'reconciler' // the periodic pass over expired and stuck keys, and CI jobs that ended unannounced
  | 'webhook' // a CI platform telling us a job ended (`job-ended`)
  | 'controller'; // the Kubernetes controller (`job-ended`, `job-deleted`)

export type KeyMove = 'activate' | 'fail' | 'request-revoke' | 'revoke';

export interface Transition {
  move: KeyMove;
  from: KeyStatus;
  to: KeyStatus;
  by: readonly KeyActor[];
  /** What is left at the dependencies, and must be removed, once the key is in `to`. */
  undoes: readonly ('host-key' | 'vault-secret' | 'wrap-token')[];
}

export const KEY_TRANSITIONS: readonly Transition[] = [
  { move: 'activate', from: 'pending', to: 'active', by: ['issue-flow'], undoes: [] },
  {
    move: 'fail',
    from: 'pending',
    to: 'failed',
    by: ['issue-flow', 'worker', 'reconciler'],
    undoes: ['host-key', 'vault-secret', 'wrap-token'],
  },
  {
    move: 'request-revoke',
    from: 'active',
    to: 'revoking',
    by: ['issuer', 'admin', 'worker', 'reconciler', 'webhook', 'controller'],
    undoes: [],
  },
  {
    move: 'revoke',
    from: 'revoking',
    to: 'revoked',
    by: ['worker'],
    undoes: ['host-key', 'vault-secret', 'wrap-token'],
  },
];

/** States a key never leaves. */
export const FINAL_STATES: readonly KeyStatus[] = ['revoked', 'failed'];
/** States in which the key may exist at the host: the ones a revoke must reach. */
export const LIVE_STATES: readonly KeyStatus[] = ['pending', 'active'];

export class IllegalTransitionError extends DomainError {
  constructor(from: readonly KeyStatus[], to: KeyStatus) {
    super('illegal-transition', `a key cannot move from ${from.join(' or ')} to ${to}`, {
      detail: 'the key is not in a state that allows this change',
    });
    this.name = 'IllegalTransitionError';
  }
}

export function transitionOf(from: KeyStatus, to: KeyStatus): Transition | undefined {
  return KEY_TRANSITIONS.find((t) => t.from === from && t.to === to);
}

export function mayMove(actor: KeyActor, from: KeyStatus, to: KeyStatus): boolean {
  return transitionOf(from, to)?.by.includes(actor) ?? false;
}

/**
 * Refuses a status change not in the table. An update that keeps the status (recording a revoke
 * request on a pending key, or a failed attempt) is not a move and is always allowed.
 */
export function assertMove(from: readonly KeyStatus[], to: KeyStatus | undefined): void {
  if (to === undefined) return;
  const illegal = from.filter((state) => state !== to && !transitionOf(state, to));
  if (illegal.length > 0) throw new IllegalTransitionError(illegal, to);
}
