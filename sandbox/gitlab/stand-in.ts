// GitLab REST stand-in (`/api/v4`): the deploy keys API and the calls clients make first, as
// GitLab's Grape API answers them, with its headers, error bodies, pagination and API throttle.
import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import type { HostState } from '../shared/host-state.ts';
import { type StandInListeners, serveOn, type TlsIdentity } from '../shared/listeners.ts';
import {
  createWebhookDispatcher,
  registerDeliveryFaults,
  type WebhookDispatcher,
} from '../shared/webhook-dispatcher.ts';
import { type IdTokenMinter, registerGitlabCi } from './ci.ts';
import type { CiState } from './ci-state.ts';
import { registerDeployKeyRoutes } from './deploy-key-routes.ts';
import { registerGitlabHooks } from './hooks.ts';
import { registerInstanceRoutes } from './instance-routes.ts';
import { createRateLimiter, type RateLimitOptions } from './rate-limit.ts';
import { API_PREFIX, flatten, type GitlabRoutes, pageOf } from './routes.ts';
import { createTokenRegistry, registerTokenRoutes, type TokenRegistry } from './tokens.ts';

export interface GitlabStandInOptions {
  state: HostState;
  /** Accepted personal access / OAuth tokens; every one belongs to an administrator. */
  tokens: string[];
  /** Off by default; over the rate the API answers 429 with `Retry-After`. */
  rateLimit?: RateLimitOptions;
  /** Clone URL of a project on the SSH git server, for `ssh_url_to_repo`; read per request. */
  sshCloneUrl?: (path: string) => string;
  /** Also serve over HTTPS with this certificate. */
  tls?: TlsIdentity;
  port?: number;
  /** Mints the id token a CI job would get; pipelines made on the stand-in come with one per job. */
  mintIdToken?: IdTokenMinter;
  /** Webhook deliveries in flight at once (default 4); the real platforms send from many workers. */
  deliveryConcurrency?: number | undefined;
}

export interface GitlabStandIn {
  /** Ends with `/api/v4`. */
  url: string;
  /** The HTTPS twin of `url` when the stand-in was given a certificate. */
  httpsUrl?: string;
  faults: FaultInjector;
  /** The accepted tokens: set one's expiry date or revoke it. */
  tokens: TokenRegistry;
  /** Pipelines and jobs; every change is delivered to the subscribed project and group hooks. */
  ci: CiState;
  /** The webhook deliveries, with their faults (drop, duplicate, reverse, hold). */
  deliveries: WebhookDispatcher;
  setRateLimit(options: GitlabStandInOptions['rateLimit']): void;
  close(): Promise<void>;
}

const statusMessage = (status: number) => `${status} ${STATUS_CODES[status] ?? 'Error'}`;

/** GitLab reads a token from `PRIVATE-TOKEN`, `Authorization: Bearer`, or the query string. */
function tokenOf(request: FastifyRequest): string | undefined {
  const privateToken = request.headers['private-token'];
  if (typeof privateToken === 'string' && privateToken !== '') return privateToken;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (bearer?.[1]) return bearer[1];
  const query = flatten(request.query);
  return query.private_token || query.access_token || undefined;
}

// Rails' correlation ids are 26 characters of Crockford base32, like a ULID.
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const correlationId = () => [...randomBytes(26)].map((byte) => CROCKFORD[byte % 32]).join('');

export async function startGitlabStandIn(opts: GitlabStandInOptions): Promise<GitlabStandIn> {
  const { state } = opts;
  const tokens = createTokenRegistry(opts.tokens);
  const limiter = createRateLimiter(opts.rateLimit);

  const app = Fastify({ logger: false, routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 } });
  // Rails parses JSON and form bodies; a bodiless request that names a JSON type (clients send
  // `Content-Type: application/json` on every call, DELETE included) has no parameters.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch (error) {
      done(Object.assign(error as Error, { statusCode: 400 }), undefined);
    }
  });
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
  registerTokenRoutes(app, tokens, tokenOf);
  addGitlabHeaders(app);

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: '404 Not Found' }));
  app.setErrorHandler((error: { statusCode?: number }, _request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    return reply.code(status).send({ message: statusMessage(status) });
  });

  const routes: GitlabRoutes = {
    state,
    api: API_PREFIX,
    origin: (request) => `${request.protocol}://${request.host}`,
    sshCloneUrl: (path) => opts.sshCloneUrl?.(path),
    authenticate(request, reply) {
      if (isAuthenticated(request)) return true;
      reply.code(401).send({ message: '401 Unauthorized' });
      return false;
    },
    resolveProject(request, reply) {
      if (!routes.authenticate(request, reply)) return undefined;
      const project = state.findRepository((request.params as { id: string }).id);
      if (!project) reply.code(404).send({ message: '404 Project Not Found' });
      return project;
    },
    paginate: (request, items, routeParams) => pageOf(routes.origin(request), request, items, routeParams),
    bodyOf: (request) =>
      typeof request.body === 'object' && request.body !== null && !Array.isArray(request.body)
        ? (request.body as Record<string, unknown>)
        : {},
  };
  registerInstanceRoutes(app, routes);
  registerDeployKeyRoutes(app, routes);

  // Hooks and pipelines name the stand-in's own address in their bodies, known once it listens.
  let origin = '';
  const deliveries = createWebhookDispatcher(
    opts.deliveryConcurrency === undefined ? {} : { concurrency: opts.deliveryConcurrency },
  );
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
    resolveProject: routes.resolveProject,
    mintIdToken: opts.mintIdToken,
  });

  const listeners: StandInListeners = await serveOn(app, { port: opts.port, tls: opts.tls });
  origin = listeners.url;
  return {
    url: `${listeners.url}${API_PREFIX}`,
    ...(listeners.httpsUrl ? { httpsUrl: `${listeners.httpsUrl}${API_PREFIX}` } : {}),
    faults,
    tokens,
    ci,
    deliveries,
    setRateLimit: (options) => limiter.configure(options),
    close: () => listeners.close(),
  };
}

// The headers Rails and Workhorse put on every API answer. GitLab's JSON has no charset parameter;
// a client that compares the media type exactly (python-gitlab does) needs it so.
function addGitlabHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/_sandbox/')) return payload;
    const type = String(reply.getHeader('content-type') ?? '');
    if (type.startsWith('application/json')) reply.header('content-type', 'application/json');
    const id = correlationId();
    const cacheable = request.method === 'GET' && reply.statusCode === 200;
    reply.headers({
      'cache-control': cacheable ? 'max-age=0, private, must-revalidate' : 'no-cache',
      vary: 'Origin',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'x-gitlab-meta': JSON.stringify({ correlation_id: id, version: '1' }),
      'x-request-id': id,
      'x-runtime': (reply.elapsedTime / 1000).toFixed(6),
    });
    return payload;
  });
}
