// Repository and organisation webhooks on the GitHub stand-in: `/repos/{o}/{r}/hooks` and
// `/orgs/{org}/hooks` (create, list, get, update, delete, ping), their recorded deliveries and
// redelivery. Every Actions event reaches the hooks of its repository and of its owner that
// subscribe to it, each delivery signed with that hook's secret.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import type { WebhookDispatcher } from '../shared/webhook-dispatcher.ts';
import {
  type Origins,
  organizationBody,
  ownerOf,
  repositoryBody,
  stableId,
  userBody,
} from './actions-bodies.ts';
import { createGithubDeliverer, type GithubHook } from './hook-deliveries.ts';
import { type HookParams, registerDeliveryRoutes } from './hook-delivery-routes.ts';
import { errorBody, githubTime, REST_DOCS, readPage } from './responses.ts';

type Scope = GithubHook['scope'];

const DOCS = {
  repository: `${REST_DOCS}/webhooks/repos`,
  organization: `${REST_DOCS}/orgs/webhooks`,
};
const ZEN = ['Keep it logically awesome.', 'Design for failure.', 'Practicality beats purity.'];
const MASKED_SECRET = '********';

export interface GithubHooks {
  /** Delivers an event of this repository to every subscribed hook of the repository and its owner. */
  emit(
    repository: SandboxRepository,
    event: string,
    payload: (hook: GithubHook) => Record<string, unknown>,
  ): void;
}

const hookPath = (scope: Scope) =>
  scope.kind === 'repository' ? `/repos/${scope.path}/hooks` : `/orgs/${scope.login}/hooks`;

function hookBody(origins: Origins, hook: GithubHook) {
  const url = `${origins.api}${hookPath(hook.scope)}/${hook.id}`;
  const { secret, ...config } = hook.config;
  return {
    type: hook.scope.kind === 'repository' ? 'Repository' : 'Organization',
    id: hook.id,
    name: 'web',
    active: hook.active,
    events: hook.events,
    config: secret ? { ...config, secret: MASKED_SECRET } : config,
    updated_at: githubTime(hook.updatedAt),
    created_at: githubTime(hook.createdAt),
    url,
    ...(hook.scope.kind === 'repository' ? { test_url: `${url}/test` } : {}),
    ping_url: `${url}/pings`,
    deliveries_url: `${url}/deliveries`,
    ...(hook.scope.kind === 'repository' ? { last_response: hook.lastResponse } : {}),
  };
}

type HookInput = { config?: Record<string, unknown>; events?: unknown; active?: unknown; name?: unknown };

/** The problem with a create or update body, or `undefined`; GitHub answers 422 for each. */
function invalidHook(input: HookInput, creating: boolean): string | undefined {
  if (creating && (typeof input.config?.url !== 'string' || input.config.url === '')) {
    return 'Config must contain URL for webhooks';
  }
  if (input.config?.url !== undefined && !URL.canParse(String(input.config.url)))
    return 'Config url is not a valid URL';
  const contentType = input.config?.content_type;
  if (contentType !== undefined && contentType !== 'json' && contentType !== 'form') {
    return 'Config content_type must be json or form';
  }
  if (
    input.events !== undefined &&
    !(Array.isArray(input.events) && input.events.every((e) => typeof e === 'string'))
  ) {
    return 'Events must be a list of event names';
  }
  return undefined;
}

export function registerGithubHooks(
  app: FastifyInstance,
  deps: { state: HostState; dispatcher: WebhookDispatcher; origins: () => Origins },
): GithubHooks {
  const { state } = deps;
  const hooks = new Map<number, GithubHook>();
  const deliverer = createGithubDeliverer(deps.dispatcher);
  let nextId = 100_000_000 + Math.floor(Math.random() * 100_000_000);

  const scopeOf = (params: HookParams): Scope | undefined => {
    if (params.org !== undefined) {
      const known = state.listRepositories().some((repository) => ownerOf(repository) === params.org);
      return known
        ? { kind: 'organization', login: params.org, id: stableId(`user:${params.org}`) }
        : undefined;
    }
    const repository = state.findRepository(`${params.owner}/${params.repo}`);
    return repository && { kind: 'repository', repositoryId: repository.id, path: repository.path };
  };
  const sameScope = (a: Scope, b: Scope) =>
    a.kind === 'repository'
      ? b.kind === 'repository' && a.repositoryId === b.repositoryId
      : b.kind === a.kind && a.login === b.login;
  const findHook = (params: HookParams) => {
    const scope = scopeOf(params);
    const hook = scope && hooks.get(Number(params.hook_id));
    return hook && scope && sameScope(hook.scope, scope) ? hook : undefined;
  };
  const notFound = (reply: FastifyReply, docs: string) =>
    reply.code(404).send(errorBody(404, 'Not Found', docs));
  const unprocessable = (reply: FastifyReply, message: string, docs: string) =>
    reply.code(422).send({
      message: 'Validation Failed',
      errors: [{ resource: 'Hook', code: 'custom', message }],
      documentation_url: docs,
      status: '422',
    });

  const ping = (hook: GithubHook) => {
    const origins = deps.origins();
    const repository =
      hook.scope.kind === 'repository' ? state.findRepository(hook.scope.repositoryId) : undefined;
    const login = repository ? ownerOf(repository) : (hook.scope as { login: string }).login;
    deliverer.deliver(
      hook,
      'ping',
      {
        zen: ZEN[hook.id % ZEN.length],
        hook_id: hook.id,
        hook: hookBody(origins, hook),
        ...(repository ? { repository: repositoryBody(origins, repository, new Date()) } : {}),
        organization: organizationBody(origins, login),
        sender: userBody(origins, 'sandbox-admin'),
      },
      repository?.id ?? null,
    );
  };

  for (const kind of ['repository', 'organization'] as const) {
    const prefix = kind === 'repository' ? '/repos/:owner/:repo/hooks' : '/orgs/:org/hooks';
    const docs = DOCS[kind];

    app.get<{ Params: HookParams; Querystring: Record<string, string | undefined> }>(
      prefix,
      async (request, reply) => {
        const scope = scopeOf(request.params);
        if (!scope) return notFound(reply, docs);
        const page = readPage(request.query);
        const all = [...hooks.values()].filter((hook) => sameScope(hook.scope, scope));
        return all
          .slice((page.page - 1) * page.perPage, page.page * page.perPage)
          .map((hook) => hookBody(deps.origins(), hook));
      },
    );

    app.post<{ Params: HookParams; Body: HookInput | undefined }>(prefix, async (request, reply) => {
      const scope = scopeOf(request.params);
      if (!scope) return notFound(reply, docs);
      const input = request.body ?? {};
      const problem = invalidHook(input, true);
      if (problem) return unprocessable(reply, problem, docs);
      const now = new Date();
      const config = input.config ?? {};
      const hook: GithubHook = {
        id: nextId++,
        scope,
        active: input.active !== false,
        events: (input.events as string[] | undefined) ?? ['push'],
        // A hook created through the API posts form-encoded bodies unless told otherwise.
        config: {
          url: String(config.url),
          content_type: config.content_type === 'json' ? 'json' : 'form',
          ...(typeof config.secret === 'string' && config.secret !== '' ? { secret: config.secret } : {}),
          insecure_ssl: String(config.insecure_ssl ?? '0'),
        },
        createdAt: now,
        updatedAt: now,
        lastResponse: { code: null, status: 'unused', message: null },
      };
      hooks.set(hook.id, hook);
      if (hook.active) ping(hook);
      const body = hookBody(deps.origins(), hook);
      return reply.code(201).header('location', body.url).send(body);
    });

    app.get<{ Params: HookParams }>(`${prefix}/:hook_id`, async (request, reply) => {
      const hook = findHook(request.params);
      return hook ? hookBody(deps.origins(), hook) : notFound(reply, docs);
    });

    app.patch<{
      Params: HookParams;
      Body: (HookInput & { add_events?: string[]; remove_events?: string[] }) | undefined;
    }>(`${prefix}/:hook_id`, async (request, reply) => {
      const hook = findHook(request.params);
      if (!hook) return notFound(reply, docs);
      const input = request.body ?? {};
      const problem = invalidHook(input, false);
      if (problem) return unprocessable(reply, problem, docs);
      // GitHub replaces the whole config: a secret left out of it is removed.
      if (input.config) {
        const config = input.config;
        hook.config = {
          url: String(config.url ?? hook.config.url),
          content_type: config.content_type === 'json' ? 'json' : 'form',
          ...(typeof config.secret === 'string' && config.secret !== '' ? { secret: config.secret } : {}),
          insecure_ssl: String(config.insecure_ssl ?? '0'),
        };
      }
      if (Array.isArray(input.events)) hook.events = input.events as string[];
      if (Array.isArray(input.add_events)) hook.events = [...new Set([...hook.events, ...input.add_events])];
      if (Array.isArray(input.remove_events))
        hook.events = hook.events.filter((e) => !input.remove_events?.includes(e));
      if (typeof input.active === 'boolean') hook.active = input.active;
      hook.updatedAt = new Date();
      return hookBody(deps.origins(), hook);
    });

    app.delete<{ Params: HookParams }>(`${prefix}/:hook_id`, async (request, reply) => {
      const hook = findHook(request.params);
      if (!hook) return notFound(reply, docs);
      hooks.delete(hook.id);
      return reply.code(204).send();
    });

    app.post<{ Params: HookParams }>(`${prefix}/:hook_id/pings`, async (request, reply) => {
      const hook = findHook(request.params);
      if (!hook) return notFound(reply, docs);
      ping(hook);
      return reply.code(204).send();
    });

    registerDeliveryRoutes(app, prefix, { findHook, deliverer, notFound });
  }

  return {
    emit(repository, event, payload) {
      const owner = ownerOf(repository);
      for (const hook of hooks.values()) {
        const mine =
          hook.scope.kind === 'repository'
            ? hook.scope.repositoryId === repository.id
            : hook.scope.login === owner;
        const subscribed = hook.events.includes('*') || hook.events.includes(event);
        if (mine && subscribed && hook.active) deliverer.deliver(hook, event, payload(hook), repository.id);
      }
    },
  };
}
