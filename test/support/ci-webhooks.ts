// CI platforms pointed at the running service as their users would point them: a repository
// webhook made through GitHub's REST API, a project hook through GitLab's, and runs or pipelines
// started on the stand-ins with each job's own OIDC token.
import { Gitlab } from '@gitbeaker/rest';
import { Octokit } from '@octokit/rest';
import type { StandIns } from '../../sandbox/stand-ins.ts';

export const GITHUB_WEBHOOK_SECRET = 'e2e-github-webhook-secret';
export const GITLAB_WEBHOOK_TOKEN = 'e2e-gitlab-webhook-token';

/** The service's environment for these secrets, keyed by the sandbox's host ids. */
export const WEBHOOK_SECRETS_ENV = {
  DEPLOYKEY_WEBHOOK_GITHUB_SECRET: GITHUB_WEBHOOK_SECRET,
  DEPLOYKEY_WEBHOOK_GITLAB_SECRET: GITLAB_WEBHOOK_TOKEN,
};

export interface StartedJob {
  /** The run (GitHub) or pipeline (GitLab) id. */
  runId: number;
  jobId: number;
  /** The OIDC token the job would get, audience `deploykey-rotator`. */
  idToken: string;
}

/** Throws with the answer when a platform call did not succeed (usable outside vitest, by benchmarks). */
function ensure(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

export const githubApi = (standIns: StandIns) =>
  new Octokit({ baseUrl: standIns.github.api.url, auth: standIns.github.token, log: quiet });

export const gitlabApi = (standIns: StandIns) =>
  new Gitlab({ host: new URL(standIns.gitlab.api.url).origin, token: standIns.gitlab.token });

/** Settings → Webhooks → Add webhook on the repository: JSON, a secret, Workflow jobs and runs. */
export async function addGithubHook(
  standIns: StandIns,
  serviceUrl: string,
  repository: string,
  secret = GITHUB_WEBHOOK_SECRET,
) {
  const [owner, repo] = repository.split('/') as [string, string];
  const { data } = await githubApi(standIns).rest.repos.createWebhook({
    owner,
    repo,
    config: { url: `${serviceUrl}/v1/webhooks/github/github`, content_type: 'json', secret },
    events: ['workflow_job', 'workflow_run'],
  });
  return data.id;
}

/** Organisation settings → Webhooks: every repository of `org`, Workflow jobs and runs. */
export async function addGithubOrgHook(standIns: StandIns, serviceUrl: string, org: string) {
  const { data } = await githubApi(standIns).rest.orgs.createWebhook({
    org,
    name: 'web',
    config: {
      url: `${serviceUrl}/v1/webhooks/github/github`,
      content_type: 'json',
      secret: GITHUB_WEBHOOK_SECRET,
    },
    events: ['workflow_job', 'workflow_run'],
  });
  return data.id;
}

/** Group settings → Webhooks: every project under `group`, Job and Pipeline events. */
export async function addGitlabGroupHook(standIns: StandIns, serviceUrl: string, group: string) {
  const hook = await gitlabApi(standIns).GroupHooks.add(group, `${serviceUrl}/v1/webhooks/gitlab/gitlab`, {
    token: GITLAB_WEBHOOK_TOKEN,
    jobEvents: true,
    pipelineEvents: true,
    pushEvents: false,
  });
  return hook.id;
}

/** Settings → Webhooks on the project: the secret token, Job events and Pipeline events only. */
export async function addGitlabHook(
  standIns: StandIns,
  serviceUrl: string,
  project: string,
  token = GITLAB_WEBHOOK_TOKEN,
) {
  const hook = await gitlabApi(standIns).ProjectHooks.add(
    project,
    `${serviceUrl}/v1/webhooks/gitlab/gitlab`,
    {
      token,
      jobEvents: true,
      pipelineEvents: true,
      pushEvents: false,
    },
  );
  return hook.id;
}

async function sandboxPost(origin: string, path: string, body: unknown) {
  const response = await fetch(`${origin}/_sandbox/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  ensure(response.status < 300, `POST /_sandbox/${path} answered ${response.status}: ${text}`);
  return JSON.parse(text) as {
    run?: { id: number };
    pipeline?: { id: number };
    jobs: { id: number }[];
    id_tokens: Record<string, string>;
  };
}

/** A workflow run with `jobs` in progress, each with its OIDC token. */
export async function startGithubRun(standIns: StandIns, repository: string, jobs = ['train']) {
  const started = await sandboxPost(standIns.github.api.url, 'actions/runs', { repository, jobs });
  return started.jobs.map(
    (job): StartedJob => ({ runId: started.run!.id, jobId: job.id, idToken: started.id_tokens[job.id]! }),
  );
}

/** A pipeline with `jobs` running, each with its OIDC token. */
export async function startGitlabPipeline(standIns: StandIns, project: string, jobs = ['train']) {
  const origin = new URL(standIns.gitlab.api.url).origin;
  const started = await sandboxPost(origin, 'ci/pipelines', { project, jobs });
  return started.jobs.map(
    (job): StartedJob => ({
      runId: started.pipeline!.id,
      jobId: job.id,
      idToken: started.id_tokens[job.id]!,
    }),
  );
}

/** Ends a GitLab job as its runner would report it (there is no public API for a failure). */
export async function endGitlabJob(standIns: StandIns, jobId: number, how: 'failed' | 'time-out') {
  const origin = new URL(standIns.gitlab.api.url).origin;
  const path = how === 'time-out' ? `ci/jobs/${jobId}/time-out` : `ci/jobs/${jobId}/finish`;
  await sandboxPost(
    origin,
    path,
    how === 'failed' ? { status: 'failed', failure_reason: 'script_failure' } : {},
  );
}

/** A hook's deliveries as the platform's API lists them, each with the service's answer. */
export interface DeliveryAnswer {
  /** GitHub's delivery id (for redelivery) or GitLab's hook log id (for resend). */
  id: number;
  event: string;
  statusCode: number | null;
  answer: string;
}

/** `GET /repos/{o}/{r}/hooks/{id}/deliveries` and each delivery's detail, oldest first. */
export async function githubDeliveries(standIns: StandIns, repository: string, hookId: number) {
  const [owner, repo] = repository.split('/') as [string, string];
  const octokit = githubApi(standIns);
  const { data } = await octokit.rest.repos.listWebhookDeliveries({
    owner,
    repo,
    hook_id: hookId,
    per_page: 100,
  });
  const answers: (DeliveryAnswer & {
    guid: string;
    action: string | null;
    redelivery: boolean;
    runId: number | undefined;
  })[] = [];
  for (const item of data.reverse()) {
    const detail = await octokit.rest.repos.getWebhookDelivery({
      owner,
      repo,
      hook_id: hookId,
      delivery_id: item.id,
    });
    const payload = detail.data.response.payload;
    const sent = (detail.data.request.payload ?? {}) as {
      workflow_run?: { id: number };
      workflow_job?: { run_id: number };
    };
    answers.push({
      runId: sent.workflow_run?.id ?? sent.workflow_job?.run_id,
      id: item.id,
      guid: item.guid,
      event: item.event,
      action: item.action,
      redelivery: item.redelivery,
      statusCode: item.status_code || null,
      answer: typeof payload === 'string' ? payload : '',
    });
  }
  return answers;
}

/** `GET /projects/:id/hooks/:hook_id/events`, oldest first. */
export async function gitlabHookEvents(standIns: StandIns, project: string, hookId: number) {
  const url = `${standIns.gitlab.api.url}/projects/${encodeURIComponent(project)}/hooks/${hookId}/events`;
  const response = await fetch(url, { headers: { 'PRIVATE-TOKEN': standIns.gitlab.token } });
  ensure(response.status === 200, `hook events answered ${response.status}`);
  const logs = (await response.json()) as {
    id: number;
    request_headers: Record<string, string>;
    request_data: { object_kind: string; build_id?: number; object_attributes?: { id: number } };
    response_status: string;
    response_body: string;
  }[];
  return logs
    .map((log) => ({
      id: log.id,
      event: log.request_headers['X-Gitlab-Event'] ?? '',
      data: log.request_data,
      statusCode: /^\d+$/.test(log.response_status) ? Number(log.response_status) : null,
      answer: log.response_body,
    }))
    .sort((a, b) => a.id - b.id);
}
