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
  userBody,
  workflowBody,
} from './actions-bodies.ts';
import { type IdTokenMinter, registerSandboxActions } from './actions-sandbox.ts';
import {
  type ActionsEvent,
  type ActionsState,
  createActionsState,
  latestAttempt,
  type SandboxRun,
} from './actions-state.ts';
import type { GithubHooks } from './hooks.ts';
import { errorBody, linkHeader, REST_DOCS, readPage } from './responses.ts';

type RunParams = { owner: string; repo: string; run_id: string; attempt_number?: string };
type JobParams = { owner: string; repo: string; job_id: string };

const DOCS = {
  runs: `${REST_DOCS}/actions/workflow-runs`,
  jobs: `${REST_DOCS}/actions/workflow-jobs`,
};

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

export function registerGithubActions(
  app: FastifyInstance,
  deps: {
    state: HostState;
    hooks: GithubHooks;
    origins: () => Origins;
    mintIdToken?: IdTokenMinter | undefined;
  },
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
