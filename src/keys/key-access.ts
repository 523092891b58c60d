// Who may see and change which key, decided (and every refusal made auditable) in one place.
// Auditors and admins see every key; an issuer sees only keys of its own owner identities, and an
// issuer that no policy rule accepts sees none.
import type { DeployKeyRow } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import type { Caller } from './caller.ts';
import type { OwnersOf } from './key-service-deps.ts';

const keyOf = (row: DeployKeyRow) => ({
  keyId: row.id,
  provider: row.provider,
  repository: row.repository,
  jobId: row.job_id,
});

export function createKeyAccess(ownersOf: OwnersOf) {
  /** The owners whose keys the caller may reach; undefined: every key. */
  function scopeOf(caller: Caller): string[] | undefined {
    if (caller.role !== 'issuer') return undefined;
    const owners = ownersOf(caller);
    if (owners.length === 0) {
      throw new RefusalError(
        'forbidden-by-policy',
        'no-matching-rule: no policy rule applies to this caller, so it has no keys to see or revoke',
        {
          extra: { reason: 'no-matching-rule' },
          denial: { actor: caller.actor, reason: 'no-matching-rule', details: { caller: caller.id } },
        },
      );
    }
    return owners;
  }

  /** The key if the caller may reach it; another owner's key looks exactly like a missing one. */
  function reachable(caller: Caller, id: string, row: DeployKeyRow | undefined): DeployKeyRow {
    const scope = scopeOf(caller);
    if (row && (!scope || scope.includes(row.owner))) return row;
    throw new RefusalError('key-not-found', `no key ${id}`, {
      ...(row
        ? {
            denial: {
              actor: caller.actor,
              reason: 'not-the-owner',
              details: { caller: caller.id },
              key: keyOf(row),
            },
          }
        : {}),
    });
  }

  function refuseRole(caller: Caller, message: string): never {
    throw new RefusalError('role-not-allowed', message, {
      denial: {
        actor: caller.actor,
        reason: 'role-not-allowed',
        details: { role: caller.role, caller: caller.id },
      },
    });
  }

  return { scopeOf, reachable, refuseRole };
}

export type KeyAccess = ReturnType<typeof createKeyAccess>;
