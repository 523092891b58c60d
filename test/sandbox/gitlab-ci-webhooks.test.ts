import { readFileSync } from 'node:fs';
import { type GitbeakerRequestError, Gitlab } from '@gitbeaker/rest';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type GitlabStandIn, startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import {
  type ReceivedWebhook,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../support/webhook-receiver.ts';

const TOKEN = 'glpat-sandbox-hooks-token';
const HOOK_TOKEN = 'shared-secret-token';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const documented = JSON.parse(
  readFileSync(new URL('../fixtures/gitlab-ci-webhook-examples.json', import.meta.url), 'utf8'),
) as { job: Record<string, unknown>; pipeline: Record<string, unknown> };

type Described = { pipeline: { id: number }; jobs: Array<{ id: number; name: string }> };
type Payload = Record<string, unknown> & { object_kind: string };

let state: HostState;
let gitlab: GitlabStandIn;
let origin: string;
let api: InstanceType<typeof Gitlab>;
let models: number;
const cleanups: Array<() => Promise<unknown>> = [];

async function sandbox(path: string, body: unknown = {}): Promise<Described> {
  const response = await fetch(`${origin}/_sandbox/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return response.status === 204 ? ({} as Described) : ((await response.json()) as Described);
}
const newPipeline = (jobs: unknown[], project = 'acme/models') => sandbox('ci/pipelines', { project, jobs });

async function receiver(): Promise<WebhookReceiver> {
  const started = await startWebhookReceiver();
  cleanups.push(() => started.close());
  return started;
}

async function projectHook(
  url: string,
  project: string | number = models,
  options: Record<string, unknown> = {},
) {
  const hook = await api.ProjectHooks.add(project, url, {
    token: HOOK_TOKEN,
    jobEvents: true,
    pipelineEvents: true,
    pushEvents: false,
    ...options,
  });
  cleanups.push(() => api.ProjectHooks.remove(project, hook.id));
  return hook;
}

async function hookLogs(hookId: number, project = models) {
  const response = await fetch(`${gitlab.url}/projects/${project}/hooks/${hookId}/events`, {
    headers: { 'PRIVATE-TOKEN': TOKEN },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Array<{
    id: number;
    trigger: string;
    response_status: string;
    request_headers: Record<string, string>;
    request_data: Payload;
  }>;
}

const payloadOf = (webhook: ReceivedWebhook) => JSON.parse(webhook.rawBody) as Payload;
const jobEvents = (webhooks: ReceivedWebhook[]) =>
  webhooks.map(payloadOf).filter((payload) => payload.object_kind === 'build') as Array<
    Payload & { build_id: number; build_status: string; build_failure_reason: string }
  >;

/**
 * Where a payload departs from GitLab's documented example: a documented field missing, a field
 * of another JSON type (null matches anything), or a field the example does not show.
 */
function shapeProblems(example: unknown, actual: unknown, optional: string[], path = '$'): string[] {
  if (example === null || actual === null) return [];
  const kind = (value: unknown) => (Array.isArray(value) ? 'array' : typeof value);
  if (kind(example) !== kind(actual)) return [`${path}: ${kind(actual)} instead of ${kind(example)}`];
  if (Array.isArray(example)) {
    const items = actual as unknown[];
    return example.length === 0
      ? []
      : items.flatMap((item, i) => shapeProblems(example[0], item, optional, `${path}[${i}]`));
  }
  if (typeof example !== 'object') return [];
  const expected = example as Record<string, unknown>;
  const got = actual as Record<string, unknown>;
  const missing = Object.keys(expected)
    .filter((key) => !(key in got) && !optional.includes(`${path}.${key}`))
    .map((key) => `${path}.${key}: missing`);
  const extra = Object.keys(got)
    .filter((key) => !(key in expected) && !optional.includes(`${path}.${key}`))
    .map((key) => `${path}.${key}: not documented`);
  const nested = Object.keys(expected)
    .filter((key) => key in got)
    .flatMap((key) => shapeProblems(expected[key], got[key], optional, `${path}.${key}`));
  return [...missing, ...extra, ...nested];
}

// Fields GitLab sends only sometimes (a parent pipeline) or that its data builders add beyond the
// documented example (`User#hook_attrs` has `username` and `Commit#hook_attrs` a `title`, as the
// Pipeline and Push examples show).
const JOB_OPTIONAL = [
  '$.source_pipeline',
  '$.user.username',
  '$.commit.author_url',
  '$.repository.url',
  '$.project.ci_config_path',
];
const PIPELINE_OPTIONAL = [
  '$.source_pipeline',
  '$.object_attributes.detailed_status',
  '$.object_attributes.queued_duration',
  '$.object_attributes.protected_ref',
  '$.project.ci_config_path',
  '$.commit.title',
  '$.builds[0].queued_duration',
];

beforeAll(async () => {
  state = createHostState('gitlab');
  models = state.addRepository('acme/models', '/nonexistent/models.git').id;
  state.addRepository('acme/ml/datasets', '/nonexistent/datasets.git');
  gitlab = await startGitlabStandIn({ state, tokens: [TOKEN] });
  origin = new URL(gitlab.url).origin;
  api = new Gitlab({ host: origin, token: TOKEN });
  return () => gitlab.close();
});
afterEach(async () => {
  gitlab.deliveries.clearFaults();
  gitlab.deliveries.release();
  await gitlab.deliveries.idle();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('GitLab stand-in: Job and Pipeline events as GitLab sends them', () => {
  it('sends every status change of a pipeline and its jobs, with GitLab’s headers and documented payloads', async () => {
    const inbox = await receiver();
    const hook = await projectHook(inbox.url);
    expect(hook).toMatchObject({
      url: inbox.url,
      project_id: models,
      job_events: true,
      pipeline_events: true,
    });
    expect(hook).not.toHaveProperty('token');

    const { pipeline, jobs } = await newPipeline(['build', 'test']);
    await sandbox(`ci/jobs/${jobs[0]!.id}/finish`, { status: 'success' });
    await sandbox(`ci/jobs/${jobs[1]!.id}/finish`, { status: 'failed' });
    const all = await inbox.waitFor(9);

    for (const webhook of all) {
      const payload = payloadOf(webhook);
      const isJob = payload.object_kind === 'build';
      expect(webhook.headers).toMatchObject({
        'content-type': 'application/json',
        'x-gitlab-event': isJob ? 'Job Hook' : 'Pipeline Hook',
        'x-gitlab-token': HOOK_TOKEN,
        'x-gitlab-instance': origin,
      });
      expect(webhook.headers['user-agent']).toMatch(/^GitLab\/\d+\.\d+\.\d+$/);
      for (const header of ['x-gitlab-event-uuid', 'x-gitlab-webhook-uuid', 'idempotency-key']) {
        expect(webhook.headers[header], header).toMatch(UUID);
      }
      const example = isJob ? documented.job : documented.pipeline;
      expect(shapeProblems(example, payload, isJob ? JOB_OPTIONAL : PIPELINE_OPTIONAL)).toEqual([]);
    }
    expect(jobEvents(all).map((event) => [event.build_id, event.build_status])).toEqual(
      expect.arrayContaining([
        [jobs[0]!.id, 'pending'],
        [jobs[0]!.id, 'running'],
        [jobs[0]!.id, 'success'],
        [jobs[1]!.id, 'failed'],
      ]),
    );
    const failed = jobEvents(all).find((event) => event.build_status === 'failed')!;
    expect(failed).toMatchObject({
      pipeline_id: pipeline.id,
      project_id: models,
      build_failure_reason: 'script_failure',
    });
    expect((failed.commit as { id: number }).id).toBe(pipeline.id);
    const pipelineStatuses = all
      .map(payloadOf)
      .filter((payload) => payload.object_kind === 'pipeline')
      .map((payload) => (payload.object_attributes as { status: string }).status);
    expect(pipelineStatuses.sort()).toEqual(['failed', 'pending', 'running']);
  });

  it('reports a timed-out job as failed with build_failure_reason job_execution_timeout', async () => {
    const inbox = await receiver();
    await projectHook(inbox.url, models, { pipelineEvents: false });
    const { jobs } = await newPipeline(['train']);
    await inbox.waitFor(2);
    await sandbox(`ci/jobs/${jobs[0]!.id}/time-out`);
    const [, , last] = await inbox.waitFor(3);
    expect(payloadOf(last!)).toMatchObject({
      build_id: jobs[0]!.id,
      build_status: 'failed',
      build_failure_reason: 'job_execution_timeout',
      build_finished_at: expect.any(String),
    });
  });

  it('delivers to a group hook the events of every project below the group, and to a project hook only its own', async () => {
    const group = await receiver();
    const datasets = await receiver();
    const groupHook = await api.GroupHooks.add('acme', group.url, { jobEvents: true, pushEvents: false });
    cleanups.push(() => api.GroupHooks.remove('acme', groupHook.id));
    await projectHook(datasets.url, 'acme/ml/datasets');

    await newPipeline(['build'], 'acme/models');
    await newPipeline(['build'], 'acme/ml/datasets');
    await group.waitFor(4);
    await gitlab.deliveries.idle();
    const projects = (webhooks: ReceivedWebhook[]) =>
      new Set(
        webhooks.map(
          (webhook) => (payloadOf(webhook).project as { path_with_namespace: string }).path_with_namespace,
        ),
      );
    expect(projects(group.received)).toEqual(new Set(['acme/models', 'acme/ml/datasets']));
    expect(group.received.map((webhook) => webhook.headers['x-gitlab-event'])).toEqual(
      Array(4).fill('Job Hook'),
    );
    expect(group.received[0]!.headers['x-gitlab-token']).toBeUndefined();
    expect(projects(datasets.received)).toEqual(new Set(['acme/ml/datasets']));
  });
});

describe('GitLab stand-in: failed deliveries, hook logs and resend', () => {
  it('logs a failed delivery without retrying it; resend repeats it with the same Idempotency-Key', async () => {
    const inbox = await receiver();
    const hook = await projectHook(inbox.url, models, { pipelineEvents: false });
    inbox.respondWith(500);
    const { jobs } = await newPipeline(['build']);
    await inbox.waitFor(2);
    await gitlab.deliveries.idle();
    expect(inbox.received).toHaveLength(2);

    const logs = await hookLogs(hook.id);
    expect(logs.map((log) => [log.trigger, log.response_status])).toEqual([
      ['job_hooks', '500'],
      ['job_hooks', '500'],
    ]);
    expect(logs[0]!.request_headers['X-Gitlab-Token']).toBe('[REDACTED]');
    const pending = logs.find((log) => log.request_data.build_status === 'pending')!;
    expect(pending.request_data).toMatchObject({ build_id: jobs[0]!.id });

    inbox.respondWith(200);
    const resent = await fetch(
      `${gitlab.url}/projects/${models}/hooks/${hook.id}/events/${pending.id}/resend`,
      {
        method: 'POST',
        headers: { 'PRIVATE-TOKEN': TOKEN },
      },
    );
    expect(resent.status).toBe(201);
    expect(await resent.json()).toEqual({ response_status: 200 });
    const [original, , again] = await inbox.waitFor(3);
    const first = [original!, inbox.received[1]!].find((webhook) => webhook.rawBody === again!.rawBody)!;
    expect(again!.headers['idempotency-key']).toBe(first.headers['idempotency-key']);
    expect(again!.headers['x-gitlab-event-uuid']).not.toBe(first.headers['x-gitlab-event-uuid']);
    expect((await hookLogs(hook.id))[0]).toMatchObject({ response_status: '200' });
  });

  it('disables a hook for a while after four failures in a row, as GitLab does', async () => {
    const inbox = await receiver();
    const hook = await projectHook(inbox.url, models, { pipelineEvents: false });
    inbox.respondWith(502);
    await newPipeline(['a', 'b']);
    await inbox.waitFor(4);
    await gitlab.deliveries.idle();
    const shown = await api.ProjectHooks.show(models, hook.id);
    expect(shown).toMatchObject({ alert_status: 'temporarily_disabled', disabled_until: expect.any(String) });

    inbox.respondWith(200);
    await newPipeline(['c']);
    await gitlab.deliveries.idle();
    expect(inbox.received).toHaveLength(4);
  });

  it('records a refused connection as an internal error in the hook log', async () => {
    const closed = await startWebhookReceiver();
    await closed.close();
    const hook = await projectHook(closed.url, models, { pipelineEvents: false });
    await newPipeline(['build']);
    await gitlab.deliveries.idle();
    const logs = await hookLogs(hook.id);
    expect(logs.map((log) => log.response_status)).toEqual(['internal error', 'internal error']);
  });

  it('pages the hook log with page and per_page, as GitLab does', async () => {
    const inbox = await receiver();
    const hook = await projectHook(inbox.url, models, { pipelineEvents: false });
    await newPipeline(['build', 'test']);
    await gitlab.deliveries.idle();
    const all = await hookLogs(hook.id);
    expect(all).toHaveLength(4);
    const pageOf = async (page: number) => {
      const response = await fetch(
        `${gitlab.url}/projects/${models}/hooks/${hook.id}/events?per_page=3&page=${page}`,
        { headers: { 'PRIVATE-TOKEN': TOKEN } },
      );
      return {
        next: response.headers.get('x-next-page'),
        ids: ((await response.json()) as { id: number }[]).map((l) => l.id),
      };
    };
    expect(await pageOf(1)).toEqual({ next: '2', ids: all.slice(0, 3).map((log) => log.id) });
    expect(await pageOf(2)).toEqual({ next: '', ids: all.slice(3).map((log) => log.id) });
  });
});

describe('GitLab stand-in: delivery faults', () => {
  async function ready() {
    const inbox = await receiver();
    const hook = await projectHook(inbox.url, models, { pipelineEvents: false });
    const { jobs } = await newPipeline(['a', 'b', 'c']);
    await inbox.waitFor(6);
    await gitlab.deliveries.idle();
    return { inbox, hook, jobs };
  }
  const finished = (webhooks: ReceivedWebhook[]) =>
    jobEvents(webhooks)
      .filter((event) => event.build_status === 'success')
      .map((event) => event.build_id);

  it('duplicates a delivery with the same Idempotency-Key and a new X-Gitlab-Event-UUID', async () => {
    const { inbox, jobs } = await ready();
    gitlab.deliveries.setFaults({ duplicate: 1 });
    await sandbox(`ci/jobs/${jobs[0]!.id}/finish`, { status: 'success' });
    const [first, second] = (await inbox.waitFor(8)).slice(6);
    expect(first!.rawBody).toBe(second!.rawBody);
    expect(first!.headers['idempotency-key']).toBe(second!.headers['idempotency-key']);
    expect(first!.headers['x-gitlab-event-uuid']).not.toBe(second!.headers['x-gitlab-event-uuid']);
  });

  it('drops deliveries: the receiver never gets them, the hook log shows them failed', async () => {
    const { inbox, hook, jobs } = await ready();
    await sandbox('deliveries/faults', { drop: 1 });
    await sandbox(`ci/jobs/${jobs[0]!.id}/finish`, { status: 'success' });
    await sandbox(`ci/jobs/${jobs[1]!.id}/finish`, { status: 'success' });
    await inbox.waitFor(7);
    await sandbox('deliveries/idle');
    expect(finished(inbox.received)).toEqual([jobs[1]!.id]);
    expect((await hookLogs(hook.id)).filter((log) => log.response_status === 'internal error')).toHaveLength(
      1,
    );
  });

  it('refuses a fault that is not a count and an order it does not know', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${origin}/_sandbox/deliveries/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('faults', { drop: 'all' })).status).toBe(400);
    expect((await post('faults', { drop: -1 })).status).toBe(400);
    expect((await post('faults', { lose: 1 })).status).toBe(400);
    expect((await post('release', { order: 'random' })).status).toBe(400);
  });

  it('reverses and holds deliveries on request', async () => {
    const { inbox, jobs } = await ready();
    await sandbox('deliveries/faults', { reverse: 2 });
    await sandbox(`ci/jobs/${jobs[0]!.id}/finish`, { status: 'success' });
    await sandbox(`ci/jobs/${jobs[1]!.id}/finish`, { status: 'success' });
    expect(finished((await inbox.waitFor(8)).slice(6))).toEqual([jobs[1]!.id, jobs[0]!.id]);

    await sandbox('deliveries/hold');
    await sandbox(`ci/jobs/${jobs[2]!.id}/finish`, { status: 'success' });
    await sandbox('deliveries/idle');
    expect(inbox.received).toHaveLength(8);
    await sandbox('deliveries/release');
    expect(finished((await inbox.waitFor(9)).slice(8))).toEqual([jobs[2]!.id]);
  });
});

describe('GitLab stand-in: hook management through @gitbeaker/rest', () => {
  it('edits and removes a project hook, and answers 400 without a URL and 404 for another project’s hook', async () => {
    const inbox = await receiver();
    const hook = await projectHook(inbox.url);
    const edited = await api.ProjectHooks.edit(models, hook.id, inbox.url, {
      jobEvents: false,
      enableSslVerification: false,
    });
    expect(edited).toMatchObject({
      job_events: false,
      pipeline_events: true,
      enable_ssl_verification: false,
    });
    expect((await api.ProjectHooks.all(models)).map((each) => each.id)).toEqual([hook.id]);

    const status = (request: Promise<unknown>) =>
      request.then(
        () => 200,
        (error: GitbeakerRequestError) => (error.cause as { response: Response }).response.status,
      );
    expect(await status(api.ProjectHooks.show('acme/ml/datasets', hook.id))).toBe(404);
    expect(await status(api.ProjectHooks.add(models, undefined as unknown as string))).toBe(400);

    await api.ProjectHooks.remove(models, hook.id);
    cleanups.pop();
    expect(await status(api.ProjectHooks.show(models, hook.id))).toBe(404);
  });
});
