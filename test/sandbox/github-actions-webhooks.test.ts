import { createHmac } from 'node:crypto';
import { Octokit } from '@octokit/rest';
import { createNodeMiddleware, type EmitterWebhookEvent, Webhooks } from '@octokit/webhooks';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import {
  expectSchema,
  requiredWebhookHeaders,
  restSchema,
  undocumentedFields,
  webhookSchema,
} from '../support/github-schemas.ts';
import {
  type ReceivedWebhook,
  serveHandler,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../support/webhook-receiver.ts';

const TOKEN = 'ghp_sandboxWebhooksToken';
const SECRET = 'It’s a Secret to Everybody';
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
const repo = { owner: 'acme', repo: 'models' };
const HOOKS = '/repos/{owner}/{repo}/hooks';
const ACTIONS_EVENTS = ['workflow_job', 'workflow_run'];

type Described = { run: { id: number }; jobs: Array<{ id: number; name: string }> };

let state: HostState;
let github: GithubStandIn;
let octokit: Octokit;
const cleanups: Array<() => Promise<unknown>> = [];

async function sandbox(path: string, body: unknown = {}): Promise<Described> {
  const response = await fetch(`${github.url}/_sandbox/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return response.status === 204 ? ({} as Described) : ((await response.json()) as Described);
}

const newRun = (jobs: unknown[], repository = 'acme/models') => sandbox('actions/runs', { repository, jobs });

async function receiver(): Promise<WebhookReceiver> {
  const started = await startWebhookReceiver();
  cleanups.push(() => started.close());
  return started;
}

async function repositoryHook(url: string, extra: Record<string, unknown> = {}, target = repo) {
  const created = await octokit.rest.repos.createWebhook({
    ...target,
    config: { url, content_type: 'json', secret: SECRET },
    events: ACTIONS_EVENTS,
    ...extra,
  });
  cleanups.push(() => octokit.rest.repos.deleteWebhook({ ...target, hook_id: created.data.id }));
  return created.data;
}

const parsed = (webhook: ReceivedWebhook) => ({
  event: webhook.headers['x-github-event'] as string,
  guid: webhook.headers['x-github-delivery'] as string,
  payload: JSON.parse(webhook.rawBody) as Record<string, unknown> & { action?: string },
});
// GitHub's schema for one action sometimes omits a field it documents for another action of the
// same event (display_title, user_view_type); a field is GitHub's if any action documents it.
const ACTIONS: Record<string, Array<string | undefined>> = {
  ping: [undefined],
  workflow_run: ['requested', 'in_progress', 'completed'],
  workflow_job: ['queued', 'waiting', 'in_progress', 'completed'],
};
function undocumentedInEveryAction(event: string, payload: unknown): string[] {
  const perAction = (ACTIONS[event] ?? []).map((action) =>
    undocumentedFields(webhookSchema(event, action), payload),
  );
  return perAction.reduce((common, next) => common.filter((field) => next.includes(field)));
}
const kinds = (webhooks: ReceivedWebhook[]) =>
  webhooks.map(parsed).map(({ event, payload }) => [event, payload.action].filter(Boolean).join('.'));

beforeAll(async () => {
  state = createHostState('github');
  state.addRepository('acme/models', '/nonexistent/models.git');
  state.addRepository('acme/datasets', '/nonexistent/datasets.git');
  github = await startGithubStandIn({ state, tokens: [TOKEN], sshHostKeys: () => [] });
  octokit = new Octokit({ auth: TOKEN, baseUrl: github.url, log: quiet });
  return () => github.close();
});
afterEach(async () => {
  github.deliveries.clearFaults();
  github.deliveries.release();
  await github.deliveries.idle();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('GitHub stand-in: workflow webhooks as GitHub sends them', () => {
  it('pings a new hook, then sends a run’s life as workflow_run and workflow_job deliveries that match GitHub’s schemas', async () => {
    const inbox = await receiver();
    const hook = await repositoryHook(inbox.url);
    await inbox.waitFor(1);
    const { run, jobs } = await newRun(['build', 'test']);
    await sandbox(`actions/jobs/${jobs[0]!.id}/complete`, { conclusion: 'success' });
    await sandbox(`actions/jobs/${jobs[1]!.id}/complete`, { conclusion: 'failure' });
    const all = await inbox.waitFor(10);

    expect(kinds(all).sort()).toEqual(
      [
        'ping',
        'workflow_run.requested',
        'workflow_run.in_progress',
        'workflow_run.completed',
        ...['queued', 'in_progress', 'completed'].flatMap((action) => [
          `workflow_job.${action}`,
          `workflow_job.${action}`,
        ]),
      ].sort(),
    );
    for (const webhook of all) {
      const { event, payload } = parsed(webhook);
      expectSchema(webhookSchema(event, payload.action), payload);
      expect(undocumentedInEveryAction(event, payload)).toEqual([]);
      for (const header of requiredWebhookHeaders(event, payload.action)) {
        expect(webhook.headers[header.toLowerCase()], header).toBeDefined();
      }
      expect(webhook.headers).toMatchObject({
        'content-type': 'application/json',
        'x-github-hook-id': String(hook.id),
        'x-github-hook-installation-target-type': 'repository',
        'x-github-hook-installation-target-id': String(state.findRepository('acme/models')!.id),
      });
      expect(webhook.headers['user-agent']).toMatch(/^GitHub-Hookshot\/[0-9a-f]{7}$/);
      expect(webhook.headers['x-github-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    }
    const completed = all.map(parsed).filter(({ payload }) => payload.action === 'completed');
    const byJob = Object.fromEntries(
      completed
        .filter(({ event }) => event === 'workflow_job')
        .map(({ payload }) => {
          const job = payload.workflow_job as {
            id: number;
            run_id: number;
            run_attempt: number;
            conclusion: string;
          };
          expect(job).toMatchObject({ run_id: run.id, run_attempt: 1 });
          return [job.id, job.conclusion];
        }),
    );
    expect(byJob).toEqual({ [jobs[0]!.id]: 'success', [jobs[1]!.id]: 'failure' });
    const runCompleted = completed.find(({ event }) => event === 'workflow_run')!.payload;
    expect(runCompleted.workflow_run).toMatchObject({
      id: run.id,
      status: 'completed',
      conclusion: 'failure',
    });
  });

  it('signs each body with X-Hub-Signature-256 that @octokit/webhooks verifies, and with SHA-1 in X-Hub-Signature', async () => {
    const inbox = await receiver();
    await repositoryHook(inbox.url);
    await newRun(['build']);
    const [ping, requested] = await inbox.waitFor(2);
    const webhooks = new Webhooks({ secret: SECRET });
    for (const webhook of [ping!, requested!]) {
      const signature = webhook.headers['x-hub-signature-256'] as string;
      expect(await webhooks.verify(webhook.rawBody, signature)).toBe(true);
      expect(await new Webhooks({ secret: 'not the secret' }).verify(webhook.rawBody, signature)).toBe(false);
      expect(await webhooks.verify(`${webhook.rawBody} `, signature)).toBe(false);
      const sha1 = createHmac('sha1', SECRET).update(webhook.rawBody).digest('hex');
      expect(webhook.headers['x-hub-signature']).toBe(`sha1=${sha1}`);
    }
  });

  it('is verified and parsed by @octokit/webhooks’ Node middleware as its docs show, end to end', async () => {
    const webhooks = new Webhooks({ secret: SECRET });
    const seen: EmitterWebhookEvent[] = [];
    let runEnded: (event: EmitterWebhookEvent<'workflow_run.completed'>) => void = () => {};
    const ended = new Promise<EmitterWebhookEvent<'workflow_run.completed'>>((resolve) => {
      runEnded = resolve;
    });
    webhooks.on('workflow_job.completed', (event) => {
      seen.push(event);
    });
    webhooks.on('workflow_run.completed', (event) => runEnded(event));
    const server = await serveHandler(
      createNodeMiddleware(webhooks, { path: '/api/github/webhooks', log: quiet }),
    );
    cleanups.push(() => server.close());
    await repositoryHook(`${server.url}/api/github/webhooks`);

    const { run, jobs } = await newRun(['build']);
    await octokit.rest.actions.cancelWorkflowRun({ ...repo, run_id: run.id });
    const event = await ended;
    expect(event.payload.workflow_run).toMatchObject({ id: run.id, conclusion: 'cancelled' });
    expect(event.payload.repository.full_name).toBe('acme/models');
    await github.deliveries.idle();
    expect(seen.map((job) => job.payload)).toEqual([
      expect.objectContaining({
        workflow_job: expect.objectContaining({ id: jobs[0]!.id, conclusion: 'cancelled' }),
      }),
    ]);
  });

  it('posts form-encoded bodies to a hook created without a content type, signed over the raw form body', async () => {
    const inbox = await receiver();
    await repositoryHook(inbox.url, { config: { url: inbox.url, secret: SECRET } });
    const [ping] = await inbox.waitFor(1);
    expect(ping!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const payload = JSON.parse(new URLSearchParams(ping!.rawBody).get('payload')!);
    expectSchema(webhookSchema('ping'), payload);
    expect(
      await new Webhooks({ secret: SECRET }).verify(
        ping!.rawBody,
        ping!.headers['x-hub-signature-256'] as string,
      ),
    ).toBe(true);
  });

  it('delivers only subscribed events, only for the hook’s repository, and to organisation hooks with the organisation as target', async () => {
    const models = await receiver();
    const datasets = await receiver();
    const org = await receiver();
    const pushOnly = await receiver();
    await repositoryHook(models.url);
    await repositoryHook(datasets.url, {}, { owner: 'acme', repo: 'datasets' });
    await repositoryHook(pushOnly.url, { events: ['push'] });
    const orgHook = await octokit.rest.orgs.createWebhook({
      org: 'acme',
      name: 'web',
      config: { url: org.url, content_type: 'json', secret: SECRET },
      events: ['workflow_run'],
    });
    cleanups.push(() => octokit.rest.orgs.deleteWebhook({ org: 'acme', hook_id: orgHook.data.id }));
    await Promise.all([models, datasets, org, pushOnly].map((inbox) => inbox.waitFor(1)));

    const { jobs } = await newRun(['build'], 'acme/datasets');
    await sandbox(`actions/jobs/${jobs[0]!.id}/complete`, { conclusion: 'success' });
    await datasets.waitFor(7);
    await org.waitFor(4);
    await github.deliveries.idle();

    expect(kinds(models.received)).toEqual(['ping']);
    expect(kinds(pushOnly.received)).toEqual(['ping']);
    expect(kinds(org.received).sort()).toEqual(
      ['ping', 'workflow_run.completed', 'workflow_run.in_progress', 'workflow_run.requested'].sort(),
    );
    for (const webhook of org.received.slice(1)) {
      expect(webhook.headers['x-github-hook-installation-target-type']).toBe('organization');
      expect(parsed(webhook).payload.organization).toMatchObject({ login: 'acme' });
      expect(parsed(webhook).payload.repository).toMatchObject({ full_name: 'acme/datasets' });
    }
  });
});

describe('GitHub stand-in: a job waiting for approval', () => {
  it('is announced as workflow_job waiting, then in_progress once it starts', async () => {
    const inbox = await receiver();
    await repositoryHook(inbox.url, { events: ['workflow_job'] });
    await inbox.waitFor(1);
    const { jobs } = await newRun([{ name: 'deploy', waiting: true }]);
    const waiting = parsed((await inbox.waitFor(2))[1]!).payload;
    expectSchema(webhookSchema('workflow_job', 'waiting'), waiting);
    expect(waiting).toMatchObject({
      action: 'waiting',
      workflow_job: { id: jobs[0]!.id, status: 'waiting' },
    });
    await sandbox(`actions/jobs/${jobs[0]!.id}/start`);
    const started = parsed((await inbox.waitFor(3))[2]!).payload;
    expect(started).toMatchObject({
      action: 'in_progress',
      workflow_job: { id: jobs[0]!.id, status: 'in_progress' },
    });
  });
});

describe('GitHub stand-in: failed deliveries and redelivery', () => {
  it('records a failed delivery once, does not retry it, and redelivers it with the same GUID when asked', async () => {
    const inbox = await receiver();
    const hook = await repositoryHook(inbox.url);
    await inbox.waitFor(1);
    inbox.respondWith(500);
    const { jobs } = await newRun(['build'], 'acme/models');
    await inbox.waitFor(5);
    await github.deliveries.idle();
    expect(inbox.received).toHaveLength(5);

    const listed = await octokit.rest.repos.listWebhookDeliveries({ ...repo, hook_id: hook.id });
    expectSchema(restSchema(`${HOOKS}/{hook_id}/deliveries`, 'get', '200'), listed.data);
    expect(listed.data).toHaveLength(5);
    const failed = listed.data.filter((delivery) => delivery.status_code === 500);
    expect(failed.map((delivery) => delivery.status)).toEqual(Array(4).fill('Invalid HTTP Response: 500'));
    const queued = failed.find(
      (delivery) => delivery.event === 'workflow_job' && delivery.action === 'queued',
    )!;

    const detail = await octokit.rest.repos.getWebhookDelivery({
      ...repo,
      hook_id: hook.id,
      delivery_id: queued.id,
    });
    expectSchema(restSchema(`${HOOKS}/{hook_id}/deliveries/{delivery_id}`, 'get', '200'), detail.data);
    expect(detail.data.request.payload).toMatchObject({
      action: 'queued',
      workflow_job: { id: jobs[0]!.id },
    });
    expect(detail.data.request.headers).toMatchObject({ 'X-GitHub-Delivery': queued.guid });

    inbox.respondWith(200);
    const redelivered = await octokit.rest.repos.redeliverWebhookDelivery({
      ...repo,
      hook_id: hook.id,
      delivery_id: queued.id,
    });
    expect(redelivered.status).toBe(202);
    const again = (await inbox.waitFor(6))[5];
    expect(parsed(again!).guid).toBe(queued.guid);
    expect(again!.rawBody).toBe(
      inbox.received.find((webhook) => parsed(webhook).guid === queued.guid)!.rawBody,
    );
    await github.deliveries.idle();
    const after = await octokit.rest.repos.listWebhookDeliveries({ ...repo, hook_id: hook.id });
    expect(after.data[0]).toMatchObject({
      guid: queued.guid,
      redelivery: true,
      status: 'OK',
      status_code: 200,
    });
  });

  it('records a refused connection as a failed delivery and shows it as the hook’s last response', async () => {
    const closed = await startWebhookReceiver();
    await closed.close();
    const hook = await repositoryHook(closed.url);
    await github.deliveries.idle();
    const listed = await octokit.rest.repos.listWebhookDeliveries({ ...repo, hook_id: hook.id });
    expect(listed.data).toEqual([
      expect.objectContaining({
        event: 'ping',
        status_code: 0,
        status: 'failed to connect to host',
        redelivery: false,
      }),
    ]);
    const fetched = await octokit.rest.repos.getWebhook({ ...repo, hook_id: hook.id });
    expect(fetched.data.last_response).toMatchObject({ code: 0, message: 'failed to connect to host' });
  });
});

describe('GitHub stand-in: delivery faults', () => {
  async function readyHook() {
    const inbox = await receiver();
    const hook = await repositoryHook(inbox.url, { events: ['workflow_job'] });
    await inbox.waitFor(1);
    const { jobs } = await newRun(['a', 'b', 'c', 'd']);
    await inbox.waitFor(9);
    await github.deliveries.idle();
    return { inbox, hook, jobs };
  }
  const completedJobIds = (webhooks: ReceivedWebhook[]) =>
    webhooks
      .map(parsed)
      .flatMap(({ payload }) =>
        payload.action === 'completed' ? [(payload.workflow_job as { id: number }).id] : [],
      );

  it('drops the next N deliveries: the receiver never gets them, GitHub records them as failed', async () => {
    const { inbox, hook, jobs } = await readyHook();
    github.deliveries.setFaults({ drop: 1 });
    await sandbox(`actions/jobs/${jobs[0]!.id}/complete`, { conclusion: 'cancelled' });
    await sandbox(`actions/jobs/${jobs[1]!.id}/complete`, { conclusion: 'success' });
    await inbox.waitFor(10);
    await github.deliveries.idle();
    expect(completedJobIds(inbox.received)).toEqual([jobs[1]!.id]);
    const listed = await octokit.rest.repos.listWebhookDeliveries({
      ...repo,
      hook_id: hook.id,
      status: 'failure',
    });
    expect(listed.data).toEqual([expect.objectContaining({ action: 'completed', status_code: 0 })]);
  });

  it('duplicates the next N deliveries with the same GUID and body', async () => {
    const { inbox, jobs } = await readyHook();
    github.deliveries.setFaults({ duplicate: 1 });
    await sandbox(`actions/jobs/${jobs[0]!.id}/complete`, { conclusion: 'failure' });
    const [first, second] = (await inbox.waitFor(11)).slice(9);
    expect(parsed(first!).guid).toBe(parsed(second!).guid);
    expect(first!.rawBody).toBe(second!.rawBody);
    expect(completedJobIds([first!, second!])).toEqual([jobs[0]!.id, jobs[0]!.id]);
  });

  it('delivers the next N deliveries newest first', async () => {
    const { inbox, jobs } = await readyHook();
    github.deliveries.setFaults({ reverse: 3 });
    for (const job of jobs.slice(0, 3))
      await sandbox(`actions/jobs/${job.id}/complete`, { conclusion: 'success' });
    const reordered = (await inbox.waitFor(12)).slice(9);
    expect(completedJobIds(reordered)).toEqual(
      jobs
        .slice(0, 3)
        .map((job) => job.id)
        .reverse(),
    );
  });

  it('holds every delivery until released, then sends them in the order asked for', async () => {
    const { inbox, jobs } = await readyHook();
    await sandbox('deliveries/hold');
    await sandbox(`actions/jobs/${jobs[0]!.id}/complete`, { conclusion: 'success' });
    await sandbox(`actions/jobs/${jobs[1]!.id}/complete`, { conclusion: 'failure' });
    await sandbox('deliveries/idle');
    expect(inbox.received).toHaveLength(9);
    await sandbox('deliveries/release', { order: 'reverse' });
    const released = (await inbox.waitFor(11)).slice(9);
    expect(completedJobIds(released)).toEqual([jobs[1]!.id, jobs[0]!.id]);
  });
});

describe('GitHub stand-in: hook management through Octokit', () => {
  it('creates, lists, reads, updates and deletes repository hooks with GitHub’s bodies, masking the secret', async () => {
    const inbox = await receiver();
    const created = await repositoryHook(inbox.url);
    expectSchema(restSchema(HOOKS, 'post', '201'), created);
    expect(created.config).toMatchObject({ url: inbox.url, content_type: 'json', secret: '********' });
    const listed = await octokit.rest.repos.listWebhooks(repo);
    expect(listed.data.map((hook) => hook.id)).toEqual([created.id]);

    const updated = await octokit.rest.repos.updateWebhook({
      ...repo,
      hook_id: created.id,
      config: { url: inbox.url, content_type: 'json' },
      add_events: ['push'],
    });
    expectSchema(restSchema(`${HOOKS}/{hook_id}`, 'patch', '200'), updated.data);
    // GitHub replaces the config whole: a secret left out is removed.
    expect(updated.data.config.secret).toBeUndefined();
    expect(updated.data.events).toEqual([...ACTIONS_EVENTS, 'push']);

    await octokit.rest.repos.deleteWebhook({ ...repo, hook_id: created.id });
    cleanups.pop();
    const gone = await octokit.rest.repos
      .getWebhook({ ...repo, hook_id: created.id })
      .catch((error) => error);
    expect(gone.status).toBe(404);
  });

  it('answers 422 for a hook without a URL and 404 for a hook of another repository or an unknown organisation', async () => {
    const invalid = await octokit.rest.repos
      .createWebhook({ ...repo, config: {} as { url: string } })
      .catch((error) => error);
    expect(invalid.status).toBe(422);
    expect(invalid.response.data.errors[0].message).toBe('Config must contain URL for webhooks');
    const inbox = await receiver();
    const hook = await repositoryHook(inbox.url);
    const elsewhere = await octokit.rest.repos
      .getWebhook({ owner: 'acme', repo: 'datasets', hook_id: hook.id })
      .catch((error) => error);
    expect(elsewhere.status).toBe(404);
    const nobody = await octokit.rest.orgs.listWebhooks({ org: 'nobody' }).catch((error) => error);
    expect(nobody.status).toBe(404);
  });
});
