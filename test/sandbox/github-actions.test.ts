import { Octokit } from '@octokit/rest';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { type OidcStandIn, startOidcStandIn } from '../../sandbox/oidc/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import { expectSchema, restSchema, undocumentedFields } from '../support/github-schemas.ts';

const TOKEN = 'ghp_sandboxActionsToken';
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
const repo = { owner: 'acme', repo: 'models' };
const RUN = '/repos/{owner}/{repo}/actions/runs/{run_id}';
const JOB = '/repos/{owner}/{repo}/actions/jobs/{job_id}';

type Described = {
  run: { id: number; run_attempt: number };
  jobs: Array<{ id: number; name: string; status: string }>;
  id_tokens: Record<string, string>;
};

let state: HostState;
let github: GithubStandIn;
let oidc: OidcStandIn;
let octokit: Octokit;

async function sandbox<T = Described>(
  path: string,
  body: unknown = {},
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${github.url}/_sandbox/actions/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

async function newRun(jobs: unknown[] = ['build', 'test'], extra: Record<string, unknown> = {}) {
  const created = await sandbox('runs', { repository: 'acme/models', jobs, ...extra });
  expect(created.status).toBe(201);
  return created.body;
}

beforeAll(async () => {
  state = createHostState('github');
  state.addRepository('acme/models', '/nonexistent/models.git');
  state.addRepository('acme/datasets', '/nonexistent/datasets.git');
  oidc = await startOidcStandIn();
  github = await startGithubStandIn({
    state,
    tokens: [TOKEN],
    sshHostKeys: () => [],
    mintIdToken: (claims) => oidc.mint('github-actions', claims),
  });
  octokit = new Octokit({ auth: TOKEN, baseUrl: github.url, log: quiet });
});
afterAll(async () => {
  await github.close();
  await oidc.close();
});

describe('GitHub stand-in: workflow runs and jobs through Octokit', () => {
  it('serves a run, its attempt and its jobs with every field GitHub documents and nothing else', async () => {
    const { run, jobs } = await newRun();
    const fetched = await octokit.rest.actions.getWorkflowRun({ ...repo, run_id: run.id });
    expectSchema(restSchema(RUN, 'get', '200'), fetched.data);
    expect(undocumentedFields(restSchema(RUN, 'get', '200'), fetched.data)).toEqual([]);
    expect(fetched.data).toMatchObject({
      id: run.id,
      status: 'in_progress',
      conclusion: null,
      run_attempt: 1,
    });

    const attempt = await octokit.rest.actions.getWorkflowRunAttempt({
      ...repo,
      run_id: run.id,
      attempt_number: 1,
    });
    expectSchema(restSchema(`${RUN}/attempts/{attempt_number}`, 'get', '200'), attempt.data);

    const listed = await octokit.rest.actions.listJobsForWorkflowRun({ ...repo, run_id: run.id });
    expectSchema(restSchema(`${RUN}/jobs`, 'get', '200'), listed.data);
    expect(listed.data.total_count).toBe(2);
    expect(listed.data.jobs.map((job) => job.name)).toEqual(['build', 'test']);

    const job = await octokit.rest.actions.getJobForWorkflowRun({ ...repo, job_id: jobs[0]!.id });
    expectSchema(restSchema(JOB, 'get', '200'), job.data);
    expect(undocumentedFields(restSchema(JOB, 'get', '200'), job.data)).toEqual([]);
    expect(job.data).toMatchObject({
      run_id: run.id,
      run_attempt: 1,
      status: 'in_progress',
      conclusion: null,
    });
    expect(job.data.check_run_url).toMatch(new RegExp(`/check-runs/${jobs[0]!.id}$`));
  });

  it('ends a run with the most severe conclusion of its jobs once every job has ended', async () => {
    const { run, jobs } = await newRun(['build', 'test', 'lint']);
    await sandbox(`jobs/${jobs[0]!.id}/complete`, { conclusion: 'success' });
    await sandbox(`jobs/${jobs[1]!.id}/complete`, { conclusion: 'failure' });
    const midway = await octokit.rest.actions.getWorkflowRun({ ...repo, run_id: run.id });
    expect(midway.data).toMatchObject({ status: 'in_progress', conclusion: null });

    await sandbox(`jobs/${jobs[2]!.id}/complete`, { conclusion: 'skipped' });
    const done = await octokit.rest.actions.getWorkflowRun({ ...repo, run_id: run.id });
    expect(done.data).toMatchObject({ status: 'completed', conclusion: 'failure' });
    const job = await octokit.rest.actions.getJobForWorkflowRun({ ...repo, job_id: jobs[1]!.id });
    expect(job.data).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(job.data.completed_at).not.toBeNull();
  });

  it('cancels a run through the REST route: 202, then every unfinished job and the run end cancelled', async () => {
    const { run, jobs } = await newRun(['build', { name: 'deploy', waiting: true }], { start: true });
    await sandbox(`jobs/${jobs[0]!.id}/complete`, { conclusion: 'success' });

    const cancelled = await octokit.rest.actions.cancelWorkflowRun({ ...repo, run_id: run.id });
    expect(cancelled.status).toBe(202);
    const listed = await octokit.rest.actions.listJobsForWorkflowRun({ ...repo, run_id: run.id });
    expect(listed.data.jobs.map((job) => [job.name, job.conclusion])).toEqual([
      ['build', 'success'],
      ['deploy', 'cancelled'],
    ]);
    const fetched = await octokit.rest.actions.getWorkflowRun({ ...repo, run_id: run.id });
    expect(fetched.data).toMatchObject({ status: 'completed', conclusion: 'cancelled' });

    const again = await octokit.rest.actions
      .cancelWorkflowRun({ ...repo, run_id: run.id })
      .catch((error) => error);
    expect(again.status).toBe(409);
    expect(again.response.data.message).toBe('Cannot cancel a workflow run that is completed.');
  });

  it('re-runs a completed run as a new attempt with new jobs, keeping the earlier attempt readable', async () => {
    const { run, jobs } = await newRun(['build']);
    const running = await octokit.rest.actions
      .reRunWorkflow({ ...repo, run_id: run.id })
      .catch((error) => error);
    expect(running.status).toBe(403);

    await sandbox(`runs/${run.id}/complete`, { conclusion: 'failure' });
    const rerun = await octokit.rest.actions.reRunWorkflow({ ...repo, run_id: run.id });
    expect(rerun.status).toBe(201);

    const latest = await octokit.rest.actions.getWorkflowRun({ ...repo, run_id: run.id });
    expect(latest.data).toMatchObject({ run_attempt: 2, status: 'in_progress', conclusion: null });
    expect(latest.data.previous_attempt_url).toMatch(new RegExp(`/actions/runs/${run.id}/attempts/1$`));
    const first = await octokit.rest.actions.getWorkflowRunAttempt({
      ...repo,
      run_id: run.id,
      attempt_number: 1,
    });
    expect(first.data).toMatchObject({ run_attempt: 1, conclusion: 'failure' });

    const second = await octokit.rest.actions.listJobsForWorkflowRunAttempt({
      ...repo,
      run_id: run.id,
      attempt_number: 2,
    });
    expect(second.data.jobs).toHaveLength(1);
    expect(second.data.jobs[0]!.id).not.toBe(jobs[0]!.id);
    expect(second.data.jobs[0]!.run_attempt).toBe(2);
    const all = await octokit.rest.actions.listJobsForWorkflowRun({ ...repo, run_id: run.id, filter: 'all' });
    expect(all.data.total_count).toBe(2);
  });

  it('answers 404 for a run or job of another repository, an unknown attempt and an unknown run; 401 without a token', async () => {
    const { run, jobs } = await newRun(['build']);
    const other = { owner: 'acme', repo: 'datasets' };
    const statusOf = (request: Promise<unknown>) =>
      request.then(
        () => 200,
        (error: { status: number }) => error.status,
      );
    expect(await statusOf(octokit.rest.actions.getWorkflowRun({ ...other, run_id: run.id }))).toBe(404);
    expect(await statusOf(octokit.rest.actions.getJobForWorkflowRun({ ...other, job_id: jobs[0]!.id }))).toBe(
      404,
    );
    expect(await statusOf(octokit.rest.actions.cancelWorkflowRun({ ...other, run_id: run.id }))).toBe(404);
    expect(
      await statusOf(
        octokit.rest.actions.getWorkflowRunAttempt({ ...repo, run_id: run.id, attempt_number: 2 }),
      ),
    ).toBe(404);
    expect(await statusOf(octokit.rest.actions.getWorkflowRun({ ...repo, run_id: 1 }))).toBe(404);
    const anonymous = new Octokit({ baseUrl: github.url, log: quiet });
    expect(await statusOf(anonymous.rest.actions.getWorkflowRun({ ...repo, run_id: run.id }))).toBe(401);
  });

  it('refuses a conclusion GitHub does not know and an unknown job on the /_sandbox routes', async () => {
    const { jobs } = await newRun(['build']);
    const bad = await sandbox<{ message: string }>(`jobs/${jobs[0]!.id}/complete`, {
      conclusion: 'exploded',
    });
    expect(bad.status).toBe(400);
    const unknown = await sandbox<{ message: string }>('jobs/42/complete', { conclusion: 'success' });
    expect(unknown.status).toBe(404);
    await sandbox(`jobs/${jobs[0]!.id}/complete`, { conclusion: 'success' });
    const twice = await sandbox<{ message: string }>(`jobs/${jobs[0]!.id}/complete`, {
      conclusion: 'failure',
    });
    expect(twice.status).toBe(409);
  });
});

describe('GitHub stand-in: OIDC tokens for the jobs of a run', () => {
  async function verified(token: string) {
    const keys = createRemoteJWKSet(new URL(oidc.jwksUri));
    const { payload } = await jwtVerify(token, keys, { issuer: oidc.issuer, audience: 'deploykey-rotator' });
    return payload;
  }

  it('hands each job a token whose run_id, run_attempt and check_run_id name that job on the stand-in', async () => {
    const { run, jobs, id_tokens } = await newRun(['build', 'test'], { ref: 'refs/heads/release' });
    const repository = state.findRepository('acme/models')!;
    for (const job of jobs) {
      const claims = await verified(id_tokens[job.id]!);
      expect(claims).toMatchObject({
        repository: 'acme/models',
        repository_id: String(repository.id),
        repository_owner: 'acme',
        run_id: String(run.id),
        run_attempt: '1',
        check_run_id: String(job.id),
        ref: 'refs/heads/release',
        sub: 'repo:acme/models:ref:refs/heads/release',
        workflow_ref: 'acme/models/.github/workflows/ci.yml@refs/heads/release',
      });
      const fetched = await octokit.rest.actions.getJobForWorkflowRun({
        ...repo,
        job_id: Number(claims.check_run_id),
      });
      expect(fetched.data.run_id).toBe(Number(claims.run_id));
    }
  });

  it('gives a re-run attempt tokens with the next run_attempt and the new jobs’ check_run_id', async () => {
    const { run } = await newRun(['build']);
    await sandbox(`runs/${run.id}/complete`, { conclusion: 'cancelled' });
    const rerun = await sandbox(`runs/${run.id}/rerun`);
    expect(rerun.status).toBe(201);
    const job = rerun.body.jobs[0]!;
    const claims = await verified(rerun.body.id_tokens[job.id]!);
    expect(claims).toMatchObject({ run_id: String(run.id), run_attempt: '2', check_run_id: String(job.id) });
  });
});
