// Who may do what, decided in one place: a table from each action a caller can ask for to the roles
// that may ask it, and the scope rule for keys. The API's authenticate step refuses a route's action
// before anything else runs; the key service asks the same table, for callers that come without the
// API (the Kubernetes controller). Every refusal names the caller, so it is audited.
import type { DeployKeyRow } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import type { Caller } from '../keys/caller.ts';
import type { Role } from '../model/schemas.ts';
import { ROLES } from '../model/values.ts';

export type AccessAction =
  | 'issue' // get a new key
  | 'read' // read one key
  | 'list' // list keys
  | 'revoke' // revoke one key
  | 'complete' // revoke every key of a job
  | 'audit' // read, verify and export the audit log
  | 'stats' // read issue and revoke statistics
  | 'admin'; // manage API tokens

interface AccessRule {
  roles: readonly Role[];
  /** What a refused caller is told; by default, which roles the action needs. */
  refusal?: (role: Role) => string;
}

const NOT_FOR_AUDITORS = () => 'auditors can read keys but not revoke them';

export const ACCESS_RULES: Readonly<Record<AccessAction, AccessRule>> = {
  issue: {
    roles: ['issuer'],
    refusal: (role) => `only callers with the issuer role get keys; this caller is ${role}`,
  },
  read: { roles: ROLES },
  list: { roles: ROLES },
  revoke: { roles: ['issuer', 'admin'], refusal: NOT_FOR_AUDITORS },
  complete: { roles: ['issuer', 'admin'], refusal: NOT_FOR_AUDITORS },
  audit: { roles: ['auditor', 'admin'] },
  stats: { roles: ['auditor', 'admin'] },
  admin: { roles: ['admin'] },
};

/** Roles that reach every key; any other role reaches only keys of its own owner identities. */
export const ROLES_REACHING_EVERY_KEY: readonly Role[] = ['auditor', 'admin'];

export function mayDo(role: Role, action: AccessAction): boolean {
  return ACCESS_RULES[action].roles.includes(role);
}

/** Refuses (audited) a caller whose role may not do `action`. */
export function requireAccess(caller: Caller, action: AccessAction): void {
  if (mayDo(caller.role, action)) return;
  const { roles, refusal } = ACCESS_RULES[action];
  const message =
    refusal?.(caller.role) ?? `this needs the role ${roles.join(' or ')}; the caller is ${caller.role}`;
  throw new RefusalError('role-not-allowed', message, {
    denial: {
      actor: caller.actor,
      reason: 'role-not-allowed',
      details: { role: caller.role, needs: roles, caller: caller.id },
    },
  });
}

/** The owner identities under which an issuer may see and revoke keys: one per rule that accepts it. */
export type OwnersOf = (caller: Caller) => string[];

const keyOf = (row: DeployKeyRow) => ({
  keyId: row.id,
  provider: row.provider,
  repository: row.repository,
  jobId: row.job_id,
});

/** The scope rule over keys: whose keys a caller may reach, and the refusals that go with it. */
export function createKeyAccess(ownersOf: OwnersOf) {
  /** The owners whose keys the caller may reach; undefined: every key. */
  function scopeOf(caller: Caller): string[] | undefined {
    if (ROLES_REACHING_EVERY_KEY.includes(caller.role)) return undefined;
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
    const denial = row && {
      actor: caller.actor,
      reason: 'not-the-owner',
      details: { caller: caller.id },
      key: keyOf(row),
    };
    throw new RefusalError('key-not-found', `no key ${id}`, denial ? { denial } : {});
  }

  return { require: requireAccess, scopeOf, reachable };
}

export type KeyAccess = ReturnType<typeof createKeyAccess>;
