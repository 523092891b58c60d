// The calls a GitLab client makes first: who am I (`GET /user`), which GitLab is this
// (`GET /version`, `GET /metadata`) and the project itself (`GET /projects/:id`), shaped like the
// `UserWithAdmin`, `Metadata` and `ProjectWithAccess` entities for an administrator.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SandboxRepository } from '../shared/host-state.ts';
import { renderProjectIdentity } from './deploy-keys.ts';
import type { GitlabRoutes } from './routes.ts';

const GITLAB_VERSION = { version: '17.11.1', revision: '6d6ea7ba2c3' };
const SANDBOX_USER = { id: 1, username: 'sandbox-admin', name: 'Sandbox Admin' };

export function registerInstanceRoutes(app: FastifyInstance, routes: GitlabRoutes): void {
  const startedAt = new Date().toISOString();

  // `/version` is the deprecated alias of `/metadata` and answers the same.
  for (const path of ['version', 'metadata']) {
    app.get(`${routes.api}/${path}`, async (request, reply) => {
      if (!routes.authenticate(request, reply)) return reply;
      return {
        ...GITLAB_VERSION,
        kas: { enabled: false, externalUrl: null, version: null },
        enterprise: false,
      };
    });
  }

  app.get(`${routes.api}/user`, async (request, reply) => {
    if (!routes.authenticate(request, reply)) return reply;
    return userBody(routes.origin(request), startedAt);
  });

  app.get<{ Params: { id: string } }>(`${routes.api}/projects/:id`, async (request, reply) => {
    const project = routes.resolveProject(request, reply);
    if (!project) return reply;
    return projectBody(project, routes, request);
  });
}

function userBody(origin: string, startedAt: string) {
  return {
    ...SANDBOX_USER,
    state: 'active',
    locked: false,
    avatar_url: null,
    web_url: `${origin}/${SANDBOX_USER.username}`,
    created_at: startedAt,
    bio: '',
    location: '',
    public_email: null,
    skype: '',
    linkedin: '',
    twitter: '',
    discord: '',
    website_url: '',
    organization: '',
    job_title: '',
    pronouns: null,
    bot: false,
    work_information: null,
    followers: 0,
    following: 0,
    local_time: null,
    last_sign_in_at: startedAt,
    confirmed_at: startedAt,
    last_activity_on: startedAt.slice(0, 10),
    email: 'sandbox-admin@deploykey-rotator.invalid',
    theme_id: 1,
    color_scheme_id: 1,
    projects_limit: 100_000,
    current_sign_in_at: startedAt,
    identities: [],
    can_create_group: true,
    can_create_project: true,
    two_factor_enabled: false,
    external: false,
    private_profile: false,
    commit_email: 'sandbox-admin@deploykey-rotator.invalid',
    is_admin: true,
    note: null,
    namespace_id: SANDBOX_USER.id,
    created_by: null,
  };
}

function projectBody(project: SandboxRepository, routes: GitlabRoutes, request: FastifyRequest) {
  const origin = routes.origin(request);
  const identity = renderProjectIdentity(project);
  const namespacePath = project.path.split('/').slice(0, -1).join('/');
  const webUrl = `${origin}/${project.path}`;
  const apiUrl = `${origin}${routes.api}/projects/${project.id}`;
  return {
    ...identity,
    default_branch: 'main',
    tag_list: [],
    topics: [],
    ssh_url_to_repo: routes.sshCloneUrl(project.path) ?? `git@${request.host}:${project.path}.git`,
    http_url_to_repo: `${webUrl}.git`,
    web_url: webUrl,
    readme_url: `${webUrl}/-/blob/main/README.md`,
    forks_count: 0,
    avatar_url: null,
    star_count: 0,
    last_activity_at: identity.created_at,
    namespace: {
      id: project.id,
      name: namespacePath.split('/').at(-1) ?? namespacePath,
      path: namespacePath.split('/').at(-1) ?? namespacePath,
      kind: 'group',
      full_path: namespacePath,
      parent_id: null,
      avatar_url: null,
      web_url: `${origin}/groups/${namespacePath}`,
    },
    container_registry_image_prefix: `${request.host}/${project.path}`,
    _links: {
      self: apiUrl,
      issues: `${apiUrl}/issues`,
      merge_requests: `${apiUrl}/merge_requests`,
      repo_branches: `${apiUrl}/repository/branches`,
      labels: `${apiUrl}/labels`,
      events: `${apiUrl}/events`,
      members: `${apiUrl}/members`,
      cluster_agents: `${apiUrl}/cluster_agents`,
    },
    empty_repo: false,
    archived: false,
    visibility: 'private',
    owner: null,
    resolve_outdated_diff_discussions: false,
    repository_object_format: 'sha1',
    issues_enabled: true,
    merge_requests_enabled: true,
    wiki_enabled: true,
    jobs_enabled: true,
    snippets_enabled: true,
    container_registry_enabled: false,
    creator_id: SANDBOX_USER.id,
    import_status: 'none',
    open_issues_count: 0,
    ci_config_path: null,
    shared_with_groups: [],
    only_allow_merge_if_pipeline_succeeds: false,
    request_access_enabled: true,
    permissions: { project_access: null, group_access: { access_level: 50, notification_level: 3 } },
  };
}
