// GitLab CI bodies: the REST entities (`API::Entities::Ci::Job`, `::Pipeline`) and the Job and
// Pipeline webhook payloads (`Gitlab::DataBuilder::Build`, `::Pipeline`), field for field as
// GitLab's source and its webhook events documentation list them.
import { createHash } from 'node:crypto';
import type { SandboxRepository } from '../shared/host-state.ts';
import type { GitlabJob, GitlabPipeline } from './ci-state.ts';

/** A stable positive id for a name (users and groups keep theirs across requests). */
export function stableId(seed: string): number {
  return (createHash('sha256').update(seed).digest().readUInt32BE(0) % 9_000_000) + 1_000_000;
}

export const namespaceOf = (project: SandboxRepository) =>
  project.path.slice(0, project.path.lastIndexOf('/'));
const nameOf = (project: SandboxRepository) => project.path.slice(project.path.lastIndexOf('/') + 1);
const iso = (date: Date | null) => (date === null ? null : date.toISOString());
// Pipeline hook timestamps are written the way Ruby prints a UTC time.
const rubyUtc = (date: Date | null) =>
  date === null ? null : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
const seconds = (from: Date | null, to: Date | null) =>
  from === null ? null : ((to ?? new Date()).getTime() - from.getTime()) / 1000;

function userBasic(web: string, username: string) {
  return {
    id: stableId(`user:${username}`),
    username,
    public_email: null,
    name: username,
    state: 'active',
    locked: false,
    avatar_url: `${web}/uploads/-/system/user/avatar/${stableId(`user:${username}`)}/avatar.png`,
    web_url: `${web}/${username}`,
  };
}

function hookUser(web: string, username: string) {
  const { id, name, avatar_url } = userBasic(web, username);
  return { id, name, username, avatar_url, email: '[REDACTED]' };
}

function commitBody(web: string, project: SandboxRepository, pipeline: GitlabPipeline) {
  return {
    id: pipeline.sha,
    short_id: pipeline.sha.slice(0, 8),
    created_at: iso(pipeline.createdAt),
    parent_ids: [],
    title: `Pipeline ${pipeline.iid}`,
    message: `Pipeline ${pipeline.iid}\n`,
    author_name: pipeline.user,
    author_email: `${pipeline.user}@example.com`,
    authored_date: iso(pipeline.createdAt),
    committer_name: pipeline.user,
    committer_email: `${pipeline.user}@example.com`,
    committed_date: iso(pipeline.createdAt),
    trailers: {},
    extended_trailers: {},
    web_url: `${web}/${project.path}/-/commit/${pipeline.sha}`,
  };
}

export function pipelineBasicBody(web: string, project: SandboxRepository, pipeline: GitlabPipeline) {
  return {
    id: pipeline.id,
    iid: pipeline.iid,
    project_id: project.id,
    sha: pipeline.sha,
    ref: pipeline.ref,
    status: pipeline.status,
    source: pipeline.source,
    created_at: iso(pipeline.createdAt),
    updated_at: iso(pipeline.updatedAt),
    web_url: `${web}/${project.path}/-/pipelines/${pipeline.id}`,
  };
}

const STATUS_LABELS: Record<string, string> = {
  created: 'created',
  pending: 'pending',
  running: 'running',
  success: 'passed',
  failed: 'failed',
  canceled: 'canceled',
};

/** `GET /projects/:id/pipelines/:pipeline_id` */
export function pipelineBody(web: string, project: SandboxRepository, pipeline: GitlabPipeline) {
  const label = STATUS_LABELS[pipeline.status] ?? pipeline.status;
  return {
    ...pipelineBasicBody(web, project, pipeline),
    before_sha: pipeline.beforeSha,
    tag: pipeline.tag,
    yaml_errors: null,
    user: userBasic(web, pipeline.user),
    started_at: iso(pipeline.startedAt),
    finished_at: iso(pipeline.finishedAt),
    committed_at: null,
    duration: pipeline.startedAt ? Math.round(seconds(pipeline.startedAt, pipeline.finishedAt) ?? 0) : null,
    queued_duration: pipeline.startedAt
      ? Math.round(seconds(pipeline.createdAt, pipeline.startedAt) ?? 0)
      : null,
    coverage: null,
    detailed_status: {
      icon: `status_${pipeline.status}`,
      text: label,
      label,
      group: pipeline.status,
      tooltip: label,
      has_details: true,
      details_path: `/${project.path}/-/pipelines/${pipeline.id}`,
      illustration: null,
      favicon: `/assets/ci_favicons/favicon_status_${pipeline.status}.png`,
    },
  };
}

function runnerBody(job: GitlabJob) {
  if (job.runnerId === null) return null;
  return {
    id: job.runnerId,
    description: `sandbox-runner-${job.runnerId}`,
    ip_address: null,
    active: true,
    paused: false,
    is_shared: true,
    runner_type: 'instance_type',
    name: 'gitlab-runner',
    online: true,
    status: 'online',
  };
}

/** `GET /projects/:id/jobs/:job_id` and the items of `GET /projects/:id/pipelines/:pipeline_id/jobs` */
export function jobBody(web: string, project: SandboxRepository, pipeline: GitlabPipeline, job: GitlabJob) {
  return {
    id: job.id,
    status: job.status,
    stage: job.stage,
    name: job.name,
    ref: pipeline.ref,
    tag: pipeline.tag,
    coverage: null,
    allow_failure: job.allowFailure,
    created_at: iso(job.createdAt),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    erased_at: null,
    duration: seconds(job.startedAt, job.finishedAt),
    queued_duration: seconds(job.createdAt, job.startedAt),
    user: userBasic(web, pipeline.user),
    commit: commitBody(web, project, pipeline),
    pipeline: pipelineBasicBody(web, project, pipeline),
    // Only a failed job says why.
    ...(job.status === 'failed' ? { failure_reason: job.failureReason } : {}),
    web_url: `${web}/${project.path}/-/jobs/${job.id}`,
    project: { ci_job_token_scope_enabled: false },
    artifacts: [],
    runner: runnerBody(job),
    runner_manager: null,
    artifacts_expire_at: null,
    archived: false,
    tag_list: [],
  };
}

// `Project#hook_attrs(backward: false)`: CI hooks leave out the old homepage/url/ssh_url/http_url.
function projectHookAttrs(web: string, project: SandboxRepository) {
  const host = new URL(web).host;
  const namespace = namespaceOf(project);
  return {
    id: project.id,
    name: nameOf(project),
    description: null,
    web_url: `${web}/${project.path}`,
    avatar_url: null,
    git_ssh_url: `git@${host}:${project.path}.git`,
    git_http_url: `${web}/${project.path}.git`,
    namespace: namespace.slice(namespace.lastIndexOf('/') + 1),
    visibility_level: 0,
    path_with_namespace: project.path,
    default_branch: 'main',
    ci_config_path: null,
  };
}

function hookRunner(job: GitlabJob) {
  if (job.runnerId === null) return null;
  return {
    id: job.runnerId,
    description: `sandbox-runner-${job.runnerId}`,
    runner_type: 'instance_type',
    active: true,
    is_shared: true,
    tags: [],
  };
}

/** The Job event (`X-Gitlab-Event: Job Hook`). `commit.id` is the pipeline's id, as GitLab sends it. */
export function jobEventBody(
  web: string,
  project: SandboxRepository,
  pipeline: GitlabPipeline,
  job: GitlabJob,
) {
  const projectAttrs = projectHookAttrs(web, project);
  return {
    object_kind: 'build',
    ref: pipeline.ref,
    tag: pipeline.tag,
    before_sha: pipeline.beforeSha,
    sha: pipeline.sha,
    build_id: job.id,
    build_name: job.name,
    build_stage: job.stage,
    build_status: job.status,
    build_created_at: iso(job.createdAt),
    build_started_at: iso(job.startedAt),
    build_finished_at: iso(job.finishedAt),
    build_duration: seconds(job.startedAt, job.finishedAt),
    build_queued_duration: seconds(job.createdAt, job.startedAt),
    build_allow_failure: job.allowFailure,
    build_failure_reason: job.failureReason ?? 'unknown_failure',
    retries_count: 0,
    pipeline_id: pipeline.id,
    project_id: project.id,
    project_name: project.path.replaceAll('/', ' / '),
    user: hookUser(web, pipeline.user),
    commit: {
      id: pipeline.id,
      name: null,
      sha: pipeline.sha,
      message: `Pipeline ${pipeline.iid}\n`,
      author_name: pipeline.user,
      author_email: `${pipeline.user}@example.com`,
      author_url: `mailto:${pipeline.user}@example.com`,
      status: pipeline.status,
      duration: pipeline.startedAt ? Math.round(seconds(pipeline.startedAt, pipeline.finishedAt) ?? 0) : null,
      started_at: iso(pipeline.startedAt),
      finished_at: iso(pipeline.finishedAt),
    },
    repository: {
      name: projectAttrs.name,
      url: projectAttrs.git_ssh_url,
      description: null,
      homepage: projectAttrs.web_url,
      git_http_url: projectAttrs.git_http_url,
      git_ssh_url: projectAttrs.git_ssh_url,
      visibility_level: 0,
    },
    project: projectAttrs,
    runner: hookRunner(job),
    environment: null,
  };
}

/** The Pipeline event (`X-Gitlab-Event: Pipeline Hook`), with every latest job under `builds`. */
export function pipelineEventBody(web: string, project: SandboxRepository, pipeline: GitlabPipeline) {
  return {
    object_kind: 'pipeline',
    object_attributes: {
      id: pipeline.id,
      iid: pipeline.iid,
      name: null,
      ref: pipeline.ref,
      tag: pipeline.tag,
      sha: pipeline.sha,
      before_sha: pipeline.beforeSha,
      source: pipeline.source,
      status: pipeline.status,
      detailed_status: STATUS_LABELS[pipeline.status] ?? pipeline.status,
      stages: [...new Set(pipeline.jobs.map((job) => job.stage))],
      created_at: rubyUtc(pipeline.createdAt),
      finished_at: rubyUtc(pipeline.finishedAt),
      duration: pipeline.startedAt ? Math.round(seconds(pipeline.startedAt, pipeline.finishedAt) ?? 0) : null,
      queued_duration: pipeline.startedAt
        ? Math.round(seconds(pipeline.createdAt, pipeline.startedAt) ?? 0)
        : null,
      protected_ref: pipeline.ref === 'main',
      variables: [],
      url: `${web}/${project.path}/-/pipelines/${pipeline.id}`,
    },
    merge_request: null,
    user: hookUser(web, pipeline.user),
    project: projectHookAttrs(web, project),
    commit: {
      id: pipeline.sha,
      message: `Pipeline ${pipeline.iid}\n`,
      title: `Pipeline ${pipeline.iid}`,
      timestamp: iso(pipeline.createdAt),
      url: `${web}/${project.path}/-/commit/${pipeline.sha}`,
      author: { name: pipeline.user, email: `${pipeline.user}@example.com` },
    },
    builds: pipeline.jobs.map((job) => ({
      id: job.id,
      stage: job.stage,
      name: job.name,
      status: job.status,
      created_at: rubyUtc(job.createdAt),
      started_at: rubyUtc(job.startedAt),
      finished_at: rubyUtc(job.finishedAt),
      duration: seconds(job.startedAt, job.finishedAt),
      queued_duration: seconds(job.createdAt, job.startedAt),
      failure_reason: job.status === 'failed' ? job.failureReason : null,
      when: 'on_success',
      manual: false,
      allow_failure: job.allowFailure,
      user: hookUser(web, pipeline.user),
      runner: hookRunner(job),
      artifacts_file: { filename: null, size: null },
      environment: null,
    })),
  };
}
