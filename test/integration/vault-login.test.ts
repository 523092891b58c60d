// The service's own Vault session against the stand-in: AppRole login, renewal at half the lease,
// a new login when the max TTL nears, when renewal is refused or the token is revoked, and waiting
// out an outage of Vault auth, with no token or secret id in logs or errors.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vault from 'node-vault';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { generateDeployKeyPair } from '../../src/keys/ssh-keypair.ts';
import { systemClock, systemTimers } from '../../src/time.ts';
import { VaultError } from '../../src/vault/secret-store.ts';
import { createVaultSession, type VaultSession } from '../../src/vault/vault-login.ts';
import { createVaultSecretStore } from '../../src/vault/vault-secret-store.ts';
import { createCapturedLogger } from '../support/log-capture.ts';

const ROOT = 'root-vault-login';
let standIn: VaultStandIn;
let root: vault.client;
let roleId: string;
let secretId: string;
let secretIdFile: string;
const sessions: VaultSession[] = [];

const POLICY = `
path "secret/data/deploy-keys/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/deploy-keys/*" { capabilities = ["create", "update", "read", "delete"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
`;

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: ROOT });
  root = vault({ endpoint: standIn.addr, token: ROOT });
  await root.addPolicy({ name: 'svc-rotator', rules: POLICY });
  await root.write('auth/approle/role/rotator', {
    token_ttl: '2s',
    token_max_ttl: '4s',
    token_policies: ['svc-rotator'],
  });
  roleId = (await root.getApproleRoleId({ role_name: 'rotator' })).data.role_id;
  secretId = (await root.write('auth/approle/role/rotator/secret-id', {})).data.secret_id;
  secretIdFile = join(mkdtempSync(join(tmpdir(), 'vault-login-')), 'secret-id');
  writeFileSync(secretIdFile, `${secretId}\n`);
});
afterEach(() => {
  for (const session of sessions.splice(0)) session.stop();
  standIn.auth.refuseRenewals(undefined);
  standIn.auth.takeLoginDown(undefined);
});
afterAll(() => standIn?.close());

function startSession() {
  const captured = createCapturedLogger('debug');
  const session = createVaultSession({
    addr: standIn.addr,
    auth: { method: 'approle', roleId, secretIdFile, mount: 'approle' },
    clock: systemClock,
    timers: systemTimers,
    logger: captured.logger,
    retryMs: { initial: 100, max: 400 },
  });
  sessions.push(session);
  const store = createVaultSecretStore({
    vault: session.client,
    kvMount: 'secret',
    pathPrefix: 'deploy-keys',
  });
  return { session, store, captured };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const logged = (text: string, message: string) =>
  text.split('\n').filter((line) => line.includes(message)).length;

/**
 * Writes, reads and destroys keys back to back until `enough` says so after a round (or, if it
 * never does, for `maxMs`); returns every failure and whether `enough` was reached.
 */
async function traffic(
  store: ReturnType<typeof startSession>['store'],
  label: string,
  { enough, maxMs }: { enough: (done: number) => boolean; maxMs: number },
) {
  const failures: string[] = [];
  let done = 0;
  let reached = false;
  const giveUpAt = Date.now() + maxMs;
  while (!reached && Date.now() < giveUpAt) {
    const path = store.pathFor('o-login', `${label}-${done}`, 'github', 'acme/models');
    try {
      const keyId = `k-${label}-${done}`;
      await store.write(
        path,
        { ...generateDeployKeyPair('x'), knownHosts: 'h' },
        {
          keyId,
          expiresAt: new Date(Date.now() + 60_000),
        },
      );
      expect(await store.read(path)).toBeDefined();
      expect(await store.destroy(path, keyId)).toBe('destroyed');
    } catch (error) {
      failures.push((error as Error).message);
    }
    done += 1;
    reached = enough(done);
    if (!reached) await sleep(50);
  }
  return { failures, done, reached };
}
const forMs = (ms: number) => {
  const until = Date.now() + ms;
  return { enough: () => Date.now() >= until, maxMs: ms };
};

describe('the service’s Vault login', () => {
  it('renews before the lease ends and logs in again as the max TTL nears, with no failed request', async () => {
    const { session, store, captured } = startSession();
    await session.start();
    // 2 s leases within a 4 s max TTL: renewals at 1 and 2 s, a new login at 3 s as the third is
    // capped. Traffic runs on until the second new login, and for at least 50 rounds.
    const logins = () => logged(captured.text(), 'logged in to Vault');
    const { failures, done, reached } = await traffic(store, 'ttl', {
      enough: (rounds) => rounds > 50 && logins() >= 3,
      maxMs: 25_000,
    });
    expect(failures).toEqual([]);
    expect(done).toBeGreaterThan(50);
    expect(reached, `${logins()} logins in ${done} rounds`).toBe(true);
    expect(captured.text()).not.toContain('Vault token renewal failed');
    expect(() => session.check()).not.toThrow();
  }, 30_000);

  it('logs in again when renewal is refused, and when its token is revoked behind its back', async () => {
    const { session, store, captured } = startSession();
    await session.start();
    standIn.auth.refuseRenewals({ status: 400, errors: ['lease is not renewable'] });
    const refusals = () => logged(captured.text(), 'Vault refused renewal; logging in again');
    // The first renewal comes at half the 2 s lease; traffic goes on through the login after it.
    const refused = await traffic(store, 'refused', { enough: () => refusals() >= 1, maxMs: 10_000 });
    expect(refused.failures).toEqual([]);
    expect(refusals()).toBeGreaterThanOrEqual(1);
    standIn.auth.refuseRenewals(undefined);

    expect(standIn.auth.revoke({ pathPrefix: 'auth/approle/' })).toBeGreaterThan(0);
    const revoked = await traffic(store, 'revoked', forMs(500));
    expect(revoked.failures).toEqual([]);
    expect(captured.text()).toContain('Vault no longer accepts the service token');
  }, 20_000);

  it('while Vault auth is down holds no token and fails requests as unavailable, then recovers', async () => {
    const { session, store, captured } = startSession();
    await session.start();
    standIn.auth.takeLoginDown('unavailable');
    standIn.auth.revoke({ pathPrefix: 'auth/approle/' });
    const path = store.pathFor('o-login', 'down', 'github', 'acme/models');
    const failure = await store.read(path).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(VaultError);
    expect((failure as VaultError).kind).toBe('unavailable');
    expect(() => session.check()).toThrow(/no valid Vault token/);

    standIn.auth.takeLoginDown(undefined);
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline) {
      try {
        session.check();
        break;
      } catch {
        await sleep(50);
      }
    }
    expect(() => session.check()).not.toThrow();
    expect(await store.read(path)).toBeUndefined();
    const text = captured.text();
    expect(text).toContain('Vault login failed; retrying');
    expect(text).not.toContain(secretId);
    expect(text).not.toMatch(/hvs\.[A-Za-z0-9]{8}/);
    expect(String((failure as Error).message)).not.toContain(secretId);
  }, 20_000);
});
