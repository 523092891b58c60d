// GitLab REST stand-in: the project deploy keys API (`/api/v4/projects/:id/deploy_keys`) as
// GitLab's Grape API answers it, including its error bodies, pagination and API throttle.
import { STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import {
  type HostState,
  normalizeKeyBlob,
  type SandboxDeployKey,
  type SandboxRepository,
} from '../shared/host-state.ts';
import {
  createWebhookDispatcher,
  registerDeliveryFaults,
  type WebhookDispatcher,
} from '../shared/webhook-dispatcher.ts';
import { type IdTokenMinter, registerGitlabCi } from './ci.ts';
import type { CiState } from './ci-state.ts';
import {
  coerceCreateParams,
  coerceInteger,
  renderDeployKey,
  sanitizeKey,
  validateNewKey,
} from './deploy-keys.ts';
import { registerGitlabHooks } from './hooks.ts';
import { paginate } from './pagination.ts';
import { createRateLimiter, type RateLimitOptions } from './rate-limit.ts';

export interface GitlabStandInOptions {
  state: HostState;
  /** Accepted personal access / OAuth tokens; every one may administer every project. */
  tokens: string[];
  /** Off by default; over the rate the API answers 429 with `Retry-After`. */
  rateLimit?: RateLimitOptions;
  port?: number;
  /** Mints the id token a CI job would get; pipelines made on the stand-in come with one per job. */
  mintIdToken?: IdTokenMinter;
}

export interface GitlabStandIn {
  /** Ends with `/api/v4`. */
  url: string;
  faults: FaultInjector;
  /** Pipelines and jobs; every change is delivered to the subscribed project and group hooks. */
  ci: CiState;
  /** The webhook deliveries, with their faults (drop, duplicate, reverse, hold). */
  deliveries: WebhookDispatcher;
  setRateLimit(options: GitlabStandInOptions['rateLimit']): void;
  close(): Promise<void>;
}

type ProjectParams = { id: string };
type KeyParams = { id: string; key_id: string };

const API = '/api/v4';
const KEYS_PATH = `${API}/projects/:id/deploy_keys`;

const statusMessage = (status: number) => `${status} ${STATUS_CODES[status] ?? 'Error'}`;

function flatten(query: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    out[name] = Array.isArray(value) ? String(value.at(-1)) : String(value);
  }
  return out;
}

/** GitLab reads a token from `PRIVATE-TOKEN`, `Authorization: Bearer`, or the query string. */
function tokenOf(request: FastifyRequest): string | undefined {
  const privateToken = request.headers['private-token'];
  if (typeof privateToken === 'string' && privateToken !== '') return privateToken;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (bearer?.[1]) return bearer[1];
  const query = flatten(request.query);
  return query.private_token || query.access_token || undefined;
}

export async function startGitlabStandIn(opts: GitlabStandInOptions): Promise<GitlabStandIn> {
  const { state } = opts;
  const tokens = new Set(opts.tokens);
  const limiter = createRateLimiter(opts.rateLimit);
  // The key text as GitLab stores it (first comment word kept); host state keeps only type and blob.
  const storedKeys = new Map<number, string>();
  const storedKey = (record: SandboxDeployKey) => storedKeys.get(record.id) ?? record.key;
  const render = (record: SandboxDeployKey) => renderDeployKey(record, storedKey(record));

  let origin = '';
  const app = Fastify({ logger: false, routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 } });
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    },
  );

  const faults = registerFaults(app, (status) => ({ message: statusMessage(status) }));

  const isAuthenticated = (request: FastifyRequest) => {
    const token = tokenOf(request);
    return token !== undefined && tokens.has(token);
  };

  // Rack::Attack sits in front of the Rails app: it counts every API request, before auth and routing.
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/_sandbox/')) return;
    const authenticated = isAuthenticated(request);
    const decision = limiter.check({
      authenticated,
      id: authenticated ? String(tokenOf(request)) : request.ip,
    });
    if (!decision) return;
    reply.headers(decision.headers);
    if (decision.throttled) return reply.code(429).type('text/plain').send('Retry later\n');
  });

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: '404 Not Found' }));
  app.setErrorHandler((error: { statusCode?: number }, _request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    return reply.code(status).send({ message: statusMessage(status) });
  });

  /** `authenticate!` then `user_project`, in the order Grape's `before` blocks run them. */
  const resolveProject = (request: FastifyRequest, reply: FastifyReply): SandboxRepository | undefined => {
    if (!isAuthenticated(request)) {
      reply.code(401).send({ message: '401 Unauthorized' });
      return undefined;
    }
    const project = state.findRepository((request.params as ProjectParams).id);
    if (!project) reply.code(404).send({ message: '404 Project Not Found' });
    return project;
  };

  app.get<{ Params: ProjectParams }>(KEYS_PATH, async (request, reply) => {
    const project = resolveProject(request, reply);
    if (!project) return reply;
    const [path] = request.url.split('?');
    const page = paginate(state.listKeys(project.id), {
      baseUrl: `${origin}${path}`,
      params: { ...flatten(request.query), id: request.params.id },
    });
    if ('error' in page) return reply.code(400).send({ error: page.error });
    return reply.headers(page.headers).send(page.items.map(render));
  });

  app.get<{ Params: KeyParams }>(`${KEYS_PATH}/:key_id`, async (request, reply) => {
    const project = resolveProject(request, reply);
    if (!project) return reply;
    const keyId = coerceInteger(request.params.key_id);
    if (keyId === undefined) return reply.code(400).send({ error: 'key_id is invalid' });
    const record = state.getKey(project.id, keyId);
    // `find_by!` raises RecordNotFound, which the API turns into this generic body.
    if (!record) return reply.code(404).send({ message: '404 Not found' });
    return render(record);
  });

  app.post<{ Params: ProjectParams }>(KEYS_PATH, async (request, reply) => {
    const project = resolveProject(request, reply);
    if (!project) return reply;
    const body = typeof request.body === 'object' && request.body !== null ? request.body : {};
    const params = coerceCreateParams({ ...flatten(request.query), ...(body as Record<string, unknown>) });
    if ('error' in params) return reply.code(400).send({ error: params.error });

    // GitLab looks the key up by its exact text: the same key already on this project is answered
    // as if created, and a key enabled on another project is joined here, keeping its title.
    const stored = sanitizeKey(params.key);
    const sameText = state.keysWithBlob(normalizeKeyBlob(stored)).filter((k) => storedKey(k) === params.key);
    const existing = sameText.find((k) => k.repositoryId === project.id);
    if (existing) return reply.code(201).send(render(existing));
    const elsewhere = sameText[0];
    if (elsewhere) {
      const joined = state.addKey({
        repositoryId: project.id,
        title: elsewhere.title,
        key: elsewhere.key,
        readOnly: !params.canPush,
        expiresAt: elsewhere.expiresAt,
      });
      storedKeys.set(joined.id, storedKey(elsewhere));
      return reply.code(201).send(render(joined));
    }

    const errors = validateNewKey(params, (blob) => state.keysWithBlob(blob).length > 0, new Date());
    if (Object.keys(errors).length > 0) return reply.code(400).send({ message: errors });
    const created = state.addKey({
      repositoryId: project.id,
      title: params.title,
      key: stored,
      readOnly: !params.canPush,
      expiresAt: params.expiresAt,
    });
    storedKeys.set(created.id, stored);
    return reply.code(201).send(render(created));
  });

  app.delete<{ Params: KeyParams }>(`${KEYS_PATH}/:key_id`, async (request, reply) => {
    const project = resolveProject(request, reply);
    if (!project) return reply;
    const keyId = coerceInteger(request.params.key_id);
    if (keyId === undefined) return reply.code(400).send({ error: 'key_id is invalid' });
    if (!state.deleteKey(project.id, keyId))
      return reply.code(404).send({ message: '404 Deploy key Not Found' });
    storedKeys.delete(keyId);
    return reply.code(204).send();
  });

  const deliveries = createWebhookDispatcher();
  registerDeliveryFaults(app, deliveries);
  const hooks = registerGitlabHooks(app, {
    state,
    dispatcher: deliveries,
    origin: () => origin,
    isAuthenticated,
  });
  const ci = registerGitlabCi(app, {
    state,
    hooks,
    origin: () => origin,
    resolveProject,
    mintIdToken: opts.mintIdToken,
  });

  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  return {
    url: `${origin}${API}`,
    faults,
    ci,
    deliveries,
    setRateLimit: (options) => limiter.configure(options),
    close: () => app.close(),
  };
}
