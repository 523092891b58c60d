import { describe, expect, it } from 'vitest';
import {
  assertMove,
  FINAL_STATES,
  IllegalTransitionError,
  KEY_TRANSITIONS,
  type KeyActor,
  LIVE_STATES,
  mayMove,
} from '../../src/keys/key-lifecycle.ts';
import type { KeyStatus } from '../../src/model/schemas.ts';

const STATES: KeyStatus[] = ['pending', 'active', 'revoking', 'revoked', 'failed'];
const ACTORS: KeyActor[] = ['issuer', 'admin', 'issue-flow', 'worker', 'reconciler', 'webhook', 'controller'];

/** The allowed moves and who may make each, written out independently of the table under test. */
const EXPECTED: Record<string, KeyActor[]> = {
  'pending->active': ['issue-flow'],
  'pending->failed': ['issue-flow', 'worker', 'reconciler'],
  'active->revoking': ['issuer', 'admin', 'worker', 'reconciler', 'webhook', 'controller'],
  'revoking->revoked': ['worker'],
};
const PAIRS = STATES.flatMap((from) => STATES.filter((to) => to !== from).map((to) => [from, to] as const));

describe('the key lifecycle table', () => {
  it('allows exactly issue → active or failed, and active → revoking → revoked', () => {
    const moves = KEY_TRANSITIONS.map((t) => `${t.from}->${t.to}`).sort();
    expect(moves).toEqual(['active->revoking', 'pending->active', 'pending->failed', 'revoking->revoked']);
  });

  it('never lets a key leave a final state', () => {
    for (const from of FINAL_STATES) {
      for (const to of STATES) {
        if (to === from) continue;
        expect(() => assertMove([from], to)).toThrow(IllegalTransitionError);
      }
    }
  });

  it('refuses a revoked key becoming active again, and an active key skipping the revoke queue', () => {
    expect(() => assertMove(['revoked'], 'active')).toThrow(/from revoked to active/);
    expect(() => assertMove(['active'], 'revoked')).toThrow(/from active to revoked/);
    expect(() => assertMove(['pending'], 'revoking')).toThrow(IllegalTransitionError);
  });

  it('lets an update that keeps the status through (a revoke noted on a pending key)', () => {
    expect(() => assertMove(['pending'], undefined)).not.toThrow();
    expect(() => assertMove(['revoking'], undefined)).not.toThrow();
    expect(() => assertMove(['active'], 'revoking')).not.toThrow();
  });

  it('names who may trigger each move', () => {
    expect(mayMove('worker', 'revoking', 'revoked')).toBe(true);
    expect(mayMove('issuer', 'revoking', 'revoked')).toBe(false);
    for (const actor of ['issuer', 'admin', 'worker', 'reconciler', 'webhook', 'controller'] as const) {
      expect(mayMove(actor, 'active', 'revoking')).toBe(true);
    }
    expect(mayMove('webhook', 'pending', 'active')).toBe(false);
    expect(mayMove('reconciler', 'pending', 'failed')).toBe(true);
    // The revoke job fired at a key's TTL expires it, and undoes a key it finds stuck pending.
    expect(mayMove('worker', 'pending', 'failed')).toBe(true);
    expect(mayMove('worker', 'pending', 'active')).toBe(false);
  });

  it.each(PAIRS)('allows %s -> %s exactly when the table has that move', (from, to) => {
    const allowed = `${from}->${to}` in EXPECTED;
    if (allowed) expect(() => assertMove([from], to)).not.toThrow();
    else expect(() => assertMove([from], to)).toThrow(IllegalTransitionError);
  });

  it.each(PAIRS)('lets exactly the named actors make %s -> %s', (from, to) => {
    const allowedActors = ACTORS.filter((actor) => mayMove(actor, from, to));
    expect(allowedActors).toEqual(EXPECTED[`${from}->${to}`] ?? []);
  });

  it('refuses a guarded change from several states if any of them may not make the move', () => {
    expect(() => assertMove(['pending', 'active'], 'failed')).toThrow(/from active to failed/);
    expect(() => assertMove(['active', 'revoking'], 'revoking')).not.toThrow();
    expect(() => assertMove(['pending', 'active', 'revoking'], 'revoked')).toThrow(
      /from pending or active to revoked/,
    );
  });

  it('counts pending and active keys as live: the ones a revoke must still reach at the host', () => {
    expect([...LIVE_STATES].sort()).toEqual(['active', 'pending']);
    expect([...FINAL_STATES].sort()).toEqual(['failed', 'revoked']);
  });

  it('leaves the host key, the Vault secret and the wrap token to undo when a key fails or is revoked', () => {
    for (const t of KEY_TRANSITIONS.filter((t) => t.to === 'failed' || t.to === 'revoked')) {
      expect([...t.undoes].sort()).toEqual(['host-key', 'vault-secret', 'wrap-token']);
    }
  });
});
