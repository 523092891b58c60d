// Project and group webhooks on the GitLab stand-in: `/projects/:id/hooks` and `/groups/:id/hooks`
// (add, list, get, edit, delete), their hook logs and resend, and the Job and Pipeline events of
// every project reaching the subscribed hooks of the project and of each group above it.
// Requests to local addresses are allowed, as an administrator allows them for a self-managed GitLab.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import type { WebhookDispatcher } from '../shared/webhook-dispatcher.ts';
import { namespaceOf, stableId } from './ci-bodies.ts';
import { coerceInteger } from './deploy-keys.ts';
import { alertStatus, createGitlabDeliverer, type GitlabHook, hookLogBody } from './hook-deliveries.ts';
import { pageOf } from './routes.ts';

const API = '/api/v4';
const EVENT_FLAGS = [
  'push_events',
  'issues_events',
  'confidential_issues_events',
  'merge_requests_events',
  'tag_push_events',
  'note_events',
  'confidential_note_events',
  'job_events',
  'pipeline_events',
  'wiki_page_events',
  'deployment_events',
  'releases_events',
  'feature_flag_events',
  'repository_update_events',
  'resource_access_token_events',
];
const TRUE_VALUES = new Set(['true', '1', 't', 'yes', 'on']);

type Params = { id: string; hook_id?: string; hook_event_id?: string };
type Scope = GitlabHook['scope'];

export interface GitlabHooks {
  /** Sends an event of this project to its hooks and its groups' hooks that subscribe to `flag`. */
  emit(
    project: SandboxRepository,
    flag: 'job_events' | 'pipeline_events',
    data: Record<string, unknown>,
  ): void;
}

const toBoolean = (value: unknown) => value === true || TRUE_VALUES.has(String(value).toLowerCase());

function hookBody(hook: GitlabHook) {
  return {
    id: hook.id,
    url: hook.url,
    name: hook.name,
    description: hook.description,
    ...(hook.scope.kind === 'project'
      ? { project_id: hook.scope.projectId }
      : { group_id: hook.scope.groupId }),
    ...Object.fromEntries(EVENT_FLAGS.map((flag) => [flag, hook.events[flag] ?? false])),
    push_events_branch_filter: '',
    branch_filter_strategy: 'wildcard',
    enable_ssl_verification: hook.enableSslVerification,
    alert_status: alertStatus(hook),
    disabled_until: hook.disabledUntil?.toISOString() ?? null,
    url_variables: [],
    created_at: hook.createdAt.toISOString(),
    custom_webhook_template: null,
    custom_headers: [],
  };
}

const groupsAbove = (project: SandboxRepository) => {
  const parts = namespaceOf(project).split('/');
  return parts.map((_part, index) => parts.slice(0, index + 1).join('/'));
};

export function registerGitlabHooks(
  app: FastifyInstance,
  deps: {
    state: HostState;
    dispatcher: WebhookDispatcher;
    origin: () => string;
    isAuthenticated(request: FastifyRequest): boolean;
  },
): GitlabHooks {
  const { state } = deps;
  const hooks = new Map<number, GitlabHook>();
  const deliverer = createGitlabDeliverer(deps.dispatcher, deps.origin);
  let nextId = 1;

  const groupPaths = () => new Set(state.listRepositories().flatMap(groupsAbove));
  const scopeOf = (kind: 'project' | 'group', id: string): Scope | undefined => {
    if (kind === 'project') {
      const project = state.findRepository(id);
      return project && { kind: 'project', projectId: project.id };
    }
    const path = [...groupPaths()].find(
      (candidate) => candidate === id || String(stableId(`group:${candidate}`)) === id,
    );
    return path === undefined ? undefined : { kind: 'group', groupId: stableId(`group:${path}`), path };
  };
  const sameScope = (a: Scope, b: Scope) =>
    a.kind === 'project'
      ? b.kind === 'project' && a.projectId === b.projectId
      : b.kind === 'group' && a.groupId === b.groupId;

  const resolve = (
    kind: 'project' | 'group',
    request: FastifyRequest<{ Params: Params }>,
    reply: FastifyReply,
  ) => {
    if (!deps.isAuthenticated(request)) {
      reply.code(401).send({ message: '401 Unauthorized' });
      return undefined;
    }
    const scope = scopeOf(kind, request.params.id);
    if (!scope)
      reply.code(404).send({ message: `404 ${kind === 'project' ? 'Project' : 'Group'} Not Found` });
    return scope;
  };
  const findHook = (scope: Scope, raw: string | undefined, reply: FastifyReply) => {
    const hook = hooks.get(coerceInteger(raw) ?? -1);
    if (hook && sameScope(hook.scope, scope)) return hook;
    reply.code(404).send({ message: '404 Not found' });
    return undefined;
  };

  const applyInput = (hook: GitlabHook, input: Record<string, unknown>) => {
    if (typeof input.url === 'string') hook.url = input.url;
    if (typeof input.name === 'string') hook.name = input.name;
    if (typeof input.description === 'string') hook.description = input.description;
    if (typeof input.token === 'string') hook.token = input.token === '' ? null : input.token;
    if (input.enable_ssl_verification !== undefined)
      hook.enableSslVerification = toBoolean(input.enable_ssl_verification);
    for (const flag of EVENT_FLAGS) if (input[flag] !== undefined) hook.events[flag] = toBoolean(input[flag]);
  };
  const invalidUrl = (url: unknown) =>
    typeof url !== 'string' || !URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol);

  for (const kind of ['project', 'group'] as const) {
    const base = `${API}/${kind === 'project' ? 'projects' : 'groups'}/:id/hooks`;

    app.get<{ Params: Params }>(base, async (request, reply) => {
      const scope = resolve(kind, request, reply);
      if (!scope) return reply;
      const mine = [...hooks.values()].filter((hook) => sameScope(hook.scope, scope));
      const page = pageOf(deps.origin(), request, mine, { id: request.params.id });
      if ('error' in page) return reply.code(400).send({ error: page.error });
      return reply.headers(page.headers).send(page.items.map(hookBody));
    });

    app.post<{ Params: Params }>(base, async (request, reply) => {
      const scope = resolve(kind, request, reply);
      if (!scope) return reply;
      const input = {
        ...(request.query as object),
        ...((request.body as object | undefined) ?? {}),
      } as Record<string, unknown>;
      if (input.url === undefined) return reply.code(400).send({ error: 'url is missing' });
      if (invalidUrl(input.url))
        return reply
          .code(422)
          .send({ message: { url: ['is blocked: Only allowed schemes are http, https'] } });
      const hook: GitlabHook = {
        id: nextId++,
        scope,
        url: '',
        name: '',
        description: '',
        token: null,
        // A new hook listens to pushes unless told otherwise, and to nothing else.
        events: { push_events: true },
        enableSslVerification: true,
        createdAt: new Date(),
        failures: 0,
        disabledUntil: null,
      };
      applyInput(hook, input);
      hooks.set(hook.id, hook);
      return reply.code(201).send(hookBody(hook));
    });

    app.get<{ Params: Params }>(`${base}/:hook_id`, async (request, reply) => {
      const scope = resolve(kind, request, reply);
      const hook = scope && findHook(scope, request.params.hook_id, reply);
      return hook ? hookBody(hook) : reply;
    });

    app.put<{ Params: Params }>(`${base}/:hook_id`, async (request, reply) => {
      const scope = resolve(kind, request, reply);
      const hook = scope && findHook(scope, request.params.hook_id, reply);
      if (!hook) return reply;
      const input = {
        ...(request.query as object),
        ...((request.body as object | undefined) ?? {}),
      } as Record<string, unknown>;
      if (input.url !== undefined && invalidUrl(input.url)) {
        return reply
          .code(422)
          .send({ message: { url: ['is blocked: Only allowed schemes are http, https'] } });
      }
      applyInput(hook, input);
      return hookBody(hook);
    });

    app.delete<{ Params: Params }>(`${base}/:hook_id`, async (request, reply) => {
      const scope = resolve(kind, request, reply);
      const hook = scope && findHook(scope, request.params.hook_id, reply);
      if (!hook) return reply;
      hooks.delete(hook.id);
      return reply.code(204).send();
    });

    app.get<{ Params: Params }>(`${base}/:hook_id/events`, async (request, reply) => {
      const scope = resolve(kind, request, reply);
      const hook = scope && findHook(scope, request.params.hook_id, reply);
      if (!hook) return reply;
      const page = pageOf(deps.origin(), request, deliverer.logs(hook.id), {
        id: request.params.id,
        hook_id: String(hook.id),
      });
      if ('error' in page) return reply.code(400).send({ error: page.error });
      return reply.headers(page.headers).send(page.items.map((log) => hookLogBody(hook, log)));
    });

    app.post<{ Params: Params }>(`${base}/:hook_id/events/:hook_event_id/resend`, async (request, reply) => {
      const scope = resolve(kind, request, reply);
      const hook = scope && findHook(scope, request.params.hook_id, reply);
      if (!hook) return reply;
      const log = deliverer.log(hook.id, coerceInteger(request.params.hook_event_id) ?? -1);
      if (!log) return reply.code(404).send({ message: '404 Not found' });
      const sent = await deliverer.resend(hook, log);
      return reply.code(201).send({ response_status: sent.attempt?.statusCode ?? 'internal error' });
    });
  }

  return {
    emit(project, flag, data) {
      const groups = groupsAbove(project);
      const trigger = flag === 'job_events' ? 'job_hooks' : 'pipeline_hooks';
      const header = flag === 'job_events' ? 'Job Hook' : 'Pipeline Hook';
      for (const hook of hooks.values()) {
        const mine =
          hook.scope.kind === 'project'
            ? hook.scope.projectId === project.id
            : groups.includes(hook.scope.path);
        if (mine && hook.events[flag]) deliverer.deliver(hook, trigger, header, data);
      }
    },
  };
}
