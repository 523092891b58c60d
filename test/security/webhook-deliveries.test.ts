// Webhook deliveries can only ever end the keys of the job they name, once: forged, replayed,
// foreign, keyless and malformed deliveries change nothing and get the answer they deserve.
import { createHmac, randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerErrorHandling } from '../../src/http/errors.ts';
import { registerOpenApi } from '../../src/http/openapi.ts';
import {
  WEBHOOK_BODY_LIMIT_BYTES,
  WEBHOOK_REQUESTS_PER_WINDOW,
  webhooksRoutes,
} from '../../src/http/routes/webhooks.routes.ts';
import { createKeyRepository } from '../../src/keys/key.repository.ts';
import type { JobEnd } from '../../src/webhooks/job-end.ts';
import { createWebhooks } from '../../src/webhooks/webhook-wiring.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createTestRedisPrefix, TEST_REDIS_URL } from '../support/redis.ts';

const SECRET = 'current-hook-secret';
const PREVIOUS = 'previous-hook-secret';
const GITLAB_TOKEN = 'gitlab-hook-token';

let database: TestDatabase;
let redis: Redis;
const redisPrefix = createTestRedisPrefix();
let app: ReturnType<typeof Fastify>;
let registry: Registry;
// The jobs that still have live keys, and what each delivery asked to end.
let liveJobs: Set<string>;
let ended: { end: JobEnd; details: Record<string, unknown> }[];

const jobKey = (end: JobEnd) => JSON.stringify(end);

beforeAll(async () => {
  database = await createTestDatabase();
  redis = new Redis(TEST_REDIS_URL);
  registry = new Registry();
  const keys = createKeyRepository(database.db);
  const receiver = createWebhooks({
    hosts: [
      { id: 'github', type: 'github' },
      { id: 'gitlab', type: 'gitlab' },
    ],
    env: {
      DEPLOYKEY_WEBHOOK_GITHUB_SECRET: SECRET,
      DEPLOYKEY_WEBHOOK_GITHUB_SECRET_PREVIOUS: PREVIOUS,
      DEPLOYKEY_WEBHOOK_GITLAB_SECRET: GITLAB_TOKEN,
    },
    clock: () => new Date(),
    db: database,
    registry,
    recordEvent: (event) => keys.recordEvent(event),
    endBoundKeys: async (end, _actor, details) => {
      ended.push({ end, details });
      return liveJobs.delete(jobKey(end)) ? 1 : 0;
    },
  });
  app = Fastify();
  registerErrorHandling(app);
  await registerOpenApi(app);
  await app.register(
    webhooksRoutes({
      receiver,
      budgets: {
        redis,
        prefix: redisPrefix.prefix,
        max: 100,
        timeWindowSeconds: 60,
        expensiveMax: 10,
        failedAuthMax: 10,
      },
    }),
  );
});

afterAll(async () => {
  await app?.close();
  redis?.disconnect();
  await redisPrefix.cleanup();
  await database?.drop();
});

beforeEach(() => {
  liveJobs = new Set([
    jobKey({ kind: 'github-run', host: 'github', repository: 'acme/models', runId: '501', runAttempt: '1' }),
    jobKey({ kind: 'gitlab-job', host: 'gitlab', project: 'acme/models', jobId: '77' }),
  ]);
  ended = [];
});

const runCompleted = (repository: string, runId: number, conclusion = 'cancelled') =>
  JSON.stringify({
    action: 'completed',
    workflow_run: { id: runId, run_attempt: 1, status: 'completed', conclusion },
    repository: { full_name: repository },
  });
const sign = (secret: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

function postGithub(body: string, options: { secret?: string; event?: string; delivery?: string } = {}) {
  return app.inject({
    method: 'POST',
    url: '/v1/webhooks/github/github',
    headers: {
      'content-type': 'application/json',
      'x-github-event': options.event ?? 'workflow_run',
      'x-github-delivery': options.delivery ?? randomUUID(),
      'x-hub-signature-256': sign(options.secret ?? SECRET, body),
    },
    payload: body,
  });
}

async function auditActions(): Promise<string[]> {
  const rows = await database.pool.query('SELECT action FROM audit_events ORDER BY seq');
  return rows.rows.map((row) => row.action);
}

describe('GitHub deliveries', () => {
  it('end the named run once, with the conclusion and delivery id', async () => {
    const response = await postGithub(runCompleted('Acme/Models', 501), { delivery: 'd-1' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ outcome: 'ended', revoked: 1 });
    expect(ended).toEqual([
      {
        end: { kind: 'github-run', host: 'github', repository: 'acme/models', runId: '501', runAttempt: '1' },
        details: { conclusion: 'cancelled', deliveryId: 'd-1', event: 'workflow_run' },
      },
    ]);
  });

  it('accept the previous secret during a rotation', async () => {
    const response = await postGithub(runCompleted('acme/models', 501), { secret: PREVIOUS });
    expect(response.json()).toEqual({ outcome: 'ended', revoked: 1 });
  });

  it('refuse a forged signature with 401, audited, ending nothing', async () => {
    const before = (await auditActions()).length;
    const response = await postGithub(runCompleted('acme/models', 501), { secret: 'guessed' });
    expect(response.statusCode).toBe(401);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(ended).toEqual([]);
    expect((await auditActions()).slice(before)).toEqual(['webhook.rejected']);
  });

  it('act on a replayed delivery only once', async () => {
    const body = runCompleted('acme/models', 501);
    const first = await postGithub(body, { delivery: 'replayed-1' });
    const again = await postGithub(body, { delivery: 'replayed-1' });
    expect(first.json()).toEqual({ outcome: 'ended', revoked: 1 });
    expect(again.json()).toEqual({ outcome: 'duplicate', revoked: 0 });
    expect(ended).toHaveLength(1);
  });

  it('act once on a delivery sent many times at once, and on each of many others arriving with it', async () => {
    const body = runCompleted('acme/models', 501);
    // Deliveries that arrive together are claimed together, the same delivery id among them.
    const answers = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) =>
        postGithub(runCompleted('acme/other', 900 + i), { delivery: `burst-other-${i}` }),
      ),
      ...Array.from({ length: 6 }, () => postGithub(body, { delivery: 'burst-1' })),
    ]);
    const outcomes = answers.map((answer) => answer.json().outcome);
    expect(outcomes.slice(0, 6)).toEqual(Array.from({ length: 6 }, () => 'no-keys'));
    expect(outcomes.slice(6).sort()).toEqual([
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
      'ended',
    ]);
    expect(ended.filter((entry) => entry.details.deliveryId === 'burst-1')).toHaveLength(1);
    expect(ended).toHaveLength(7);
  });

  it("name only that repository's run, so another repository's keys stay", async () => {
    const response = await postGithub(runCompleted('evil/other', 501));
    expect(response.json()).toEqual({ outcome: 'no-keys', revoked: 0 });
    expect(ended.map((entry) => entry.end)).toEqual([
      { kind: 'github-run', host: 'github', repository: 'evil/other', runId: '501', runAttempt: '1' },
    ]);
    expect(liveJobs.size).toBe(2);
  });

  it('answer an event for a job with no keys with no-keys', async () => {
    const response = await postGithub(runCompleted('acme/models', 999));
    expect(response.json()).toEqual({ outcome: 'no-keys', revoked: 0 });
    expect(liveJobs.size).toBe(2);
  });

  it('refuse a malformed payload with 400 and end nothing', async () => {
    for (const body of [
      '{not json',
      JSON.stringify({ action: 'completed', repository: { full_name: 'acme/models' } }),
    ]) {
      const response = await postGithub(body);
      expect(response.statusCode).toBe(400);
    }
    expect(ended).toEqual([]);
  });

  it('ignore other events and unfinished runs with 204', async () => {
    expect((await postGithub('{"zen":"hi"}', { event: 'ping' })).statusCode).toBe(204);
    const running = JSON.stringify({
      action: 'in_progress',
      workflow_run: { id: 501, run_attempt: 1 },
      repository: { full_name: 'acme/models' },
    });
    expect((await postGithub(running)).statusCode).toBe(204);
    expect(ended).toEqual([]);
  });

  it('refuse a signed body over the size limit with 413 and end nothing', async () => {
    const padded = JSON.stringify({
      ...JSON.parse(runCompleted('acme/models', 501)),
      padding: 'x'.repeat(WEBHOOK_BODY_LIMIT_BYTES),
    });
    const response = await postGithub(padded);
    expect(response.statusCode).toBe(413);
    expect(ended).toEqual([]);
    expect(liveJobs.size).toBe(2);
  });

  it('answer 404 for a host that is not configured', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/webhooks/github/nowhere', payload: {} });
    expect(response.statusCode).toBe(404);
  });
});

describe('GitLab deliveries', () => {
  const jobEvent = (status: string) =>
    JSON.stringify({
      object_kind: 'build',
      build_id: 77,
      build_status: status,
      pipeline_id: 12,
      project: { path_with_namespace: 'acme/models' },
    });
  const postGitlab = (body: string, token = GITLAB_TOKEN, key: string = randomUUID()) =>
    app.inject({
      method: 'POST',
      url: '/v1/webhooks/gitlab/gitlab',
      headers: {
        'content-type': 'application/json',
        'x-gitlab-event': 'Job Hook',
        'x-gitlab-token': token,
        'idempotency-key': key,
        'x-gitlab-event-uuid': randomUUID(),
      },
      payload: body,
    });

  it('end a failed job once, however often it is resent', async () => {
    const first = await postGitlab(jobEvent('failed'), GITLAB_TOKEN, 'k-1');
    const resent = await postGitlab(jobEvent('failed'), GITLAB_TOKEN, 'k-1');
    expect(first.json()).toEqual({ outcome: 'ended', revoked: 1 });
    expect(resent.json()).toEqual({ outcome: 'duplicate', revoked: 0 });
    expect(ended).toHaveLength(1);
    expect(ended[0]?.details.conclusion).toBe('failed');
  });

  it('refuse a wrong token with 401 and end nothing', async () => {
    const response = await postGitlab(jobEvent('failed'), 'gitlab-hook-tokem');
    expect(response.statusCode).toBe(401);
    expect(ended).toEqual([]);
  });

  it('ignore a job that is still running', async () => {
    expect((await postGitlab(jobEvent('running'))).statusCode).toBe(204);
    expect(ended).toEqual([]);
  });

  it('count deliveries by event and outcome', async () => {
    const text = await registry.metrics();
    expect(text).toMatch(
      /deploykey_webhook_deliveries_total\{platform="gitlab",event="Job Hook",outcome="ended"\} [1-9]/,
    );
    expect(text).toMatch(
      /deploykey_webhook_deliveries_total\{platform="github",event="workflow_run",outcome="rejected"\} [1-9]/,
    );
  });

  // Last in the file: it spends the window's budget of this host and address.
  it('refuse deliveries over the per-host budget with 429 and Retry-After, ending nothing', async () => {
    let sent = 0;
    let refused: Awaited<ReturnType<typeof postGitlab>> | undefined;
    while (!refused && sent <= WEBHOOK_REQUESTS_PER_WINDOW) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => postGitlab(jobEvent('running'))));
      sent += batch.length;
      refused = batch.find((response) => response.statusCode === 429);
    }
    expect(refused?.statusCode).toBe(429);
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // The earlier GitLab tests of this file spent a few of the same budget.
    expect(sent).toBeGreaterThan(WEBHOOK_REQUESTS_PER_WINDOW - 100);
    const failed = await postGitlab(jobEvent('failed'));
    expect(failed.statusCode).toBe(429);
    expect(ended).toEqual([]);
  });
});
