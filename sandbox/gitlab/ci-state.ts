// Pipelines and their jobs on the GitLab stand-in, moving through GitLab CI's statuses and telling
// a listener about each change as the Pipeline and Job events GitLab's webhooks send. A job killed
// for running too long fails with `failure_reason: job_execution_timeout`, as GitLab reports it.
import { randomBytes, randomInt } from 'node:crypto';
import type { HostState } from '../shared/host-state.ts';

export type JobStatus =
  | 'created'
  | 'pending'
  | 'running'
  | 'success'
  | 'failed'
  | 'canceled'
  | 'skipped'
  | 'manual';
export type PipelineStatus = 'created' | 'pending' | 'running' | 'success' | 'failed' | 'canceled';
export const FINAL_JOB_STATUSES = ['success', 'failed', 'canceled'] as const;
export type FinalJobStatus = (typeof FINAL_JOB_STATUSES)[number];

export interface GitlabJob {
  id: number;
  pipelineId: number;
  name: string;
  stage: string;
  status: JobStatus;
  failureReason: string | null;
  allowFailure: boolean;
  runnerId: number | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface GitlabPipeline {
  id: number;
  iid: number;
  projectId: number;
  ref: string;
  tag: boolean;
  sha: string;
  beforeSha: string;
  source: string;
  status: PipelineStatus;
  user: string;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  jobs: GitlabJob[];
}

export type CiEvent =
  | { kind: 'pipeline'; pipeline: GitlabPipeline }
  | { kind: 'job'; pipeline: GitlabPipeline; job: GitlabJob };

export interface NewPipeline {
  project: string;
  ref?: string | undefined;
  source?: string | undefined;
  user?: string | undefined;
  jobs?: Array<{ name: string; stage?: string; allowFailure?: boolean }> | undefined;
  /** Put every job on a runner straight away (default true). */
  start?: boolean | undefined;
}

export class CiError extends Error {
  constructor(
    readonly status: 400 | 403 | 404,
    message: string,
  ) {
    super(message);
  }
}

export interface CiState {
  createPipeline(input: NewPipeline): GitlabPipeline;
  getPipeline(projectId: number, pipelineId: number): GitlabPipeline | undefined;
  findJob(jobId: number): { pipeline: GitlabPipeline; job: GitlabJob } | undefined;
  startJob(jobId: number): GitlabJob;
  /** Ends a job; `failed` defaults to `script_failure`, a time-out is `failed` + `job_execution_timeout`. */
  finishJob(jobId: number, status: FinalJobStatus, failureReason?: string): GitlabJob;
  cancelJob(jobId: number): GitlabJob;
  cancelPipeline(pipelineId: number): GitlabPipeline;
  subscribe(listener: (event: CiEvent) => void): void;
}

const bigId = () => randomInt(1_000_000_000, 2 ** 40);
const isFinal = (job: GitlabJob) =>
  (FINAL_JOB_STATUSES as readonly string[]).includes(job.status) || job.status === 'skipped';

function pipelineOutcome(jobs: GitlabJob[]): PipelineStatus {
  if (jobs.some((job) => job.status === 'failed' && !job.allowFailure)) return 'failed';
  if (jobs.some((job) => job.status === 'canceled')) return 'canceled';
  return 'success';
}

export function createCiState(hosts: HostState): CiState {
  const pipelines = new Map<number, GitlabPipeline>();
  const iids = new Map<number, number>();
  const listeners: Array<(event: CiEvent) => void> = [];
  const emit = (event: CiEvent) => {
    for (const listener of listeners) listener(event);
  };

  const findJob = (jobId: number) => {
    for (const pipeline of pipelines.values()) {
      const job = pipeline.jobs.find((candidate) => candidate.id === jobId);
      if (job) return { pipeline, job };
    }
    return undefined;
  };
  const mustFindJob = (jobId: number) => {
    const found = findJob(jobId);
    if (!found) throw new CiError(404, '404 Job Not Found');
    return found;
  };

  const setPipelineStatus = (pipeline: GitlabPipeline, status: PipelineStatus) => {
    if (pipeline.status === status) return;
    const now = new Date();
    pipeline.status = status;
    pipeline.updatedAt = now;
    if (status === 'running') pipeline.startedAt ??= now;
    if (status === 'success' || status === 'failed' || status === 'canceled') pipeline.finishedAt = now;
    emit({ kind: 'pipeline', pipeline });
  };

  const setJobStatus = (
    pipeline: GitlabPipeline,
    job: GitlabJob,
    status: JobStatus,
    failureReason: string | null = null,
  ) => {
    const now = new Date();
    job.status = status;
    job.failureReason = failureReason;
    if (status === 'running') {
      job.startedAt = now;
      job.runnerId = randomInt(1, 1_000_000);
    }
    if (isFinal(job)) job.finishedAt = now;
    pipeline.updatedAt = now;
    emit({ kind: 'job', pipeline, job });
  };

  const settle = (pipeline: GitlabPipeline) => {
    if (pipeline.jobs.every(isFinal)) setPipelineStatus(pipeline, pipelineOutcome(pipeline.jobs));
  };

  const startJob = (jobId: number) => {
    const { pipeline, job } = mustFindJob(jobId);
    if (job.status !== 'pending' && job.status !== 'created') throw new CiError(403, '403 Forbidden');
    setJobStatus(pipeline, job, 'running');
    setPipelineStatus(pipeline, 'running');
    return job;
  };

  const cancel = (pipeline: GitlabPipeline, job: GitlabJob) => {
    if (!isFinal(job)) setJobStatus(pipeline, job, 'canceled');
  };

  return {
    createPipeline(input) {
      const project = hosts.findRepository(input.project);
      if (!project) throw new CiError(404, '404 Project Not Found');
      const iid = (iids.get(project.id) ?? 0) + 1;
      iids.set(project.id, iid);
      const now = new Date();
      const id = bigId();
      const specs = input.jobs && input.jobs.length > 0 ? input.jobs : [{ name: 'build' }];
      const pipeline: GitlabPipeline = {
        id,
        iid,
        projectId: project.id,
        ref: input.ref ?? 'main',
        tag: false,
        sha: randomBytes(20).toString('hex'),
        beforeSha: '0000000000000000000000000000000000000000',
        source: input.source ?? 'push',
        status: 'created',
        user: input.user ?? 'deploy-bot',
        createdAt: now,
        updatedAt: now,
        startedAt: null,
        finishedAt: null,
        jobs: specs.map((spec) => ({
          id: bigId(),
          pipelineId: id,
          name: spec.name,
          stage: spec.stage ?? 'test',
          status: 'created',
          failureReason: null,
          allowFailure: spec.allowFailure ?? false,
          runnerId: null,
          createdAt: now,
          startedAt: null,
          finishedAt: null,
        })),
      };
      pipelines.set(pipeline.id, pipeline);
      for (const job of pipeline.jobs) setJobStatus(pipeline, job, 'pending');
      setPipelineStatus(pipeline, 'pending');
      if (input.start ?? true) for (const job of pipeline.jobs) startJob(job.id);
      return pipeline;
    },
    getPipeline(projectId, pipelineId) {
      const pipeline = pipelines.get(pipelineId);
      return pipeline?.projectId === projectId ? pipeline : undefined;
    },
    findJob,
    startJob,
    finishJob(jobId, status, failureReason) {
      const { pipeline, job } = mustFindJob(jobId);
      if (isFinal(job)) throw new CiError(400, `400 Job is ${job.status}`);
      if (job.status !== 'running') setJobStatus(pipeline, job, 'running');
      setJobStatus(pipeline, job, status, status === 'failed' ? (failureReason ?? 'script_failure') : null);
      settle(pipeline);
      return job;
    },
    cancelJob(jobId) {
      const { pipeline, job } = mustFindJob(jobId);
      cancel(pipeline, job);
      settle(pipeline);
      return job;
    },
    cancelPipeline(pipelineId) {
      const pipeline = pipelines.get(pipelineId);
      if (!pipeline) throw new CiError(404, '404 Not found');
      for (const job of pipeline.jobs) cancel(pipeline, job);
      settle(pipeline);
      return pipeline;
    },
    subscribe(listener) {
      listeners.push(listener);
    },
  };
}
