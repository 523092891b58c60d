// Response bodies of the GitHub stand-in's App routes, shaped like api.github.com's (checked against
// GitHub's OpenAPI description in test/fixtures/github-apps.openapi.json and recorded responses).
import type { SandboxRepository } from '../shared/host-state.ts';
import {
  type AppInstallation,
  type GithubAccount,
  type GithubApp,
  type InstallationToken,
  nameOf,
  ownerOf,
} from './app-registry.ts';
import { githubTime, REST_DOCS } from './responses.ts';

const APPS_DOCS = `${REST_DOCS}/apps/apps`;
export const appDocs = {
  app: `${APPS_DOCS}#get-the-authenticated-app`,
  installations: `${APPS_DOCS}#list-installations-for-the-authenticated-app`,
  installation: `${APPS_DOCS}#get-an-installation-for-the-authenticated-app`,
  accessToken: `${APPS_DOCS}#create-an-installation-access-token-for-an-app`,
  repoInstallation: `${APPS_DOCS}#get-a-repository-installation-for-the-authenticated-app`,
  orgInstallation: `${APPS_DOCS}#get-an-organization-installation-for-the-authenticated-app`,
  userInstallation: `${APPS_DOCS}#get-a-user-installation-for-the-authenticated-app`,
  installationRepositories: `${REST_DOCS}/apps/installations#list-repositories-accessible-to-the-app-installation`,
} as const;

/** Where the API and the web pages are: the same host, the API under `/api/v3` on an Enterprise Server. */
export interface AppUrls {
  api: string;
  web: string;
}

/** GitHub's legacy global node id: base64 of `0<length of type>:<Type><id>`. */
const nodeId = (type: string, id: number) =>
  Buffer.from(`0${type.length}:${type}${id}`).toString('base64').replace(/=+$/, '');

export function accountBody(account: GithubAccount, urls: AppUrls) {
  const url = `${urls.api}/users/${account.login}`;
  return {
    login: account.login,
    id: account.id,
    node_id: nodeId(account.type, account.id),
    avatar_url: `https://avatars.githubusercontent.com/u/${account.id}?v=4`,
    gravatar_id: '',
    url,
    html_url: `${urls.web}/${account.login}`,
    followers_url: `${url}/followers`,
    following_url: `${url}/following{/other_user}`,
    gists_url: `${url}/gists{/gist_id}`,
    starred_url: `${url}/starred{/owner}{/repo}`,
    subscriptions_url: `${url}/subscriptions`,
    organizations_url: `${url}/orgs`,
    repos_url: `${url}/repos`,
    events_url: `${url}/events{/privacy}`,
    received_events_url: `${url}/received_events`,
    type: account.type,
    user_view_type: 'public',
    site_admin: false,
  };
}

export function appBody(app: GithubApp, installationsCount: number, urls: AppUrls) {
  return {
    id: app.id,
    client_id: app.clientId,
    slug: app.slug,
    node_id: nodeId('Integration', app.id),
    owner: accountBody(app.owner, urls),
    name: app.name,
    description: '',
    external_url: `${urls.web}/apps/${app.slug}`,
    html_url: `${urls.web}/apps/${app.slug}`,
    created_at: githubTime(app.createdAt),
    updated_at: githubTime(app.createdAt),
    permissions: app.permissions,
    events: [],
    installations_count: installationsCount,
  };
}

export function installationBody(installation: AppInstallation, urls: AppUrls) {
  const { app, account } = installation;
  return {
    id: installation.id,
    client_id: app.clientId,
    account: accountBody(account, urls),
    repository_selection: installation.repositorySelection,
    access_tokens_url: `${urls.api}/app/installations/${installation.id}/access_tokens`,
    repositories_url: `${urls.api}/installation/repositories`,
    html_url: `${urls.web}/settings/installations/${installation.id}`,
    app_id: app.id,
    app_slug: app.slug,
    target_id: account.id,
    target_type: account.type,
    permissions: installation.permissions,
    events: [],
    created_at: installation.createdAt.toISOString(),
    updated_at: installation.createdAt.toISOString(),
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [],
    suspended_by: null,
    suspended_at: null,
  };
}

export function repositoryBody(repository: SandboxRepository, owner: GithubAccount, urls: AppUrls) {
  const url = `${urls.api}/repos/${repository.path}`;
  const created = githubTime(new Date(0));
  const links = Object.fromEntries(
    [
      ['forks_url', '/forks'],
      ['keys_url', '/keys{/key_id}'],
      ['collaborators_url', '/collaborators{/collaborator}'],
      ['teams_url', '/teams'],
      ['hooks_url', '/hooks'],
      ['issue_events_url', '/issues/events{/number}'],
      ['events_url', '/events'],
      ['assignees_url', '/assignees{/user}'],
      ['branches_url', '/branches{/branch}'],
      ['tags_url', '/tags'],
      ['blobs_url', '/git/blobs{/sha}'],
      ['git_tags_url', '/git/tags{/sha}'],
      ['git_refs_url', '/git/refs{/sha}'],
      ['trees_url', '/git/trees{/sha}'],
      ['statuses_url', '/statuses/{sha}'],
      ['languages_url', '/languages'],
      ['stargazers_url', '/stargazers'],
      ['contributors_url', '/contributors'],
      ['subscribers_url', '/subscribers'],
      ['subscription_url', '/subscription'],
      ['commits_url', '/commits{/sha}'],
      ['git_commits_url', '/git/commits{/sha}'],
      ['comments_url', '/comments{/number}'],
      ['issue_comment_url', '/issues/comments{/number}'],
      ['contents_url', '/contents/{+path}'],
      ['compare_url', '/compare/{base}...{head}'],
      ['merges_url', '/merges'],
      ['archive_url', '/{archive_format}{/ref}'],
      ['downloads_url', '/downloads'],
      ['issues_url', '/issues{/number}'],
      ['pulls_url', '/pulls{/number}'],
      ['milestones_url', '/milestones{/number}'],
      ['notifications_url', '/notifications{?since,all,participating}'],
      ['labels_url', '/labels{/name}'],
      ['releases_url', '/releases{/id}'],
      ['deployments_url', '/deployments'],
    ].map(([field, suffix]) => [field, `${url}${suffix}`]),
  );
  const web = `${urls.web}/${repository.path}`;
  return {
    id: repository.id,
    node_id: nodeId('Repository', repository.id),
    name: nameOf(repository),
    full_name: `${ownerOf(repository)}/${nameOf(repository)}`,
    private: true,
    owner: accountBody(owner, urls),
    html_url: web,
    description: null,
    fork: false,
    url,
    ...links,
    created_at: created,
    updated_at: created,
    pushed_at: created,
    git_url: `git://${new URL(urls.web).host}/${repository.path}.git`,
    ssh_url: `git@${new URL(urls.web).hostname}:${repository.path}.git`,
    clone_url: `${web}.git`,
    svn_url: web,
    homepage: null,
    size: 0,
    stargazers_count: 0,
    watchers_count: 0,
    language: null,
    has_issues: true,
    has_projects: true,
    has_downloads: true,
    has_wiki: true,
    has_pages: false,
    forks_count: 0,
    mirror_url: null,
    archived: false,
    disabled: false,
    open_issues_count: 0,
    license: null,
    allow_forking: true,
    is_template: false,
    web_commit_signoff_required: false,
    topics: [],
    visibility: 'private',
    forks: 0,
    open_issues: 0,
    watchers: 0,
    default_branch: 'main',
  };
}

export function tokenBody(token: InstallationToken, repositories: SandboxRepository[], urls: AppUrls) {
  const { installation } = token;
  const body: Record<string, unknown> = {
    token: token.token,
    expires_at: githubTime(new Date(token.expiresAtMs)),
    permissions: token.permissions,
    repository_selection: token.repositoryIds ? 'selected' : installation.repositorySelection,
  };
  // GitHub lists the repositories only for a token narrowed to some of them.
  if (token.repositoryIds) {
    body.repositories = repositories.map((repository) =>
      repositoryBody(repository, installation.account, urls),
    );
  }
  return body;
}
