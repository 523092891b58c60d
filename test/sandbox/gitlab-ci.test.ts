import { type GitbeakerRequestError, Gitlab } from '@gitbeaker/rest';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GitlabStandIn, startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import { type OidcStandIn, startOidcStandIn } from '../../sandbox/oidc/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';

const TOKEN = 'glpat-sandbox-ci-token';

type Described = {
  pipeline: { id: number; status: string };
  jobs: Array<{ id: number; name: string; status: string }>;
  id_tokens: Record<string, string>;
};

let state: HostState;
let gitlab: GitlabStandIn;
let oidc: OidcStandIn;
let origin: string;
let api: InstanceType<typeof Gitlab>;
let projectId: number;

async function sandbox<T = Described>(
  path: string,
  body: unknown = {},
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${origin}/_sandbox/ci/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

async function newPipeline(jobs: unknown[] = ['build', 'test'], extra: Record<string, unknown> = {}) {
  const created = await sandbox('pipelines', { project: 'acme/models', jobs, ...extra });
  expect(created.status).toBe(201);
  return created.body;
}

const statusOf = (request: Promise<unknown>) =>
  request.then(
    () => 200,
    (error: GitbeakerRequestError) => (error.cause as { response: Response }).response.status,
  );

beforeAll(async () => {
  state = createHostState('gitlab');
  projectId = state.addRepository('acme/models', '/nonexistent/models.git').id;
  state.addRepository('acme/ml/datasets', '/nonexistent/datasets.git');
  oidc = await startOidcStandIn();
  gitlab = await startGitlabStandIn({
    state,
    tokens: [TOKEN],
    mintIdToken: (claims) => oidc.mint('gitlab-ci', claims),
  });
  origin = new URL(gitlab.url).origin;
  api = new Gitlab({ host: origin, token: TOKEN });
});
afterAll(async () => {
  await gitlab.close();
  await oidc.close();
});

describe('GitLab stand-in: pipelines and jobs through @gitbeaker/rest', () => {
  it('serves a job, its pipeline and the pipeline’s jobs as GitLab’s API entities', async () => {
    const { pipeline, jobs } = await newPipeline();
    const job = await api.Jobs.show(projectId, jobs[0]!.id);
    expect(job).toMatchObject({
      id: jobs[0]!.id,
      name: 'build',
      status: 'running',
      pipeline: { id: pipeline.id, project_id: projectId, status: 'running' },
      web_url: `${origin}/acme/models/-/jobs/${jobs[0]!.id}`,
    });
    expect(job).not.toHaveProperty('failure_reason');
    expect(Object.keys(job).sort()).toEqual(
      [
        'id',
        'status',
        'stage',
        'name',
        'ref',
        'tag',
        'coverage',
        'allow_failure',
        'created_at',
        'started_at',
        'finished_at',
        'erased_at',
        'duration',
        'queued_duration',
        'user',
        'commit',
        'pipeline',
        'web_url',
        'project',
        'artifacts',
        'runner',
        'runner_manager',
        'artifacts_expire_at',
        'archived',
        'tag_list',
      ].sort(),
    );

    const fetched = await api.Pipelines.show(projectId, pipeline.id);
    expect(fetched).toMatchObject({
      id: pipeline.id,
      iid: expect.any(Number),
      status: 'running',
      ref: 'main',
    });
    const listed = await api.Jobs.all(projectId, { pipelineId: pipeline.id });
    expect(listed.map((each) => each.name)).toEqual(['build', 'test']);
  });

  it("pages a pipeline's jobs as GitLab does: following x-next-page to the end lists every job once", async () => {
    const names = ['lint', 'build', 'unit', 'integration', 'package'];
    const pipeline = await newPipeline(names);
    const seen: string[] = [];
    const pagesSeen: string[] = [];
    let next = '1';
    while (next !== '') {
      const url = `${origin}/api/v4/projects/${projectId}/pipelines/${pipeline.pipeline.id}/jobs?per_page=2&page=${next}`;
      const response = await fetch(url, { headers: { 'private-token': TOKEN } });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-total')).toBe('5');
      expect(response.headers.get('x-total-pages')).toBe('3');
      expect(response.headers.get('x-per-page')).toBe('2');
      pagesSeen.push(response.headers.get('x-page') ?? '');
      seen.push(...((await response.json()) as Array<{ name: string }>).map((job) => job.name));
      next = response.headers.get('x-next-page') ?? '';
    }
    expect(pagesSeen).toEqual(['1', '2', '3']);
    expect(seen).toEqual(names);
  });

  it('fails a job that runs too long with failure_reason job_execution_timeout, and fails its pipeline', async () => {
    const { pipeline, jobs } = await newPipeline();
    await sandbox(`jobs/${jobs[0]!.id}/finish`, { status: 'success' });
    const timedOut = await sandbox<{ status: string; failure_reason: string }>(
      `jobs/${jobs[1]!.id}/time-out`,
    );
    expect(timedOut.body).toMatchObject({ status: 'failed', failure_reason: 'job_execution_timeout' });

    const job = await api.Jobs.show(projectId, jobs[1]!.id);
    expect(job).toMatchObject({ status: 'failed', failure_reason: 'job_execution_timeout' });
    expect(job.finished_at).not.toBeNull();
    const fetched = await api.Pipelines.show(projectId, pipeline.id);
    expect(fetched).toMatchObject({ status: 'failed', finished_at: expect.any(String) });
    const failed = await api.Jobs.all(projectId, { pipelineId: pipeline.id, scope: 'failed' });
    expect(failed.map((each) => each.id)).toEqual([jobs[1]!.id]);
  });

  it('cancels a pipeline through the REST route: every unfinished job and the pipeline end canceled', async () => {
    const { pipeline, jobs } = await newPipeline(['build', 'test', 'deploy']);
    await sandbox(`jobs/${jobs[0]!.id}/finish`, { status: 'success' });
    const cancelled = await api.Pipelines.cancel(projectId, pipeline.id);
    expect(cancelled).toMatchObject({ id: pipeline.id, status: 'canceled' });
    const listed = await api.Jobs.all(projectId, { pipelineId: pipeline.id });
    expect(listed.map((each) => [each.name, each.status])).toEqual([
      ['build', 'success'],
      ['test', 'canceled'],
      ['deploy', 'canceled'],
    ]);
  });

  it('cancels a single job, and the pipeline ends once its other jobs have', async () => {
    const { pipeline, jobs } = await newPipeline(['build', 'test']);
    const job = await api.Jobs.cancel(projectId, jobs[0]!.id);
    expect(job).toMatchObject({ status: 'canceled' });
    expect((await api.Pipelines.show(projectId, pipeline.id)).status).toBe('running');
    await sandbox(`jobs/${jobs[1]!.id}/finish`, { status: 'success' });
    expect((await api.Pipelines.show(projectId, pipeline.id)).status).toBe('canceled');
  });

  it('answers 404 for a job of another project or an unknown pipeline, 401 without a token', async () => {
    const { jobs } = await newPipeline(['build']);
    expect(await statusOf(api.Jobs.show('acme/ml/datasets', jobs[0]!.id))).toBe(404);
    expect(await statusOf(api.Pipelines.show(projectId, 1))).toBe(404);
    expect(await statusOf(api.Jobs.show('acme/nothing', jobs[0]!.id))).toBe(404);
    const anonymous = new Gitlab({ host: origin, token: 'glpat-wrong' });
    expect(await statusOf(anonymous.Jobs.show(projectId, jobs[0]!.id))).toBe(401);
  });

  it('refuses an unknown final status and a second ending on the /_sandbox routes', async () => {
    const { jobs } = await newPipeline(['build']);
    expect((await sandbox(`jobs/${jobs[0]!.id}/finish`, { status: 'exploded' })).status).toBe(400);
    expect((await sandbox(`jobs/${jobs[0]!.id}/finish`, { status: 'failed' })).status).toBe(200);
    expect((await sandbox(`jobs/${jobs[0]!.id}/finish`, { status: 'success' })).status).toBe(400);
    expect((await sandbox('jobs/7/finish', { status: 'success' })).status).toBe(404);
  });
});

describe('GitLab stand-in: id tokens for the jobs of a pipeline', () => {
  it('hands each job an id token whose job_id, pipeline_id and project path name that job on the stand-in', async () => {
    const { pipeline, jobs, id_tokens } = await newPipeline(['build', 'test'], { ref: 'release' });
    const keys = createRemoteJWKSet(new URL(oidc.jwksUri));
    for (const job of jobs) {
      const { payload } = await jwtVerify(id_tokens[job.id]!, keys, {
        issuer: oidc.issuer,
        audience: 'deploykey-rotator',
      });
      expect(payload).toMatchObject({
        job_id: String(job.id),
        pipeline_id: String(pipeline.id),
        project_path: 'acme/models',
        project_id: String(projectId),
        namespace_path: 'acme',
        ref: 'release',
        ref_path: 'refs/heads/release',
        sub: 'project_path:acme/models:ref_type:branch:ref:release',
      });
      const fetched = await api.Jobs.show(payload.project_path as string, Number(payload.job_id));
      expect(fetched.pipeline.id).toBe(Number(payload.pipeline_id));
    }
  });
});
