// `/_sandbox/actions/*` on the GitHub stand-in: start a run with jobs (each handed the OIDC token it
// would get), start, complete, cancel and re-run, so tests and benchmarks drive a run's life.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import { jobBody, type Origins, ownerOf, runBody, stableId } from './actions-bodies.ts';
import {
  ActionsError,
  type ActionsState,
  CONCLUSIONS,
  type Conclusion,
  type JobSpec,
  latestAttempt,
  type SandboxJob,
  type SandboxRun,
} from './actions-state.ts';

/** Mints a GitHub Actions OIDC token carrying these claims (the OIDC stand-in's `mint`). */
export type IdTokenMinter = (claims: Record<string, unknown>) => Promise<string>;

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

const toJobSpec = (entry: unknown): JobSpec | undefined => {
  if (typeof entry === 'string' && entry !== '') return { name: entry };
  const spec = entry as JobSpec | null;
  return typeof spec?.name === 'string' && spec.name !== '' ? spec : undefined;
};

export function registerSandboxActions(
  app: FastifyInstance,
  deps: {
    state: HostState;
    actions: ActionsState;
    origins: () => Origins;
    mintIdToken?: IdTokenMinter | undefined;
  },
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
