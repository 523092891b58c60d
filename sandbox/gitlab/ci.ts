// GitLab CI on the stand-in: the REST routes a client reads pipelines and jobs with
// (`/projects/:id/jobs/:job_id`, `/projects/:id/pipelines/:pipeline_id` and its jobs, cancel),
// the `/_sandbox/ci/*` routes that drive a pipeline's life, and the Job and Pipeline webhooks
// each change sends.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import {
  jobBody,
  jobEventBody,
  namespaceOf,
  pipelineBody,
  pipelineEventBody,
  stableId,
} from './ci-bodies.ts';
import {
  CiError,
  type CiState,
  createCiState,
  FINAL_JOB_STATUSES,
  type FinalJobStatus,
  type GitlabJob,
  type GitlabPipeline,
  type NewPipeline,
} from './ci-state.ts';
import { coerceInteger } from './deploy-keys.ts';
import type { GitlabHooks } from './hooks.ts';
import { pageOf } from './routes.ts';

/** Mints a GitLab CI id token carrying these claims (the OIDC stand-in's `mint`). */
export type IdTokenMinter = (claims: Record<string, unknown>) => Promise<string>;

const API = '/api/v4';
type Params = { id: string; job_id?: string; pipeline_id?: string };

/** The claims GitLab puts in this job's id token (`id_tokens:` in .gitlab-ci.yml). */
export function jobClaims(
  project: SandboxRepository,
  pipeline: GitlabPipeline,
  job: GitlabJob,
): Record<string, string> {
  const namespace = namespaceOf(project);
  return {
    project_path: project.path,
    project_id: String(project.id),
    namespace_path: namespace,
    namespace_id: String(stableId(`group:${namespace}`)),
    job_project_path: project.path,
    job_project_id: String(project.id),
    job_namespace_path: namespace,
    job_namespace_id: String(stableId(`group:${namespace}`)),
    user_login: pipeline.user,
    user_id: String(stableId(`user:${pipeline.user}`)),
    pipeline_id: String(pipeline.id),
    pipeline_source: pipeline.source,
    job_id: String(job.id),
    ref: pipeline.ref,
    ref_type: pipeline.tag ? 'tag' : 'branch',
    ref_path: `refs/${pipeline.tag ? 'tags' : 'heads'}/${pipeline.ref}`,
    sha: pipeline.sha,
  };
}

export function registerGitlabCi(
  app: FastifyInstance,
  deps: {
    state: HostState;
    hooks: GitlabHooks;
    origin: () => string;
    /** The stand-in's own `authenticate!` + `user_project`: answers 401/404 itself and returns undefined. */
    resolveProject(request: FastifyRequest, reply: FastifyReply): SandboxRepository | undefined;
    mintIdToken?: IdTokenMinter | undefined;
  },
): CiState {
  const { state } = deps;
  const ci = createCiState(state);

  ci.subscribe((event) => {
    const project = state.findRepository(event.pipeline.projectId);
    if (!project) return;
    const web = deps.origin();
    if (event.kind === 'job') {
      deps.hooks.emit(project, 'job_events', jobEventBody(web, project, event.pipeline, event.job));
    } else {
      deps.hooks.emit(project, 'pipeline_events', pipelineEventBody(web, project, event.pipeline));
    }
  });

  const jobIn = (project: SandboxRepository, raw: string | undefined) => {
    const found = ci.findJob(coerceInteger(raw) ?? -1);
    return found && found.pipeline.projectId === project.id ? found : undefined;
  };
  const pipelineIn = (project: SandboxRepository, raw: string | undefined) =>
    ci.getPipeline(project.id, coerceInteger(raw) ?? -1);

  app.get<{ Params: Params }>(`${API}/projects/:id/jobs/:job_id`, async (request, reply) => {
    const project = deps.resolveProject(request, reply);
    if (!project) return reply;
    const found = jobIn(project, request.params.job_id);
    if (!found) return reply.code(404).send({ message: '404 Job Not Found' });
    return jobBody(deps.origin(), project, found.pipeline, found.job);
  });

  app.post<{ Params: Params }>(`${API}/projects/:id/jobs/:job_id/cancel`, async (request, reply) => {
    const project = deps.resolveProject(request, reply);
    if (!project) return reply;
    const found = jobIn(project, request.params.job_id);
    if (!found) return reply.code(404).send({ message: '404 Job Not Found' });
    ci.cancelJob(found.job.id);
    return reply.code(201).send(jobBody(deps.origin(), project, found.pipeline, found.job));
  });

  app.get<{ Params: Params }>(`${API}/projects/:id/pipelines/:pipeline_id`, async (request, reply) => {
    const project = deps.resolveProject(request, reply);
    if (!project) return reply;
    const pipeline = pipelineIn(project, request.params.pipeline_id);
    if (!pipeline) return reply.code(404).send({ message: '404 Not found' });
    return pipelineBody(deps.origin(), project, pipeline);
  });

  app.post<{ Params: Params }>(
    `${API}/projects/:id/pipelines/:pipeline_id/cancel`,
    async (request, reply) => {
      const project = deps.resolveProject(request, reply);
      if (!project) return reply;
      const pipeline = pipelineIn(project, request.params.pipeline_id);
      if (!pipeline) return reply.code(404).send({ message: '404 Not found' });
      ci.cancelPipeline(pipeline.id);
      return reply.code(201).send(pipelineBody(deps.origin(), project, pipeline));
    },
  );

  app.get<{ Params: Params; Querystring: Record<string, unknown> }>(
    `${API}/projects/:id/pipelines/:pipeline_id/jobs`,
    async (request, reply) => {
      const project = deps.resolveProject(request, reply);
      if (!project) return reply;
      const pipeline = pipelineIn(project, request.params.pipeline_id);
      if (!pipeline) return reply.code(404).send({ message: '404 Not found' });
      // `scope` (one status or `scope[]` several) keeps only jobs in those statuses.
      const raw = request.query.scope ?? request.query['scope[]'];
      const scopes = raw === undefined ? undefined : ([] as unknown[]).concat(raw).map(String);
      const jobs = pipeline.jobs.filter((job) => !scopes || scopes.includes(job.status));
      const page = pageOf(deps.origin(), request, jobs, {
        id: request.params.id,
        pipeline_id: String(pipeline.id),
      });
      if ('error' in page) return reply.code(400).send({ error: page.error });
      return reply
        .headers(page.headers)
        .send(page.items.map((job) => jobBody(deps.origin(), project, pipeline, job)));
    },
  );

  registerSandboxCi(app, { ...deps, ci });
  return ci;
}

function registerSandboxCi(
  app: FastifyInstance,
  deps: { state: HostState; ci: CiState; origin: () => string; mintIdToken?: IdTokenMinter | undefined },
) {
  const { ci } = deps;
  const fail = (reply: FastifyReply, status: number, message: string) => reply.code(status).send({ message });
  const guarded = async (reply: FastifyReply, work: () => unknown) => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof CiError) return fail(reply, error.status, error.message);
      throw error;
    }
  };
  const idOf = (raw: string) => coerceInteger(raw) ?? -1;

  const described = async (pipeline: GitlabPipeline) => {
    const project = deps.state.findRepository(pipeline.projectId)!;
    const idTokens: Record<string, string> = {};
    if (deps.mintIdToken) {
      for (const job of pipeline.jobs)
        idTokens[job.id] = await deps.mintIdToken(jobClaims(project, pipeline, job));
    }
    return {
      pipeline: pipelineBody(deps.origin(), project, pipeline),
      jobs: pipeline.jobs.map((job) => jobBody(deps.origin(), project, pipeline, job)),
      id_tokens: idTokens,
    };
  };
  const jobState = (job: GitlabJob) => ({
    id: job.id,
    status: job.status,
    failure_reason: job.failureReason,
  });

  app.post('/_sandbox/ci/pipelines', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (typeof body.project !== 'string') return fail(reply, 400, 'project is required');
    const jobs = Array.isArray(body.jobs)
      ? body.jobs.map((entry) => (typeof entry === 'string' ? { name: entry } : (entry as { name: string })))
      : undefined;
    if (jobs?.some((job) => typeof job?.name !== 'string' || job.name === '')) {
      return fail(reply, 400, 'jobs are names or {name, stage} objects');
    }
    const input: NewPipeline = {
      project: body.project,
      ref: body.ref as string | undefined,
      source: body.source as string | undefined,
      user: body.user as string | undefined,
      jobs,
      start: body.start !== false,
    };
    return guarded(reply, async () => reply.code(201).send(await described(ci.createPipeline(input))));
  });

  app.post<{ Params: { job_id: string } }>('/_sandbox/ci/jobs/:job_id/start', async (request, reply) =>
    guarded(reply, () => jobState(ci.startJob(idOf(request.params.job_id)))),
  );
  app.post<{ Params: { job_id: string } }>('/_sandbox/ci/jobs/:job_id/finish', async (request, reply) => {
    const body = (request.body ?? {}) as { status?: string; failure_reason?: string };
    if (!FINAL_JOB_STATUSES.includes(body.status as FinalJobStatus)) {
      return fail(reply, 400, `status must be one of ${FINAL_JOB_STATUSES.join(', ')}`);
    }
    return guarded(reply, () =>
      jobState(ci.finishJob(idOf(request.params.job_id), body.status as FinalJobStatus, body.failure_reason)),
    );
  });
  app.post<{ Params: { job_id: string } }>('/_sandbox/ci/jobs/:job_id/time-out', async (request, reply) =>
    guarded(reply, () =>
      jobState(ci.finishJob(idOf(request.params.job_id), 'failed', 'job_execution_timeout')),
    ),
  );
  app.post<{ Params: { pipeline_id: string } }>(
    '/_sandbox/ci/pipelines/:pipeline_id/cancel',
    async (request, reply) =>
      guarded(reply, async () => described(ci.cancelPipeline(idOf(request.params.pipeline_id)))),
  );
}
