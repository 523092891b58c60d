// Response bodies of the Gitea stand-in, shaped as Gitea's `services/convert` writes them and checked
// against Gitea's swagger description (test/fixtures/gitea-swagger.v1.json).
import type { SandboxDeployKey, SandboxRepository } from '../shared/host-state.ts';
import type { GiteaUser } from './auth.ts';
import type { GiteaPublicKey } from './deploy-keys.ts';

export const GITEA_VERSION = '1.27.1';

// `setting.API` defaults, what `GET /settings/api` reports and what the list routes enforce.
export const API_SETTINGS = {
  max_response_items: 50,
  default_paging_num: 30,
  default_git_trees_per_page: 1000,
  default_max_blob_size: 10_485_760,
  default_max_response_size: 104_857_600,
};

/** Gitea writes times in whole seconds with the server's zone; the sandbox runs in UTC. */
export const giteaTime = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
// An unset `timeutil.TimeStamp` and an unset Go `time.Time`, as Gitea serializes them.
const UNSET_TIMESTAMP = '1970-01-01T00:00:00Z';
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** `{message, url}` (`APIError`); `url` is the instance's swagger page. */
export function apiError(origin: string, message: string) {
  return { message, url: `${origin}/api/swagger` };
}

export interface Permission {
  admin: boolean;
  push: boolean;
  pull: boolean;
}

/** `convert.ToUser` as its owner or a site administrator sees it (email and login details shown). */
export function userBody(origin: string, user: GiteaUser, createdAt: Date) {
  return {
    id: user.id,
    login: user.login,
    login_name: '',
    source_id: 0,
    full_name: user.fullName,
    email: user.email,
    avatar_url: `${origin}/avatars/${user.id}`,
    html_url: `${origin}/${user.login}`,
    language: 'en-US',
    is_admin: user.isAdmin,
    last_login: giteaTime(createdAt),
    created: giteaTime(createdAt),
    restricted: false,
    active: true,
    prohibit_login: false,
    location: '',
    website: '',
    description: '',
    visibility: 'public',
    followers_count: 0,
    following_count: 0,
    starred_repos_count: 0,
    // Not in the swagger description: Gitea's User.MarshalJSON adds it for older clients.
    username: user.login,
  };
}

export interface RepositoryView {
  origin: string;
  repository: SandboxRepository;
  owner: GiteaUser;
  permission: Permission;
  sshCloneUrl: string;
  createdAt: Date;
}

/** `convert.ToRepo` for a private repository with the default units, as the given permission sees it. */
export function repositoryBody(view: RepositoryView) {
  const { origin, repository, owner } = view;
  const [, name = repository.path] = repository.path.split('/');
  const html = `${origin}/${repository.path}`;
  const at = giteaTime(view.createdAt);
  return {
    ...repositoryFlags(),
    id: repository.id,
    owner: userBody(origin, owner, view.createdAt),
    name,
    full_name: repository.path,
    description: '',
    private: true,
    size: 0,
    language: '',
    languages_url: `${origin}/api/v1/repos/${repository.path}/languages`,
    html_url: html,
    url: `${origin}/api/v1/repos/${repository.path}`,
    link: '',
    ssh_url: view.sshCloneUrl,
    clone_url: `${html}.git`,
    original_url: '',
    website: '',
    default_branch: 'main',
    object_format_name: 'sha1',
    created_at: at,
    updated_at: at,
    archived_at: UNSET_TIMESTAMP,
    permissions: view.permission,
    internal_tracker: {
      enable_time_tracker: true,
      allow_only_contributors_to_track_time: true,
      enable_issue_dependencies: true,
    },
    mirror_interval: '',
    mirror_updated: ZERO_TIME,
    mirror_last_sync_at: ZERO_TIME,
    topics: [],
    licenses: [],
    avatar_url: '',
  };
}

function repositoryFlags() {
  return {
    empty: false,
    fork: false,
    template: false,
    mirror: false,
    internal: false,
    archived: false,
    stars_count: 0,
    forks_count: 0,
    watchers_count: 1,
    branch_count: 1,
    open_issues_count: 0,
    open_pr_counter: 0,
    release_counter: 0,
    has_code: true,
    has_issues: true,
    has_wiki: true,
    has_pull_requests: true,
    has_projects: true,
    projects_mode: 'all',
    has_releases: true,
    has_packages: true,
    has_actions: true,
    ignore_whitespace_conflicts: false,
    allow_merge_commits: true,
    allow_rebase: true,
    allow_rebase_explicit: true,
    allow_squash_merge: true,
    allow_fast_forward_only_merge: true,
    allow_rebase_update: true,
    allow_merge_update: true,
    allow_manual_merge: false,
    autodetect_manual_merge: false,
    default_delete_branch_after_merge: false,
    default_merge_style: 'merge',
    default_update_style: 'merge',
    default_allow_maintainer_edit: false,
    default_target_branch: '',
  };
}

/**
 * `convert.ToDeployKey`; `repository` is added only where Gitea appends it (listing and reading, for
 * a site administrator or the repository's owner), never to the answer of a create.
 */
export function deployKeyBody(
  origin: string,
  repositoryPath: string,
  deployKey: SandboxDeployKey,
  publicKey: GiteaPublicKey,
  repository?: ReturnType<typeof repositoryBody>,
) {
  return {
    id: deployKey.id,
    key_id: publicKey.id,
    key: publicKey.content,
    url: `${origin}/api/v1/repos/${repositoryPath}/keys/${deployKey.id}`,
    title: deployKey.title,
    fingerprint: publicKey.fingerprint,
    created_at: giteaTime(deployKey.createdAt),
    read_only: deployKey.readOnly,
    ...(repository ? { repository } : {}),
  };
}
