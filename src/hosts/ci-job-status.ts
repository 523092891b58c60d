// What GitHub Actions and GitLab CI answer about a job, reduced to running or ended. Only a final
// state ends a key: GitHub's `completed` (run attempt or job), GitLab's success/failed/canceled/skipped.
import type { CiJobStatus } from './git-host.ts';

const GITLAB_FINAL = new Set(['success', 'failed', 'canceled', 'skipped']);

/** A workflow run attempt or job: `status` `completed` with its `conclusion`. */
export function githubJobStatus(answer: { status?: string | null; conclusion?: string | null }): CiJobStatus {
  if (answer.status !== 'completed') return { state: 'running' };
  return { state: 'ended', conclusion: answer.conclusion ?? 'unknown' };
}

/** A GitLab job; a job killed on timeout is `failed` with `failure_reason` `job_execution_timeout`. */
export function gitlabJobStatus(answer: { status?: string; failure_reason?: string | null }): CiJobStatus {
  const status = answer.status ?? '';
  if (!GITLAB_FINAL.has(status)) return { state: 'running' };
  return answer.failure_reason
    ? { state: 'ended', conclusion: status, failureReason: answer.failure_reason }
    : { state: 'ended', conclusion: status };
}
