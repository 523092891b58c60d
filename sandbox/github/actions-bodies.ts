// Bodies GitHub uses for Actions, shared by the REST routes and the webhook payloads: users,
// organisations, repositories, workflows, workflow runs and jobs, with every field GitHub's OpenAPI
// description requires (test/fixtures/github-actions-hooks.openapi.json and
// github-workflow-webhooks.openapi.json hold the schemas the tests check them against).
import { createHash } from 'node:crypto';
import type { SandboxRepository } from '../shared/host-state.ts';
import type { SandboxJob, SandboxRun, SandboxRunAttempt } from './actions-state.ts';
import { githubTime } from './responses.ts';

/** Where the stand-in serves its API and its "web" pages (the same origin, like a GitHub Enterprise host). */
export interface Origins {
  api: string;
  web: string;
}

/** A stable positive id for a name, so a login or workflow keeps its id across requests. */
export function stableId(seed: string): number {
  return (createHash('sha256').update(seed).digest().readUInt32BE(0) % 90_000_000) + 10_000_000;
}

// GitHub's current node ids: a type prefix, `_kw`, then base64 of a packed id.
function nodeId(prefix: string, id: number): string {
  return `${prefix}_kwDO${Buffer.from(String(id)).toString('base64url')}`;
}

const time = (date: Date | null) => (date === null ? null : githubTime(date));

export function userBody(origins: Origins, login: string, type: 'User' | 'Organization' | 'Bot' = 'User') {
  const api = `${origins.api}/users/${login}`;
  const id = stableId(`user:${login}`);
  return {
    login,
    id,
    node_id: nodeId(type === 'Organization' ? 'O' : 'U', id),
    avatar_url: `${origins.web}/avatars/u/${id}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: `${origins.web}/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type,
    user_view_type: 'public',
    site_admin: false,
  };
}

export function organizationBody(origins: Origins, login: string) {
  const api = `${origins.api}/orgs/${login}`;
  const id = stableId(`user:${login}`);
  return {
    login,
    id,
    node_id: nodeId('O', id),
    url: api,
    repos_url: `${api}/repos`,
    events_url: `${api}/events`,
    hooks_url: `${api}/hooks`,
    issues_url: `${api}/issues`,
    members_url: `${api}/members{/member}`,
    public_members_url: `${api}/public_members{/member}`,
    avatar_url: `${origins.web}/avatars/u/${id}?v=4`,
    description: null,
  };
}

export const ownerOf = (repository: SandboxRepository) => repository.path.split('/')[0] ?? repository.path;

/** The "minimal repository" GitHub nests in runs: identity and the API URL templates. */
export function repositoryLiteBody(origins: Origins, repository: SandboxRepository) {
  const [, name = repository.path] = repository.path.split('/');
  const u = `${origins.api}/repos/${repository.path}`;
  return {
    id: repository.id,
    node_id: nodeId('R', repository.id),
    name,
    full_name: repository.path,
    private: true,
    owner: userBody(origins, ownerOf(repository), 'Organization'),
    html_url: `${origins.web}/${repository.path}`,
    description: null,
    fork: false,
    url: u,
    archive_url: `${u}/{archive_format}{/ref}`,
    assignees_url: `${u}/assignees{/user}`,
    blobs_url: `${u}/git/blobs{/sha}`,
    branches_url: `${u}/branches{/branch}`,
    collaborators_url: `${u}/collaborators{/collaborator}`,
    comments_url: `${u}/comments{/number}`,
    commits_url: `${u}/commits{/sha}`,
    compare_url: `${u}/compare/{base}...{head}`,
    contents_url: `${u}/contents/{+path}`,
    contributors_url: `${u}/contributors`,
    deployments_url: `${u}/deployments`,
    downloads_url: `${u}/downloads`,
    events_url: `${u}/events`,
    forks_url: `${u}/forks`,
    git_commits_url: `${u}/git/commits{/sha}`,
    git_refs_url: `${u}/git/refs{/sha}`,
    git_tags_url: `${u}/git/tags{/sha}`,
    hooks_url: `${u}/hooks`,
    issue_comment_url: `${u}/issues/comments{/number}`,
    issue_events_url: `${u}/issues/events{/number}`,
    issues_url: `${u}/issues{/number}`,
    keys_url: `${u}/keys{/key_id}`,
    labels_url: `${u}/labels{/name}`,
    languages_url: `${u}/languages`,
    merges_url: `${u}/merges`,
    milestones_url: `${u}/milestones{/number}`,
    notifications_url: `${u}/notifications{?since,all,participating}`,
    pulls_url: `${u}/pulls{/number}`,
    releases_url: `${u}/releases{/id}`,
    stargazers_url: `${u}/stargazers`,
    statuses_url: `${u}/statuses/{sha}`,
    subscribers_url: `${u}/subscribers`,
    subscription_url: `${u}/subscription`,
    tags_url: `${u}/tags`,
    teams_url: `${u}/teams`,
    trees_url: `${u}/git/trees{/sha}`,
  };
}

/** The full repository object at the top of every webhook payload. */
export function repositoryBody(origins: Origins, repository: SandboxRepository, createdAt: Date) {
  const host = new URL(origins.web).host;
  const created = githubTime(createdAt);
  return {
    ...repositoryLiteBody(origins, repository),
    git_url: `git://${host}/${repository.path}.git`,
    ssh_url: `git@${host}:${repository.path}.git`,
    clone_url: `${origins.web}/${repository.path}.git`,
    svn_url: `${origins.web}/${repository.path}`,
    mirror_url: null,
    homepage: null,
    language: null,
    created_at: created,
    updated_at: created,
    pushed_at: created,
    size: 0,
    stargazers_count: 0,
    watchers_count: 0,
    forks_count: 0,
    open_issues_count: 0,
    forks: 0,
    open_issues: 0,
    watchers: 0,
    default_branch: 'main',
    is_template: false,
    topics: [],
    visibility: 'private',
    license: null,
    has_issues: true,
    has_projects: true,
    has_wiki: true,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    allow_forking: false,
    web_commit_signoff_required: false,
  };
}

export function workflowBody(origins: Origins, repository: SandboxRepository, run: SandboxRun) {
  const created = githubTime(run.createdAt);
  return {
    id: run.workflowId,
    node_id: nodeId('W', run.workflowId),
    name: run.workflowName,
    path: run.workflowPath,
    state: 'active',
    created_at: created,
    updated_at: created,
    url: `${origins.api}/repos/${repository.path}/actions/workflows/${run.workflowId}`,
    html_url: `${origins.web}/${repository.path}/blob/main/${run.workflowPath}`,
    badge_url: `${origins.web}/${repository.path}/workflows/${encodeURIComponent(run.workflowName)}/badge.svg`,
  };
}

/** One attempt of a run, as `GET /repos/{o}/{r}/actions/runs/{id}` and `workflow_run` payloads show it. */
export function runBody(
  origins: Origins,
  repository: SandboxRepository,
  run: SandboxRun,
  attempt: SandboxRunAttempt,
) {
  const u = `${origins.api}/repos/${repository.path}`;
  const runUrl = `${u}/actions/runs/${run.id}`;
  const lite = repositoryLiteBody(origins, repository);
  const actor = userBody(origins, run.actor);
  return {
    id: run.id,
    name: run.workflowName,
    node_id: nodeId('WFR', run.id),
    head_branch: run.headBranch,
    head_sha: run.headSha,
    path: run.workflowPath,
    display_title: run.displayTitle,
    run_number: run.runNumber,
    event: run.event,
    status: attempt.status,
    conclusion: attempt.conclusion,
    workflow_id: run.workflowId,
    check_suite_id: attempt.checkSuiteId,
    check_suite_node_id: nodeId('CS', attempt.checkSuiteId),
    url: runUrl,
    html_url: `${origins.web}/${repository.path}/actions/runs/${run.id}`,
    pull_requests: [],
    created_at: githubTime(run.createdAt),
    updated_at: githubTime(attempt.updatedAt),
    actor,
    run_attempt: attempt.number,
    referenced_workflows: [],
    run_started_at: githubTime(attempt.startedAt),
    triggering_actor: userBody(origins, attempt.triggeringActor),
    jobs_url: `${runUrl}/jobs`,
    logs_url: `${runUrl}/logs`,
    check_suite_url: `${u}/check-suites/${attempt.checkSuiteId}`,
    artifacts_url: `${runUrl}/artifacts`,
    cancel_url: `${runUrl}/cancel`,
    rerun_url: `${runUrl}/rerun`,
    previous_attempt_url: attempt.number > 1 ? `${runUrl}/attempts/${attempt.number - 1}` : null,
    workflow_url: `${u}/actions/workflows/${run.workflowId}`,
    head_commit: {
      id: run.headSha,
      tree_id: createHash('sha1').update(`tree:${run.headSha}`).digest('hex'),
      message: run.displayTitle,
      timestamp: githubTime(run.createdAt),
      author: { name: run.actor, email: `${run.actor}@users.noreply.github.com` },
      committer: { name: 'GitHub', email: 'noreply@github.com' },
    },
    repository: lite,
    head_repository: lite,
  };
}

// GitHub reports the job's steps; one "Set up job" step stands for them, ending as the job ended.
function stepsOf(job: SandboxJob) {
  if (job.status === 'queued' || job.status === 'waiting') return [];
  const stepConclusion: Record<string, string> = {
    success: 'success',
    skipped: 'skipped',
    cancelled: 'cancelled',
  };
  return [
    {
      name: 'Set up job',
      status: job.status === 'completed' ? 'completed' : 'in_progress',
      conclusion: job.conclusion === null ? null : (stepConclusion[job.conclusion] ?? 'failure'),
      number: 1,
      started_at: time(job.startedAt),
      completed_at: time(job.completedAt),
    },
  ];
}

/** A job, as `GET /repos/{o}/{r}/actions/jobs/{id}` and `workflow_job` payloads show it. */
export function jobBody(origins: Origins, repository: SandboxRepository, run: SandboxRun, job: SandboxJob) {
  const u = `${origins.api}/repos/${repository.path}`;
  const runner = job.runnerId === null;
  return {
    id: job.id,
    run_id: run.id,
    workflow_name: run.workflowName,
    head_branch: run.headBranch,
    run_url: `${u}/actions/runs/${run.id}`,
    run_attempt: job.attempt,
    node_id: nodeId('CR', job.id),
    head_sha: run.headSha,
    url: `${u}/actions/jobs/${job.id}`,
    html_url: `${origins.web}/${repository.path}/actions/runs/${run.id}/job/${job.id}`,
    status: job.status,
    conclusion: job.conclusion,
    created_at: githubTime(job.createdAt),
    // GitHub fills started_at with the creation time until a runner picks the job up.
    started_at: githubTime(job.startedAt ?? job.createdAt),
    completed_at: time(job.completedAt),
    name: job.name,
    steps: stepsOf(job),
    // In Actions a job is a check run with the same id.
    check_run_url: `${u}/check-runs/${job.id}`,
    labels: job.labels,
    runner_id: runner ? null : job.runnerId,
    runner_name: runner ? null : `GitHub Actions ${job.runnerId}`,
    runner_group_id: runner ? null : 0,
    runner_group_name: runner ? null : 'GitHub Actions',
  };
}
