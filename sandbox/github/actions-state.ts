// Workflow runs and their jobs on the GitHub stand-in, moving through the states GitHub Actions
// uses, and telling a listener about every change as the `workflow_run` / `workflow_job` events
// GitHub would send. A re-run is a new attempt of the same run (same run id, new job ids).
import { randomBytes, randomInt } from 'node:crypto';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import { stableId } from './actions-bodies.ts';

export type JobStatus = 'queued' | 'waiting' | 'in_progress' | 'completed';
export type RunStatus = 'queued' | 'in_progress' | 'completed';
export const CONCLUSIONS = [
  'success',
  'failure',
  'neutral',
  'cancelled',
  'skipped',
  'timed_out',
  'action_required',
] as const;
export type Conclusion = (typeof CONCLUSIONS)[number];

export interface SandboxJob {
  id: number;
  runId: number;
  attempt: number;
  name: string;
  labels: string[];
  status: JobStatus;
  conclusion: Conclusion | null;
  runnerId: number | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
}

export interface SandboxRunAttempt {
  number: number;
  status: RunStatus;
  conclusion: Conclusion | null;
  checkSuiteId: number;
  triggeringActor: string;
  startedAt: Date;
  updatedAt: Date;
  jobs: SandboxJob[];
}

export interface SandboxRun {
  id: number;
  repositoryId: number;
  runNumber: number;
  workflowId: number;
  workflowName: string;
  workflowPath: string;
  displayTitle: string;
  event: string;
  ref: string;
  headBranch: string;
  headSha: string;
  actor: string;
  createdAt: Date;
  attempts: SandboxRunAttempt[];
}

export type ActionsEvent =
  | {
      name: 'workflow_run';
      action: 'requested' | 'in_progress' | 'completed';
      run: SandboxRun;
      attempt: SandboxRunAttempt;
    }
  | {
      name: 'workflow_job';
      action: 'queued' | 'waiting' | 'in_progress' | 'completed';
      run: SandboxRun;
      attempt: SandboxRunAttempt;
      job: SandboxJob;
    };

export interface JobSpec {
  name: string;
  labels?: string[];
  /** Waits for an environment's approval before it is queued for a runner. */
  waiting?: boolean;
}

export interface NewRun {
  repository: string;
  workflowName?: string | undefined;
  workflowPath?: string | undefined;
  event?: string | undefined;
  ref?: string | undefined;
  actor?: string | undefined;
  jobs?: JobSpec[] | undefined;
  /** Put every job on a runner straight away (default true). */
  start?: boolean | undefined;
}

export class ActionsError extends Error {
  constructor(
    readonly status: 404 | 409 | 422,
    message: string,
  ) {
    super(message);
  }
}

export interface ActionsState {
  createRun(input: NewRun): SandboxRun;
  getRun(repositoryId: number, runId: number): SandboxRun | undefined;
  findRun(runId: number): SandboxRun | undefined;
  findJob(jobId: number): { run: SandboxRun; job: SandboxJob } | undefined;
  startJob(jobId: number): SandboxJob;
  completeJob(jobId: number, conclusion: Conclusion): SandboxJob;
  /** Ends every unfinished job of the latest attempt with this conclusion. */
  completeRun(runId: number, conclusion: Conclusion): SandboxRun;
  cancelRun(runId: number): SandboxRun;
  rerun(runId: number, actor?: string, start?: boolean): SandboxRun;
  subscribe(listener: (event: ActionsEvent) => void): void;
}

const bigId = () => randomInt(1_000_000_000, 2 ** 40);
export const latestAttempt = (run: SandboxRun) => run.attempts[run.attempts.length - 1]!;

// A run ends with the most severe conclusion among its jobs.
const SEVERITY: Conclusion[] = [
  'failure',
  'timed_out',
  'cancelled',
  'action_required',
  'neutral',
  'success',
  'skipped',
];
function runConclusion(jobs: SandboxJob[]): Conclusion {
  const found = new Set(jobs.map((job) => job.conclusion));
  return SEVERITY.find((conclusion) => found.has(conclusion)) ?? 'success';
}

export function createActionsState(hosts: HostState): ActionsState {
  const runs = new Map<number, SandboxRun>();
  const runNumbers = new Map<string, number>();
  const listeners: Array<(event: ActionsEvent) => void> = [];
  const emit = (event: ActionsEvent) => {
    for (const listener of listeners) listener(event);
  };

  const repositoryOf = (path: string): SandboxRepository => {
    const repository = hosts.findRepository(path);
    if (!repository) throw new ActionsError(404, `repository ${path} not found`);
    return repository;
  };

  const findJob = (jobId: number) => {
    for (const run of runs.values()) {
      for (const attempt of run.attempts) {
        const job = attempt.jobs.find((candidate) => candidate.id === jobId);
        if (job) return { run, attempt, job };
      }
    }
    return undefined;
  };

  const mustFindRun = (runId: number) => {
    const run = runs.get(runId);
    if (!run) throw new ActionsError(404, `run ${runId} not found`);
    return run;
  };

  const newAttempt = (run: SandboxRun, specs: JobSpec[], triggeringActor: string): SandboxRunAttempt => {
    const now = new Date();
    const number = run.attempts.length + 1;
    const jobs = specs.map<SandboxJob>((spec) => ({
      id: bigId(),
      runId: run.id,
      attempt: number,
      name: spec.name,
      labels: spec.labels ?? ['ubuntu-latest'],
      status: spec.waiting ? 'waiting' : 'queued',
      conclusion: null,
      runnerId: null,
      createdAt: now,
      startedAt: null,
      completedAt: null,
    }));
    return {
      number,
      status: 'queued',
      conclusion: null,
      checkSuiteId: bigId(),
      triggeringActor,
      startedAt: now,
      updatedAt: now,
      jobs,
    };
  };

  const announce = (run: SandboxRun, attempt: SandboxRunAttempt, start: boolean) => {
    emit({ name: 'workflow_run', action: 'requested', run, attempt });
    for (const job of attempt.jobs) {
      emit({
        name: 'workflow_job',
        action: job.status === 'waiting' ? 'waiting' : 'queued',
        run,
        attempt,
        job,
      });
    }
    if (start) for (const job of attempt.jobs) if (job.status === 'queued') startJob(job.id);
  };

  const startJob = (jobId: number): SandboxJob => {
    const found = findJob(jobId);
    if (!found) throw new ActionsError(404, `job ${jobId} not found`);
    const { run, attempt, job } = found;
    if (job.status === 'completed' || job.status === 'in_progress') {
      throw new ActionsError(409, `job ${jobId} is ${job.status}`);
    }
    const now = new Date();
    Object.assign(job, { status: 'in_progress', startedAt: now, runnerId: randomInt(1, 1_000_000) });
    attempt.updatedAt = now;
    if (attempt.status === 'queued') {
      attempt.status = 'in_progress';
      emit({ name: 'workflow_run', action: 'in_progress', run, attempt });
    }
    emit({ name: 'workflow_job', action: 'in_progress', run, attempt, job });
    return job;
  };

  const finishJob = (
    run: SandboxRun,
    attempt: SandboxRunAttempt,
    job: SandboxJob,
    conclusion: Conclusion,
  ) => {
    const now = new Date();
    Object.assign(job, {
      status: 'completed',
      conclusion,
      completedAt: now,
      startedAt: job.startedAt ?? now,
    });
    attempt.updatedAt = now;
    emit({ name: 'workflow_job', action: 'completed', run, attempt, job });
  };

  const finishAttemptIfDone = (run: SandboxRun, attempt: SandboxRunAttempt, conclusion?: Conclusion) => {
    if (attempt.status === 'completed' || attempt.jobs.some((job) => job.status !== 'completed')) return;
    Object.assign(attempt, { status: 'completed', conclusion: conclusion ?? runConclusion(attempt.jobs) });
    emit({ name: 'workflow_run', action: 'completed', run, attempt });
  };

  const completeRun = (runId: number, conclusion: Conclusion) => {
    const run = mustFindRun(runId);
    const attempt = latestAttempt(run);
    if (attempt.status === 'completed')
      throw new ActionsError(409, 'Cannot complete a workflow run that is completed.');
    for (const job of attempt.jobs) if (job.status !== 'completed') finishJob(run, attempt, job, conclusion);
    finishAttemptIfDone(run, attempt, conclusion);
    return run;
  };

  return {
    createRun(input) {
      const repository = repositoryOf(input.repository);
      const workflowPath = input.workflowPath ?? '.github/workflows/ci.yml';
      const key = `${repository.id}:${workflowPath}`;
      const runNumber = (runNumbers.get(key) ?? 0) + 1;
      runNumbers.set(key, runNumber);
      const ref = input.ref ?? 'refs/heads/main';
      const run: SandboxRun = {
        id: bigId(),
        repositoryId: repository.id,
        runNumber,
        workflowId: stableId(`workflow:${key}`),
        workflowName: input.workflowName ?? 'CI',
        workflowPath,
        displayTitle: `Run ${runNumber} of ${input.workflowName ?? 'CI'}`,
        event: input.event ?? 'push',
        ref,
        headBranch: ref.replace(/^refs\/(heads|tags)\//, ''),
        headSha: randomBytes(20).toString('hex'),
        actor: input.actor ?? 'deploy-bot',
        createdAt: new Date(),
        attempts: [],
      };
      const specs = input.jobs && input.jobs.length > 0 ? input.jobs : [{ name: 'build' }];
      run.attempts.push(newAttempt(run, specs, run.actor));
      runs.set(run.id, run);
      announce(run, latestAttempt(run), input.start ?? true);
      return run;
    },
    getRun(repositoryId, runId) {
      const run = runs.get(runId);
      return run?.repositoryId === repositoryId ? run : undefined;
    },
    findRun: (runId) => runs.get(runId),
    findJob(jobId) {
      const found = findJob(jobId);
      return found && { run: found.run, job: found.job };
    },
    startJob,
    completeJob(jobId, conclusion) {
      const found = findJob(jobId);
      if (!found) throw new ActionsError(404, `job ${jobId} not found`);
      const { run, attempt, job } = found;
      if (job.status === 'completed') throw new ActionsError(409, `job ${jobId} is completed`);
      finishJob(run, attempt, job, conclusion);
      finishAttemptIfDone(run, attempt);
      return job;
    },
    completeRun,
    cancelRun(runId) {
      const run = mustFindRun(runId);
      if (latestAttempt(run).status === 'completed') {
        throw new ActionsError(409, 'Cannot cancel a workflow run that is completed.');
      }
      return completeRun(runId, 'cancelled');
    },
    rerun(runId, actor, start = true) {
      const run = mustFindRun(runId);
      const previous = latestAttempt(run);
      if (previous.status !== 'completed') throw new ActionsError(409, 'This workflow is already running');
      const specs = previous.jobs.map((job) => ({ name: job.name, labels: job.labels }));
      run.attempts.push(newAttempt(run, specs, actor ?? run.actor));
      announce(run, latestAttempt(run), start);
      return run;
    },
    subscribe(listener) {
      listeners.push(listener);
    },
  };
}
