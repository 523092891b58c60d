// Bodies of the GitHub calls clients make before anything else: the API root, the authenticated
// user, the rate limits and the repository, shaped as GitHub's OpenAPI description documents them
// (`root`, `private-user`, `rate-limit-overview`, `full-repository`).
import { createHash } from 'node:crypto';
import type { SandboxRepository } from '../shared/host-state.ts';
import type { RateLimitSnapshot } from './rate-limit.ts';
import { githubTime, SANDBOX_LOGIN } from './responses.ts';

const idOf = (login: string) =>
  Number.parseInt(createHash('sha256').update(login).digest('hex').slice(0, 7), 16);
const nodeId = (prefix: string, id: number) => `${prefix}_${Buffer.from(`0:${id}`).toString('base64url')}`;

export function simpleUser(login: string, type: 'User' | 'Organization', api: string, web: string) {
  const url = `${api}/${type === 'User' ? 'users' : 'orgs'}/${login}`;
  const userUrl = `${api}/users/${login}`;
  const id = idOf(login);
  return {
    login,
    id,
    node_id: nodeId(type === 'User' ? 'U' : 'O', id),
    avatar_url: `${web}/avatars/u/${id}`,
    gravatar_id: '',
    url,
    html_url: `${web}/${login}`,
    followers_url: `${userUrl}/followers`,
    following_url: `${userUrl}/following{/other_user}`,
    gists_url: `${userUrl}/gists{/gist_id}`,
    starred_url: `${userUrl}/starred{/owner}{/repo}`,
    subscriptions_url: `${userUrl}/subscriptions`,
    organizations_url: `${userUrl}/orgs`,
    repos_url: `${url}/repos`,
    events_url: `${userUrl}/events{/privacy}`,
    received_events_url: `${userUrl}/received_events`,
    type,
    user_view_type: 'public',
    site_admin: false,
  };
}

export function privateUserBody(api: string, web: string, createdAt: Date, privateRepos: number) {
  return {
    ...simpleUser(SANDBOX_LOGIN, 'User', api, web),
    name: 'Sandbox Admin',
    company: null,
    blog: '',
    location: null,
    email: null,
    hireable: null,
    bio: null,
    twitter_username: null,
    notification_email: null,
    public_repos: 0,
    public_gists: 0,
    followers: 0,
    following: 0,
    created_at: githubTime(createdAt),
    updated_at: githubTime(createdAt),
    private_gists: 0,
    total_private_repos: privateRepos,
    owned_private_repos: privateRepos,
    disk_usage: 0,
    collaborators: 0,
    two_factor_authentication: false,
    plan: { name: 'pro', space: 976562499, collaborators: 0, private_repos: 9999 },
  };
}

const uriTemplates = (url: string): Record<string, string> => ({
  archive_url: `${url}/{archive_format}{/ref}`,
  assignees_url: `${url}/assignees{/user}`,
  blobs_url: `${url}/git/blobs{/sha}`,
  branches_url: `${url}/branches{/branch}`,
  collaborators_url: `${url}/collaborators{/collaborator}`,
  comments_url: `${url}/comments{/number}`,
  commits_url: `${url}/commits{/sha}`,
  compare_url: `${url}/compare/{base}...{head}`,
  contents_url: `${url}/contents/{+path}`,
  contributors_url: `${url}/contributors`,
  deployments_url: `${url}/deployments`,
  downloads_url: `${url}/downloads`,
  events_url: `${url}/events`,
  forks_url: `${url}/forks`,
  git_commits_url: `${url}/git/commits{/sha}`,
  git_refs_url: `${url}/git/refs{/sha}`,
  git_tags_url: `${url}/git/tags{/sha}`,
  hooks_url: `${url}/hooks`,
  issue_comment_url: `${url}/issues/comments{/number}`,
  issue_events_url: `${url}/issues/events{/number}`,
  issues_url: `${url}/issues{/number}`,
  keys_url: `${url}/keys{/key_id}`,
  labels_url: `${url}/labels{/name}`,
  languages_url: `${url}/languages`,
  merges_url: `${url}/merges`,
  milestones_url: `${url}/milestones{/number}`,
  notifications_url: `${url}/notifications{?since,all,participating}`,
  pulls_url: `${url}/pulls{/number}`,
  releases_url: `${url}/releases{/id}`,
  stargazers_url: `${url}/stargazers`,
  statuses_url: `${url}/statuses/{sha}`,
  subscribers_url: `${url}/subscribers`,
  subscription_url: `${url}/subscription`,
  tags_url: `${url}/tags`,
  teams_url: `${url}/teams`,
  trees_url: `${url}/git/trees{/sha}`,
});

export function repositoryBody(
  repository: SandboxRepository,
  urls: { api: string; web: string; host: string; ssh: string | undefined },
) {
  const [ownerLogin = '', name = ''] = repository.path.split('/');
  const url = `${urls.api}/repos/${repository.path}`;
  const owner = simpleUser(ownerLogin, 'Organization', urls.api, urls.web);
  const time = githubTime(repository.createdAt);
  return {
    id: repository.id,
    node_id: nodeId('R', repository.id),
    name,
    full_name: repository.path,
    private: true,
    owner,
    html_url: `${urls.web}/${repository.path}`,
    description: null,
    fork: false,
    url,
    ...uriTemplates(url),
    git_url: `git://${urls.host}/${repository.path}.git`,
    ssh_url: urls.ssh ?? `git@${urls.host}:${repository.path}.git`,
    clone_url: `${urls.web}/${repository.path}.git`,
    svn_url: `${urls.web}/${repository.path}`,
    mirror_url: null,
    homepage: null,
    size: 1,
    stargazers_count: 0,
    watchers_count: 0,
    language: null,
    has_issues: true,
    has_projects: true,
    has_downloads: true,
    has_wiki: true,
    has_pages: false,
    has_discussions: false,
    forks_count: 0,
    archived: false,
    disabled: false,
    open_issues_count: 0,
    license: null,
    allow_forking: false,
    is_template: false,
    web_commit_signoff_required: false,
    topics: [],
    visibility: 'private',
    forks: 0,
    open_issues: 0,
    watchers: 0,
    default_branch: 'main',
    permissions: { admin: true, maintain: true, push: true, triage: true, pull: true },
    allow_squash_merge: true,
    allow_merge_commit: true,
    allow_rebase_merge: true,
    allow_auto_merge: false,
    delete_branch_on_merge: false,
    allow_update_branch: false,
    use_squash_pr_title_as_default: false,
    squash_merge_commit_message: 'COMMIT_MESSAGES',
    squash_merge_commit_title: 'COMMIT_OR_PR_TITLE',
    merge_commit_message: 'PR_TITLE',
    merge_commit_title: 'MERGE_MESSAGE',
    temp_clone_token: '',
    organization: owner,
    network_count: 0,
    subscribers_count: 0,
    pushed_at: time,
    created_at: time,
    updated_at: time,
  };
}

export function rootBody(api: string, web: string) {
  return {
    current_user_url: `${api}/user`,
    current_user_authorizations_html_url: `${web}/settings/connections/applications{/client_id}`,
    authorizations_url: `${api}/authorizations`,
    code_search_url: `${api}/search/code?q={query}{&page,per_page,sort,order}`,
    commit_search_url: `${api}/search/commits?q={query}{&page,per_page,sort,order}`,
    emails_url: `${api}/user/emails`,
    emojis_url: `${api}/emojis`,
    events_url: `${api}/events`,
    feeds_url: `${api}/feeds`,
    followers_url: `${api}/user/followers`,
    following_url: `${api}/user/following{/target}`,
    gists_url: `${api}/gists{/gist_id}`,
    hub_url: `${api}/hub`,
    issue_search_url: `${api}/search/issues?q={query}{&page,per_page,sort,order}`,
    issues_url: `${api}/issues`,
    keys_url: `${api}/user/keys`,
    label_search_url: `${api}/search/labels?q={query}&repository_id={repository_id}{&page,per_page}`,
    notifications_url: `${api}/notifications`,
    organization_url: `${api}/orgs/{org}`,
    organization_repositories_url: `${api}/orgs/{org}/repos{?type,page,per_page,sort}`,
    organization_teams_url: `${api}/orgs/{org}/teams`,
    public_gists_url: `${api}/gists/public`,
    rate_limit_url: `${api}/rate_limit`,
    repository_url: `${api}/repos/{owner}/{repo}`,
    repository_search_url: `${api}/search/repositories?q={query}{&page,per_page,sort,order}`,
    current_user_repositories_url: `${api}/user/repos{?type,page,per_page,sort}`,
    starred_url: `${api}/user/starred{/owner}{/repo}`,
    starred_gists_url: `${api}/gists/starred`,
    topic_search_url: `${api}/search/topics?q={query}{&page,per_page}`,
    user_url: `${api}/users/{user}`,
    user_organizations_url: `${api}/user/orgs`,
    user_repositories_url: `${api}/users/{user}/repos{?type,page,per_page,sort}`,
    user_search_url: `${api}/search/users?q={query}{&page,per_page,sort,order}`,
  };
}

// GitHub's documented limits per resource; only `core` is counted here.
const OTHER_RESOURCES: Record<string, number> = {
  search: 30,
  graphql: 5000,
  integration_manifest: 5000,
  source_import: 100,
  code_scanning_upload: 1000,
  actions_runner_registration: 10000,
  scim: 15000,
  dependency_snapshots: 100,
  code_search: 10,
  audit_log: 1750,
};

export function rateLimitBody(core: RateLimitSnapshot) {
  const window = (limit: number, seconds: number) => ({
    limit,
    used: 0,
    remaining: limit,
    reset: Math.ceil(Date.now() / 1000) + seconds,
  });
  const resources: Record<string, RateLimitSnapshot> = { core };
  for (const [name, limit] of Object.entries(OTHER_RESOURCES)) {
    resources[name] = window(limit, name === 'search' || name === 'code_search' ? 60 : 3600);
  }
  return { resources, rate: core };
}
