// GitHub Actions on the stand-in: the REST routes a client reads runs and jobs with
// (`/repos/{o}/{r}/actions/runs/{id}`, its attempts and jobs, `/actions/jobs/{id}`, cancel, re-run),
// the `/_sandbox/actions/*` routes that drive a run's life, and the `workflow_run` /
// `workflow_job` webhooks each change sends.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import {
  jobBody,
  type Origins,
  organizationBody,
  ownerOf,
  repositoryBody,
  runBody,
  stableId,
  userBody,
  workflowBody,
} from './actions-bodies.ts';
import {
  ActionsError,
  type ActionsEvent,
  type ActionsState,
  CONCLUSIONS,
  type Conclusion,
  createActionsState,
  type JobSpec,
  latestAttempt,
  type SandboxJob,
  type SandboxRun,
} from './actions-state.ts';
import type { GithubHooks } from './hooks.ts';
import { errorBody, linkHeader, REST_DOCS, readPage } from './responses.ts';

/** Mints a GitHub Actions OIDC token carrying these claims (the OIDC stand-in's `mint`). */
export type IdTokenMinter = (claims: Record<string, unknown>) => Promise<string>;

type RunParams = { owner: string; repo: string; run_id: string; attempt_number?: string };
type JobParams = { owner: string; repo: string; job_id: string };

const DOCS = {
  runs: `${REST_DOCS}/actions/workflow-runs`,
  jobs: `${REST_DOCS}/actions/workflow-jobs`,
};

/** The claims GitHub puts in the OIDC token of this job (`check_run_id` is the job's id). */
export function jobClaims(
  repository: SandboxRepository,
  run: SandboxRun,
  job: SandboxJob,
): Record<string, string> {
  const owner = ownerOf(repository);
  const workflowRef = `${repository.path}/${run.workflowPath}@${run.ref}`;
  return {
    repository: repository.path,
    repository_id: String(repository.id),
    repository_owner: owner,
    repository_owner_id: String(stableId(`user:${owner}`)),
    ref: run.ref,
    sha: run.headSha,
    event_name: run.event,
    actor: run.actor,
    actor_id: String(stableId(`user:${run.actor}`)),
    workflow: run.workflowName,
    workflow_ref: workflowRef,
    workflow_sha: run.headSha,
    job_workflow_ref: workflowRef,
    job_workflow_sha: run.headSha,
    run_id: String(run.id),
    run_number: String(run.runNumber),
    run_attempt: String(job.attempt),
    check_run_id: String(job.id),
  };
}

function payloadFor(origins: Origins, repository: SandboxRepository, event: ActionsEvent, createdAt: Date) {
  const common = {
    repository: repositoryBody(origins, repository, createdAt),
    organization: organizationBody(origins, ownerOf(repository)),
    sender: userBody(origins, event.attempt.triggeringActor),
  };
  if (event.name === 'workflow_job') {
    return {
      action: event.action,
      workflow_job: jobBody(origins, repository, event.run, event.job),
      ...common,
    };
  }
  return {
    action: event.action,
    workflow_run: runBody(origins, repository, event.run, event.attempt),
    workflow: workflowBody(origins, repository, event.run),
    ...common,
  };
}

const toJobSpec = (entry: unknown): JobSpec | undefined => {
  if (typeof entry === 'string' && entry !== '') return { name: entry };
  const spec = entry as JobSpec | null;
  return typeof spec?.name === 'string' && spec.name !== '' ? spec : undefined;
};

export function registerGithubActions(
  app: FastifyInstance,
  deps: { state: HostState; hooks: GithubHooks; origins: () => Origins; mintIdToken?: IdTokenMinter },
): ActionsState {
  const { state } = deps;
  const actions = createActionsState(state);
  const repositoriesCreatedAt = new Date();

  actions.subscribe((event) => {
    const repository = state.findRepository(event.run.repositoryId);
    if (!repository) return;
    const payload = payloadFor(deps.origins(), repository, event, repositoriesCreatedAt);
    deps.hooks.emit(repository, event.name, () => payload);
  });

  const repositoryOf = (params: { owner: string; repo: string }) =>
    state.findRepository(`${params.owner}/${params.repo}`);
  const notFound = (reply: FastifyReply, docs: string) =>
    reply.code(404).send(errorBody(404, 'Not Found', docs));
  const attemptOf = (run: SandboxRun, raw: string | undefined) =>
    raw === undefined ? latestAttempt(run) : run.attempts.find((attempt) => String(attempt.number) === raw);

  const withRun = (params: RunParams) => {
    const repository = repositoryOf(params);
    const run =
      repository && /^\d+$/.test(params.run_id)
        ? actions.getRun(repository.id, Number(params.run_id))
        : undefined;
    return repository && run ? { repository, run } : undefined;
  };

  for (const path of [
    '/repos/:owner/:repo/actions/runs/:run_id',
    '/repos/:owner/:repo/actions/runs/:run_id/attempts/:attempt_number',
  ]) {
    app.get<{ Params: RunParams }>(path, { config: { docs: DOCS.runs } }, async (request, reply) => {
      const found = withRun(request.params);
      const attempt = found && attemptOf(found.run, request.params.attempt_number);
      if (!found || !attempt) return notFound(reply, DOCS.runs);
      return runBody(deps.origins(), found.repository, found.run, attempt);
    });

    app.get<{ Params: RunParams; Querystring: Record<string, string | undefined> }>(
      `${path}/jobs`,
      { config: { docs: DOCS.jobs } },
      async (request, reply) => {
        const found = withRun(request.params);
        const attempt = found && attemptOf(found.run, request.params.attempt_number);
        if (!found || !attempt) return notFound(reply, DOCS.jobs);
        const all = request.params.attempt_number === undefined && request.query.filter === 'all';
        const jobs = all ? found.run.attempts.flatMap((each) => each.jobs) : attempt.jobs;
        const page = readPage(request.query);
        const link = linkHeader(new URL(request.url, deps.origins().api), page, jobs.length);
        if (link) reply.header('link', link);
        const slice = jobs.slice((page.page - 1) * page.perPage, page.page * page.perPage);
        return {
          total_count: jobs.length,
          jobs: slice.map((job) => jobBody(deps.origins(), found.repository, found.run, job)),
        };
      },
    );
  }

  app.get<{ Params: JobParams }>(
    '/repos/:owner/:repo/actions/jobs/:job_id',
    { config: { docs: DOCS.jobs } },
    async (request, reply) => {
      const repository = repositoryOf(request.params);
      const found =
        repository && /^\d+$/.test(request.params.job_id)
          ? actions.findJob(Number(request.params.job_id))
          : undefined;
      if (!repository || !found || found.run.repositoryId !== repository.id)
        return notFound(reply, DOCS.jobs);
      return jobBody(deps.origins(), repository, found.run, found.job);
    },
  );

  app.post<{ Params: RunParams }>(
    '/repos/:owner/:repo/actions/runs/:run_id/cancel',
    async (request, reply) => {
      const found = withRun(request.params);
      if (!found) return notFound(reply, DOCS.runs);
      if (latestAttempt(found.run).status === 'completed') {
        return reply
          .code(409)
          .send(errorBody(409, 'Cannot cancel a workflow run that is completed.', DOCS.runs));
      }
      actions.cancelRun(found.run.id);
      return reply.code(202).send({});
    },
  );

  app.post<{ Params: RunParams }>(
    '/repos/:owner/:repo/actions/runs/:run_id/rerun',
    async (request, reply) => {
      const found = withRun(request.params);
      if (!found) return notFound(reply, DOCS.runs);
      if (latestAttempt(found.run).status !== 'completed') {
        return reply.code(403).send(errorBody(403, 'This workflow is already running', DOCS.runs));
      }
      actions.rerun(found.run.id);
      return reply.code(201).send({});
    },
  );

  registerSandboxActions(app, { ...deps, actions });
  return actions;
}

function registerSandboxActions(
  app: FastifyInstance,
  deps: { state: HostState; actions: ActionsState; origins: () => Origins; mintIdToken?: IdTokenMinter },
) {
  const { actions } = deps;
  const fail = (reply: FastifyReply, status: number, message: string) => reply.code(status).send({ message });
  const guarded = async (reply: FastifyReply, work: () => unknown) => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ActionsError) return fail(reply, error.status, error.message);
      throw error;
    }
  };
  const conclusionOf = (body: unknown) => {
    const conclusion = (body as { conclusion?: unknown } | undefined)?.conclusion;
    return CONCLUSIONS.includes(conclusion as Conclusion) ? (conclusion as Conclusion) : undefined;
  };

  // The run with its latest attempt's jobs, each with an OIDC token the job could have asked for.
  const described = async (run: SandboxRun) => {
    const repository = deps.state.findRepository(run.repositoryId)!;
    const attempt = latestAttempt(run);
    const idTokens: Record<string, string> = {};
    if (deps.mintIdToken) {
      for (const job of attempt.jobs)
        idTokens[job.id] = await deps.mintIdToken(jobClaims(repository, run, job));
    }
    return {
      run: runBody(deps.origins(), repository, run, attempt),
      jobs: attempt.jobs.map((job) => jobBody(deps.origins(), repository, run, job)),
      id_tokens: idTokens,
    };
  };

  app.post('/_sandbox/actions/runs', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (typeof body.repository !== 'string') return fail(reply, 400, 'repository is required');
    const jobs = Array.isArray(body.jobs) ? body.jobs.map(toJobSpec) : undefined;
    if (jobs?.some((job) => job === undefined)) return fail(reply, 400, 'jobs are names or {name} objects');
    return guarded(reply, async () => {
      const run = actions.createRun({
        repository: body.repository as string,
        workflowName: body.workflow_name as string | undefined,
        workflowPath: body.workflow_path as string | undefined,
        event: body.event as string | undefined,
        ref: body.ref as string | undefined,
        actor: body.actor as string | undefined,
        jobs: jobs as JobSpec[] | undefined,
        start: body.start !== false,
      });
      return reply.code(201).send(await described(run));
    });
  });

  const job = (id: string) => (/^\d+$/.test(id) ? Number(id) : -1);
  app.post<{ Params: { job_id: string } }>('/_sandbox/actions/jobs/:job_id/start', async (request, reply) =>
    guarded(reply, () => {
      const started = actions.startJob(job(request.params.job_id));
      return { id: started.id, status: started.status };
    }),
  );
  app.post<{ Params: { job_id: string } }>(
    '/_sandbox/actions/jobs/:job_id/complete',
    async (request, reply) => {
      const conclusion = conclusionOf(request.body);
      if (!conclusion) return fail(reply, 400, `conclusion must be one of ${CONCLUSIONS.join(', ')}`);
      return guarded(reply, () => {
        const completed = actions.completeJob(job(request.params.job_id), conclusion);
        return { id: completed.id, status: completed.status, conclusion: completed.conclusion };
      });
    },
  );
  app.post<{ Params: { run_id: string } }>(
    '/_sandbox/actions/runs/:run_id/complete',
    async (request, reply) => {
      const conclusion = conclusionOf(request.body);
      if (!conclusion) return fail(reply, 400, `conclusion must be one of ${CONCLUSIONS.join(', ')}`);
      return guarded(reply, async () =>
        described(actions.completeRun(job(request.params.run_id), conclusion)),
      );
    },
  );
  app.post<{ Params: { run_id: string } }>('/_sandbox/actions/runs/:run_id/cancel', async (request, reply) =>
    guarded(reply, async () => described(actions.cancelRun(job(request.params.run_id)))),
  );
  app.post<{ Params: { run_id: string } }>('/_sandbox/actions/runs/:run_id/rerun', async (request, reply) => {
    const body = (request.body ?? {}) as { actor?: string; start?: boolean };
    return guarded(reply, async () => {
      const run = actions.rerun(job(request.params.run_id), body.actor, body.start !== false);
      return reply.code(201).send(await described(run));
    });
  });
}
