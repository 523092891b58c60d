import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { loadConfig } from '../../src/config.ts';
import { type Container, createContainer } from '../../src/container.ts';
import { type App, buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { TEST_REDIS_URL } from '../support/redis.ts';

describe('GET /readyz', () => {
  let database: TestDatabase;
  let vault: VaultStandIn;
  const running: { app: App; container: Container }[] = [];

  async function serviceWith(env: Record<string, string>) {
    const config = loadConfig({
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      VAULT_ADDR: vault.addr,
      VAULT_TOKEN: 'root-for-readiness',
      ...env,
    });
    const container = createContainer(config, createLogger('silent'));
    const app = await buildApp(container);
    running.push({ app, container });
    return app;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    vault = await startVaultStandIn({ rootToken: 'root-for-readiness' });
  });

  afterAll(async () => {
    for (const { app, container } of running) {
      await app.close();
      await container.close();
    }
    await vault.close();
    await database.drop();
  });

  it('answers 200 when Postgres, Redis and Vault all answer', async () => {
    const app = await serviceWith({});
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: 'ready',
      checks: { postgres: 'ok', redis: 'ok', vault: 'ok' },
    });
  });

  it('answers 503 naming redis when Redis is unreachable, without internal details', async () => {
    const app = await serviceWith({ REDIS_URL: 'redis://127.0.0.1:9' });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toContain('application/problem+json');
    const body = response.json();
    expect(body.failed).toEqual(['redis']);
    expect(body.detail).toContain('redis');
    expect(body.checks).toEqual({ postgres: 'ok', redis: 'failed', vault: 'ok' });
    expect(response.body).not.toContain('127.0.0.1:9');
  });

  it('names Vault when it answers with errors, and recovers when it is back', async () => {
    const app = await serviceWith({});
    vault.faults.add({ status: 500, pathPrefix: '/v1/sys/health', count: 1 });
    const failing = await app.inject({ method: 'GET', url: '/readyz' });
    expect(failing.statusCode).toBe(503);
    expect(failing.json().failed).toEqual(['vault']);
    const recovered = await app.inject({ method: 'GET', url: '/readyz' });
    expect(recovered.statusCode).toBe(200);
  });

  it('keeps /healthz at 200 even when dependencies are down', async () => {
    const app = await serviceWith({ REDIS_URL: 'redis://127.0.0.1:9', VAULT_ADDR: 'http://127.0.0.1:9' });
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.json().failed).toEqual(['redis', 'vault']);
  });
});
