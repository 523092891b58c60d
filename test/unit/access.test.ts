import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_RULES,
  type AccessAction,
  createKeyAccess,
  mayDo,
  requireAccess,
} from '../../src/auth/access.ts';
import type { DeployKeyRow } from '../../src/db/schema.ts';
import { authenticateRequests } from '../../src/http/auth.ts';
import type { Caller } from '../../src/keys/caller.ts';
import { mayMove } from '../../src/keys/key-lifecycle.ts';
import type { Role } from '../../src/model/schemas.ts';
import { refusalOf } from '../support/refusal.ts';

const ROLES: Role[] = ['issuer', 'auditor', 'admin'];

/** Who may do what, written out independently of the table under test. */
const EXPECTED: Record<AccessAction, Role[]> = {
  issue: ['issuer'],
  read: ['issuer', 'auditor', 'admin'],
  list: ['issuer', 'auditor', 'admin'],
  revoke: ['issuer', 'admin'],
  complete: ['issuer', 'admin'],
  audit: ['auditor', 'admin'],
  stats: ['auditor', 'admin'],
  admin: ['admin'],
};

const callerWith = (role: Role): Caller => ({
  id: `token:${role}`,
  actor: `token:${role}`,
  role,
  subject: { issuer: 'api-token', tokenName: role, claims: {} },
  details: {},
});

describe('the access table', () => {
  it('names every action a caller can ask for, and nothing else', () => {
    expect(Object.keys(ACCESS_RULES).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  const cells = Object.entries(EXPECTED).flatMap(([action, allowed]) =>
    ROLES.map((role) => [action as AccessAction, role, allowed.includes(role)] as const),
  );

  it.each(cells)('%s by an %s: allowed %s', (action, role, allowed) => {
    expect(mayDo(role, action)).toBe(allowed);
    if (allowed) expect(() => requireAccess(callerWith(role), action)).not.toThrow();
    else expect(refusalOf(() => requireAccess(callerWith(role), action)).code).toBe('role-not-allowed');
  });

  it('tells a refused caller why, and names it for the audit log', () => {
    const issue = refusalOf(() => requireAccess(callerWith('auditor'), 'issue'));
    expect(issue.message).toBe('only callers with the issuer role get keys; this caller is auditor');
    expect(issue.denial).toEqual({
      actor: 'token:auditor',
      reason: 'role-not-allowed',
      details: { role: 'auditor', needs: ['issuer'], caller: 'token:auditor' },
    });
    expect(refusalOf(() => requireAccess(callerWith('auditor'), 'revoke')).message).toBe(
      'auditors can read keys but not revoke them',
    );
    expect(refusalOf(() => requireAccess(callerWith('issuer'), 'audit')).message).toBe(
      'this needs the role auditor or admin; the caller is issuer',
    );
    expect(refusalOf(() => requireAccess(callerWith('auditor'), 'admin')).message).toBe(
      'this needs the role admin; the caller is auditor',
    );
  });

  it('agrees with the key lifecycle on who may ask for a key to be revoked', () => {
    for (const role of ROLES) {
      const asKeyActor = role === 'auditor' ? undefined : role;
      const lifecycleAllows = asKeyActor !== undefined && mayMove(asKeyActor, 'active', 'revoking');
      expect(mayDo(role, 'revoke'), role).toBe(lifecycleAllows);
      expect(mayDo(role, 'complete'), role).toBe(lifecycleAllows);
    }
  });
});

describe('the scope rule over keys', () => {
  const owners: Record<string, string[]> = { 'token:issuer': ['owner-a', 'owner-b'] };
  const access = createKeyAccess((caller) => owners[caller.id] ?? []);
  const keyOf = (owner: string) =>
    ({ id: 'k1', owner, provider: 'github', repository: 'acme/models', job_id: 'j' }) as DeployKeyRow;

  it('holds an issuer to its own owner identities, and lets auditors and admins reach every key', () => {
    expect(access.scopeOf(callerWith('issuer'))).toEqual(['owner-a', 'owner-b']);
    expect(access.scopeOf(callerWith('auditor'))).toBeUndefined();
    expect(access.scopeOf(callerWith('admin'))).toBeUndefined();
  });

  it('refuses an issuer that no policy rule accepts: it has no keys to see', () => {
    const stranger = { ...callerWith('issuer'), id: 'token:stranger', actor: 'token:stranger' };
    const refusal = refusalOf(() => access.scopeOf(stranger));
    expect(refusal.code).toBe('forbidden-by-policy');
    expect(refusal.extra).toEqual({ reason: 'no-matching-rule' });
  });

  it("makes another owner's key look exactly like a missing one, auditing only the attempt on a real key", () => {
    expect(access.reachable(callerWith('issuer'), 'k1', keyOf('owner-b')).owner).toBe('owner-b');
    expect(access.reachable(callerWith('auditor'), 'k1', keyOf('owner-z')).owner).toBe('owner-z');
    const theirs = refusalOf(() => access.reachable(callerWith('issuer'), 'k1', keyOf('owner-z')));
    const missing = refusalOf(() => access.reachable(callerWith('issuer'), 'k1', undefined));
    expect([theirs.code, theirs.message]).toEqual([missing.code, missing.message]);
    expect(theirs.code).toBe('key-not-found');
    expect(theirs.denial).toMatchObject({ reason: 'not-the-owner', key: { keyId: 'k1', jobId: 'j' } });
    expect(missing.denial).toBeUndefined();
  });
});

describe('the API naming an action per route', () => {
  const authenticate = async () => callerWith('issuer');

  it('refuses to register an authenticated route that names no action', async () => {
    const app = Fastify();
    const registered = app
      .register(async (area) => {
        authenticateRequests(area, authenticate);
        area.get('/open', async () => 'open');
      })
      .ready();
    await expect(registered).rejects.toThrow(/GET \/open names no access action/);
  });

  it("refuses a caller whose role may not do the route's action before the handler runs", async () => {
    const app = Fastify();
    let handled = 0;
    await app.register(async (area) => {
      authenticateRequests(area, authenticate);
      area.get('/audit', { config: { access: 'audit' } }, async () => ++handled);
      area.get('/keys', { config: { access: 'list' } }, async () => ++handled);
    });
    const refused = await app.inject({ method: 'GET', url: '/audit' });
    const allowed = await app.inject({ method: 'GET', url: '/keys' });
    expect(refused.statusCode).not.toBe(200);
    expect(allowed.statusCode).toBe(200);
    expect(handled).toBe(1);
    await app.close();
  });
});
