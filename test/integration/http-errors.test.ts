import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { type Container, createContainer } from '../../src/container.ts';
import { type App, buildApp } from '../../src/http/app.ts';
import { AppError } from '../../src/http/errors.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createCapturedLogger } from '../support/log-capture.ts';

const SECRET_MESSAGE = 'connection string postgres://admin:hunter2@db.internal/prod';

describe('HTTP errors', () => {
  let database: TestDatabase;
  let container: Container;
  let app: App;
  const captured = createCapturedLogger();

  beforeAll(async () => {
    database = await createTestDatabase();
    const config = loadConfig({
      DATABASE_URL: database.url,
      VAULT_ADDR: 'http://127.0.0.1:1',
      VAULT_TOKEN: 'x',
    });
    container = createContainer(config, captured.logger);
    app = await buildApp(container);
    app.get('/boom', async () => {
      throw new Error(SECRET_MESSAGE);
    });
    app.get('/teapot', async () => {
      throw new AppError('upstream-down', 503, 'The Git host is unavailable.', {
        expose: true,
        headers: { 'retry-after': '7' },
      });
    });
    app.get('/hidden', async () => {
      throw new AppError('vault-failed', 502, SECRET_MESSAGE);
    });
    await app.ready();
  });

  afterAll(async () => {
    await app.close();
    await container.close();
    await database.drop();
  });

  it('answers unknown routes with a problem+json 404', async () => {
    const response = await app.inject({ method: 'GET', url: '/v1/nothing-here?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json()).toMatchObject({ status: 404, code: 'not-found', instance: '/v1/nothing-here' });
  });

  it('hides the message of an unexpected error behind a generic 500 but logs it', async () => {
    const response = await app.inject({ method: 'GET', url: '/boom' });
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.body).not.toContain('hunter2');
    expect(response.json()).toMatchObject({ status: 500, code: 'internal', title: 'Internal Server Error' });
    expect(captured.text()).toContain('unhandled error');
  });

  it('never shows the message of a 5xx AppError unless it is marked as safe', async () => {
    const hidden = await app.inject({ method: 'GET', url: '/hidden' });
    expect(hidden.statusCode).toBe(502);
    expect(hidden.body).not.toContain('hunter2');
    const shown = await app.inject({ method: 'GET', url: '/teapot' });
    expect(shown.statusCode).toBe(503);
    expect(shown.headers['retry-after']).toBe('7');
    expect(shown.json()).toMatchObject({ code: 'upstream-down', detail: 'The Git host is unavailable.' });
  });

  it('tags every response with a request id, honouring a well-formed one from the caller', async () => {
    const given = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'ci-run-42' },
    });
    expect(given.headers['x-request-id']).toBe('ci-run-42');
    const hostile = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'a b;c' },
    });
    expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('redacts credentials from request logs', async () => {
    await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { authorization: 'Bearer sekrit-token-value' },
    });
    await app.inject({
      method: 'GET',
      url: '/nope',
      headers: { authorization: 'Bearer sekrit-token-value' },
    });
    expect(captured.text()).not.toContain('sekrit-token-value');
  });

  it('serves Prometheus metrics', async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('deploykey_http_requests_total');
    expect(response.body).toMatch(
      /deploykey_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/,
    );
  });
});
