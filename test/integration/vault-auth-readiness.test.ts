// /readyz names `vault-auth` while the service holds no valid Vault token (its login is down and
// its token expired or was revoked), and is ready again once it has logged in.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { type Container, createContainer } from '../../src/container.ts';
import { type App, buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { systemClock, type Timers } from '../../src/time.ts';
import { createServiceVault } from '../../src/vault/service-vault.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { TEST_REDIS_URL } from '../support/redis.ts';

const ROOT = 'root-for-vault-auth-readiness';
let database: TestDatabase;
let standIn: VaultStandIn;
let app: App;
let container: Container;
let config: Config;

async function readyz() {
  const response = await app.inject({ method: 'GET', url: '/readyz' });
  return { status: response.statusCode, body: response.json() as { checks: Record<string, string> } };
}

async function waitFor(condition: () => Promise<boolean>, ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  standIn = await startVaultStandIn({ rootToken: ROOT });
  const root = vault({ endpoint: standIn.addr, token: ROOT });
  await root.addPolicy({ name: 'svc', rules: 'path "auth/token/renew-self" { capabilities = ["update"] }' });
  await root.write('auth/approle/role/rotator', {
    token_ttl: '2s',
    token_max_ttl: '1m',
    token_policies: ['svc'],
  });
  const roleId = (await root.getApproleRoleId({ role_name: 'rotator' })).data.role_id;
  const secretId = (await root.write('auth/approle/role/rotator/secret-id', {})).data.secret_id;
  const dir = mkdtempSync(join(tmpdir(), 'vault-auth-ready-'));
  writeFileSync(join(dir, 'secret-id'), secretId);
  writeFileSync(
    join(dir, 'config.yaml'),
    `vault:\n  auth: { method: approle, roleId: ${roleId}, secretIdFile: ${join(dir, 'secret-id')} }\n` +
      // Failed logins are tried again at least every second here (every 5 s unless configured).
      '  loginRetryMaxSeconds: 1\n',
  );
  config = loadConfig({
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    VAULT_ADDR: standIn.addr,
    DEPLOYKEY_CONFIG: join(dir, 'config.yaml'),
  });
  container = createContainer(config, createLogger('silent'));
  app = await buildApp(container);
  await container.connect();
});

afterAll(async () => {
  await app?.close();
  await container?.close();
  await standIn?.close();
  await database?.drop();
});

describe('GET /readyz with Vault login', () => {
  it('names vault-auth while no valid token is held, and is ready again after the next login', async () => {
    expect(await readyz()).toEqual({
      status: 200,
      body: { status: 'ready', checks: { postgres: 'ok', redis: 'ok', vault: 'ok', 'vault-auth': 'ok' } },
    });

    standIn.auth.takeLoginDown('unavailable');
    standIn.auth.revoke({ pathPrefix: 'auth/approle/' });
    await waitFor(async () => (await readyz()).status === 503, 5_000);
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({
      failed: ['vault-auth'],
      checks: { vault: 'ok', 'vault-auth': 'failed' },
    });

    standIn.auth.takeLoginDown(undefined);
    // Logins are retried with backoff of at most a second; the bound is generous for a loaded machine.
    await waitFor(async () => (await readyz()).status === 200, 8_000);
    expect((await readyz()).status).toBe(200);
  }, 30_000);

  it('tries a failed login again at most vault.loginRetryMaxSeconds later', async () => {
    standIn.auth.takeLoginDown('unavailable');
    // Timers that only note each wait the session asks for; the test runs each next step itself.
    const waits: number[] = [];
    let next: (() => void) | undefined;
    const timers: Timers = {
      sleep: async () => {},
      after(ms, callback) {
        waits.push(ms);
        next = callback;
        return () => {};
      },
    };
    const session = createServiceVault(config.vault, {
      clock: systemClock,
      timers,
      logger: createLogger('silent'),
    });
    try {
      await session.start();
      while (waits.length < 6) {
        const asked = waits.length;
        next?.();
        await waitFor(async () => waits.length > asked, 5_000);
        expect(waits.length, 'the session to schedule its next try').toBeGreaterThan(asked);
      }
      // Backing off from half a second, doubling, never beyond the configured second.
      expect(waits).toEqual([500, 1_000, 1_000, 1_000, 1_000, 1_000]);
    } finally {
      session.stop();
      standIn.auth.takeLoginDown(undefined);
    }
  });
});
