// What a webhook payload says ended, reduced to the job it names. Only final states count: a
// `completed` workflow job/run on GitHub, a job or pipeline in a final status on GitLab. Anything
// else (other events, running jobs, malformed bodies) names nothing, so it can end nothing.

import { bindingRef } from '../keys/binding.ts';

/** A finished platform job, as precise as the event identifies it; always within one repository. */
export type JobEnd =
  | { kind: 'github-run'; host: string; repository: string; runId: string; runAttempt: string }
  | { kind: 'github-job'; host: string; repository: string; checkRunId: string }
  | { kind: 'gitlab-job'; host: string; project: string; jobId: string }
  | { kind: 'gitlab-pipeline'; host: string; project: string; pipelineId: string };

export interface EndedEvent {
  end: JobEnd;
  conclusion: string;
  /** GitLab's reason for a failed job (`job_execution_timeout`, `script_failure`, …), kept in the audit. */
  failureReason?: string;
}

/** Why a body names nothing to end: an event we do not act on, or one we cannot read. */
export type NotEnded = { ignored: 'event' | 'not-final' } | { malformed: string };

const NUMERIC_ID = /^[1-9][0-9]{0,19}$/;
const PATH = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;
const GITLAB_FINAL = new Set(['success', 'failed', 'canceled', 'skipped']);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const idOf = (value: unknown): string | undefined => {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  return typeof text === 'string' && NUMERIC_ID.test(text) ? text : undefined;
};
const pathOf = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length <= 255 && PATH.test(value) ? value.toLowerCase() : undefined;
const conclusionOf = (value: unknown): string =>
  typeof value === 'string' && /^[a-z_]{1,32}$/.test(value) ? value : 'unknown';

/** `workflow_job` / `workflow_run` with `action: completed`; other GitHub events are ignored. */
export function githubJobEnd(host: string, event: string, body: unknown): EndedEvent | NotEnded {
  if (event !== 'workflow_job' && event !== 'workflow_run') return { ignored: 'event' };
  if (!isObject(body)) return { malformed: 'the body is not a JSON object' };
  const repository = isObject(body.repository) ? pathOf(body.repository.full_name) : undefined;
  if (!repository) return { malformed: 'repository.full_name is missing' };
  const item = body[event];
  if (!isObject(item)) return { malformed: `${event} is missing` };
  if (body.action !== 'completed') return { ignored: 'not-final' };
  const conclusion = conclusionOf(item.conclusion);
  if (event === 'workflow_job') {
    const checkRunId = idOf(item.id);
    if (!checkRunId) return { malformed: 'workflow_job.id is not an id' };
    return { end: { kind: 'github-job', host, repository, checkRunId }, conclusion };
  }
  const runId = idOf(item.id);
  const runAttempt = idOf(item.run_attempt);
  if (!runId || !runAttempt) return { malformed: 'workflow_run.id or run_attempt is not an id' };
  return { end: { kind: 'github-run', host, repository, runId, runAttempt }, conclusion };
}

/** Job (`object_kind: build`) and Pipeline events in a final status; others are ignored. */
export function gitlabJobEnd(host: string, body: unknown): EndedEvent | NotEnded {
  if (!isObject(body)) return { malformed: 'the body is not a JSON object' };
  if (body.object_kind !== 'build' && body.object_kind !== 'pipeline') return { ignored: 'event' };
  const project = isObject(body.project) ? pathOf(body.project.path_with_namespace) : undefined;
  if (!project) return { malformed: 'project.path_with_namespace is missing' };
  if (body.object_kind === 'build') {
    const jobId = idOf(body.build_id);
    if (!jobId) return { malformed: 'build_id is not an id' };
    const status = conclusionOf(body.build_status);
    if (!GITLAB_FINAL.has(status)) return { ignored: 'not-final' };
    const end: JobEnd = { kind: 'gitlab-job', host, project, jobId };
    const failureReason = status === 'failed' ? conclusionOf(body.build_failure_reason) : 'unknown';
    return failureReason === 'unknown'
      ? { end, conclusion: status }
      : { end, conclusion: status, failureReason };
  }
  const attributes = body.object_attributes;
  const pipelineId = isObject(attributes) ? idOf(attributes.id) : undefined;
  if (!isObject(attributes) || !pipelineId) return { malformed: 'object_attributes.id is not an id' };
  const status = conclusionOf(attributes.status);
  if (!GITLAB_FINAL.has(status)) return { ignored: 'not-final' };
  return { end: { kind: 'gitlab-pipeline', host, project, pipelineId }, conclusion: status };
}

/** The binding ref keys bound to this job carry (see `bindingRefs`). */
export function refOfJobEnd(end: JobEnd): string {
  switch (end.kind) {
    case 'github-run':
      return bindingRef.githubRun(end.host, end.repository, end.runId, end.runAttempt);
    case 'github-job':
      return bindingRef.githubJob(end.host, end.repository, end.checkRunId);
    case 'gitlab-job':
      return bindingRef.gitlabJob(end.host, end.project, end.jobId);
    case 'gitlab-pipeline':
      return bindingRef.gitlabPipeline(end.host, end.project, end.pipelineId);
  }
}
