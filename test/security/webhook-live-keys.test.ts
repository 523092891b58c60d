// The Done-when security line against the running service and real bound keys: a forged
// signature, a replayed delivery, a delivery naming another repository's run, the end of a job
// that has no keys, and a malformed payload each leave every live key exactly as it was (host key,
// Vault secret, status, audit trail) and get the answer GitHub and GitLab expect.
import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import {
  addGithubHook,
  addGitlabHook,
  endGitlabJob,
  GITHUB_WEBHOOK_SECRET,
  GITLAB_WEBHOOK_TOKEN,
  githubApi,
  githubDeliveries,
  gitlabHookEvents,
  type StartedJob,
  startGithubRun,
  startGitlabPipeline,
  WEBHOOK_SECRETS_ENV,
} from '../support/ci-webhooks.ts';
import { hostHasKey, type IssuedKey, type Provider, vaultMetadataStatus } from '../support/revoke-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

vi.setConfig({ testTimeout: 60_000 });

let harness: Harness;
let githubHook: number;
let gitlabHook: number;

beforeAll(async () => {
  harness = await startHarness({
    fileConfig: (standIns) => sandboxAuthConfig(standIns),
    overrides: { env: WEBHOOK_SECRETS_ENV },
  });
  githubHook = await addGithubHook(harness.standIns, harness.service.url, 'acme/models');
  gitlabHook = await addGitlabHook(harness.standIns, harness.service.url, 'acme/models');
});
afterAll(async () => {
  await harness?.close();
});

async function issue(provider: Provider, job: StartedJob): Promise<IssuedKey> {
  const answer = await harness.api('POST', '/v1/keys', {
    token: job.idToken,
    body: { provider, repository: 'acme/models', jobId: `sec-${job.jobId}`, ttlSeconds: 1_800 },
  });
  expect(answer.status, answer.text).toBe(201);
  return answer.body as IssuedKey;
}

/** Everything a delivery could have changed about a key. */
async function stateOf(key: IssuedKey) {
  const { rows } = await harness.database.pool.query<{ action: string }>(
    'SELECT action FROM audit_events WHERE key_id = $1 ORDER BY seq',
    [key.id],
  );
  const view = await harness.api('GET', `/v1/keys/${key.id}`, { token: harness.tokens.auditor! });
  return {
    status: view.body.status as string,
    onHost: hostHasKey(harness, key),
    vault: await vaultMetadataStatus(harness, key),
    audit: rows.map((row) => row.action),
  };
}
const LIVE = { status: 'active', onHost: true, vault: 200 };

const rejections = async () =>
  Number(
    (
      await harness.database.pool.query<{ count: string }>(
        "SELECT count(*) FROM audit_events WHERE action = 'webhook.rejected'",
      )
    ).rows[0]?.count,
  );

const sign = (secret: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
function postGithub(event: string, body: string, secret = GITHUB_WEBHOOK_SECRET) {
  return harness.api('POST', '/v1/webhooks/github/github', {
    token: null,
    body,
    headers: {
      'x-github-event': event,
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': sign(secret, body),
    },
  });
}
function postGitlab(body: string, token = GITLAB_WEBHOOK_TOKEN) {
  return harness.api('POST', '/v1/webhooks/gitlab/gitlab', {
    token: null,
    body,
    headers: { 'x-gitlab-event': 'Job Hook', 'x-gitlab-token': token, 'idempotency-key': randomUUID() },
  });
}
const runEnd = (repository: string, runId: number) =>
  JSON.stringify({
    action: 'completed',
    workflow_run: { id: runId, run_attempt: 1, status: 'completed', conclusion: 'cancelled' },
    repository: { full_name: repository },
  });
const jobEnd = (repository: string, jobId: number | string) =>
  JSON.stringify({
    action: 'completed',
    workflow_job: { id: jobId, run_attempt: 1, status: 'completed', conclusion: 'failure' },
    repository: { full_name: repository },
  });
const buildEnd = (project: string, buildId: number | string) =>
  JSON.stringify({
    object_kind: 'build',
    build_id: buildId,
    build_status: 'failed',
    project: { path_with_namespace: project },
  });

describe('GitHub deliveries against live keys', () => {
  let job: StartedJob;
  let key: IssuedKey;
  beforeAll(async () => {
    [job] = (await startGithubRun(harness.standIns, 'acme/models')) as [StartedJob];
    key = await issue('github', job);
  });

  it('a forged signature for the run is refused 401, audited, and changes nothing', async () => {
    const before = await stateOf(key);
    const rejected = await rejections();
    const answer = await postGithub('workflow_run', runEnd('acme/models', job.runId), 'guessed secret');
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ code: 'bad-signature' });
    expect(await rejections()).toBe(rejected + 1);
    expect(await stateOf(key)).toEqual(before);
    expect(before).toMatchObject(LIVE);
  });

  it("another repository's run and job with the same ids end nothing", async () => {
    const before = await stateOf(key);
    for (const [event, body] of [
      ['workflow_run', runEnd('acme/datasets', job.runId)],
      ['workflow_job', jobEnd('acme/datasets', job.jobId)],
    ] as const) {
      const answer = await postGithub(event, body);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ outcome: 'no-keys', revoked: 0 });
    }
    expect(await stateOf(key)).toEqual(before);
  });

  it('malformed payloads are refused 400 and change nothing', async () => {
    const before = await stateOf(key);
    for (const [event, body] of [
      ['workflow_job', '{"action":"completed","workflow_job":'],
      ['workflow_job', jobEnd('acme/models', 'not-a-number')],
      ['workflow_run', JSON.stringify({ action: 'completed', workflow_run: { id: job.runId } })],
    ] as const) {
      const answer = await postGithub(event, body);
      expect(answer.status, body).toBe(400);
      expect(answer.body).toMatchObject({ code: 'malformed-delivery' });
    }
    expect(await stateOf(key)).toEqual(before);
  });

  it('a run with no keys ends with no-keys; replaying the deliveries that ended a key acts once', async () => {
    const [keyless] = (await startGithubRun(harness.standIns, 'acme/models')) as [StartedJob];
    const api = githubApi(harness.standIns).rest.actions;
    await api.cancelWorkflowRun({ owner: 'acme', repo: 'models', run_id: keyless.runId });
    await api.cancelWorkflowRun({ owner: 'acme', repo: 'models', run_id: job.runId });
    const completed = await eventually(async () => {
      const all = await githubDeliveries(harness.standIns, 'acme/models', githubHook);
      const done = all.filter((d) => d.action === 'completed' && d.statusCode === 200);
      return done.length === 4 && done;
    });
    const outcomes = (runId: number) =>
      completed.filter((d) => d.runId === runId).map((d) => JSON.parse(d.answer).outcome);
    expect(outcomes(keyless.runId)).toEqual(['no-keys', 'no-keys']);
    // The run's and the job's end may arrive together; either may report the revoke it found asked.
    expect(outcomes(job.runId)).toContain('ended');
    const after = await eventually(async () => {
      const state = await stateOf(key);
      return state.status === 'revoked' && state;
    });

    for (const delivery of completed) {
      await githubApi(harness.standIns).rest.repos.redeliverWebhookDelivery({
        owner: 'acme',
        repo: 'models',
        hook_id: githubHook,
        delivery_id: delivery.id,
      });
    }
    const replayed = await eventually(async () => {
      const all = await githubDeliveries(harness.standIns, 'acme/models', githubHook);
      const again = all.filter((d) => d.redelivery && d.statusCode === 200);
      return again.length === 4 && again;
    });
    expect(replayed.map((d) => d.guid).sort()).toEqual(completed.map((d) => d.guid).sort());
    expect(replayed.map((d) => JSON.parse(d.answer))).toEqual(
      Array(4).fill({ outcome: 'duplicate', revoked: 0 }),
    );
    expect(await stateOf(key)).toEqual(after);
    expect(after.audit.filter((action) => action === 'key.revoke_requested')).toHaveLength(1);
  });
});

describe('GitLab deliveries against live keys', () => {
  let job: StartedJob;
  let keyless: StartedJob;
  let key: IssuedKey;
  beforeAll(async () => {
    [job, keyless] = (await startGitlabPipeline(harness.standIns, 'acme/models', ['train', 'lint'])) as [
      StartedJob,
      StartedJob,
    ];
    key = await issue('gitlab', job);
  });

  it('a wrong token is refused 401, audited, and changes nothing', async () => {
    const before = await stateOf(key);
    const rejected = await rejections();
    const answer = await postGitlab(buildEnd('acme/models', job.jobId), `${GITLAB_WEBHOOK_TOKEN}x`);
    expect(answer.status).toBe(401);
    expect(await rejections()).toBe(rejected + 1);
    expect(await stateOf(key)).toEqual(before);
    expect(before).toMatchObject(LIVE);
  });

  it("another project's job with the same id ends nothing; malformed bodies are refused 400", async () => {
    const before = await stateOf(key);
    const foreign = await postGitlab(buildEnd('acme/datasets', job.jobId));
    expect(foreign.body).toEqual({ outcome: 'no-keys', revoked: 0 });
    for (const body of ['not json', buildEnd('acme/models', 'x'), buildEnd('', job.jobId)]) {
      const answer = await postGitlab(body);
      expect(answer.status, body).toBe(400);
      expect(answer.body).toMatchObject({ code: 'malformed-delivery' });
    }
    expect(await stateOf(key)).toEqual(before);
  });

  it('a job with no keys ends nothing; the resent end of the keyed job acts once', async () => {
    await endGitlabJob(harness.standIns, keyless.jobId, 'failed');
    const keylessEnd = await eventually(async () => {
      const logs = await gitlabHookEvents(harness.standIns, 'acme/models', gitlabHook);
      return logs.find((log) => log.data.build_id === keyless.jobId && log.statusCode === 200);
    });
    expect(JSON.parse(keylessEnd.answer)).toEqual({ outcome: 'no-keys', revoked: 0 });
    expect(await stateOf(key)).toMatchObject(LIVE);

    await endGitlabJob(harness.standIns, job.jobId, 'failed');
    // Both jobs have ended, so the pipeline has too: its Pipeline Hook and the job's Job Hook
    // arrive together, and whichever the service reads first ends the key; the other finds none.
    const ofKeyedJob = (log: Awaited<ReturnType<typeof gitlabHookEvents>>[number]) =>
      log.data.build_id === job.jobId ||
      (log.data.object_kind === 'pipeline' && log.data.object_attributes?.id === job.runId);
    const answered = await eventually(async () => {
      const logs = await gitlabHookEvents(harness.standIns, 'acme/models', gitlabHook);
      const mine = logs.filter((log) => ofKeyedJob(log) && log.statusCode === 200);
      return mine.length === 2 && mine;
    });
    expect(answered.map((log) => JSON.parse(log.answer)).sort((a, b) => b.revoked - a.revoked)).toEqual([
      { outcome: 'ended', revoked: 1 },
      { outcome: 'no-keys', revoked: 0 },
    ]);
    const ended = answered.find((log) => log.answer.includes('ended'))!;
    const after = await eventually(async () => {
      const state = await stateOf(key);
      return state.status === 'revoked' && state;
    });
    const resend = await fetch(
      `${harness.standIns.gitlab.api.url}/projects/acme%2Fmodels/hooks/${gitlabHook}/events/${ended.id}/resend`,
      { method: 'POST', headers: { 'PRIVATE-TOKEN': harness.standIns.gitlab.token } },
    );
    expect(await resend.json()).toEqual({ response_status: 200 });
    const logs = await gitlabHookEvents(harness.standIns, 'acme/models', gitlabHook);
    expect(JSON.parse(logs.at(-1)!.answer)).toEqual({ outcome: 'duplicate', revoked: 0 });
    expect(await stateOf(key)).toEqual(after);
    expect(after.audit.filter((action) => action === 'key.revoke_requested')).toHaveLength(1);
  });
});
