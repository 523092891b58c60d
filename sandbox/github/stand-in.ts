// Local stand-in for GitHub's REST API: the deploy-key endpoints, the calls clients make first
// (`/`, `/meta`, `/rate_limit`, `/user`, `/repos/{owner}/{repo}`) and GitHub Apps, with GitHub's
// auth, headers, error bodies, pagination and rate limits. Served at the root, like api.github.com,
// so Octokit takes `url` as its `baseUrl`, and under `/api/v3` like a GitHub Enterprise Server.
import Fastify, { type FastifyInstance } from 'fastify';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import type { HostState } from '../shared/host-state.ts';
import { serveOn, type TlsIdentity } from '../shared/listeners.ts';
import {
  createWebhookDispatcher,
  registerDeliveryFaults,
  type WebhookDispatcher,
} from '../shared/webhook-dispatcher.ts';
import { registerAccountRoutes } from './account-routes.ts';
import { registerGithubActions } from './actions.ts';
import type { IdTokenMinter } from './actions-sandbox.ts';
import type { ActionsState } from './actions-state.ts';
import { type AppRegistry, createAppRegistry } from './app-registry.ts';
import { registerAppControls, registerAppRoutes } from './app-routes.ts';
import { createCredentialResolver, registerInstallationScope } from './credentials.ts';
import { registerDeployKeyRoutes } from './deploy-key-routes.ts';
import { registerGithubHooks } from './hooks.ts';
import { createGithubRateLimiter, type GithubRateLimitOptions, rateLimitHeaders } from './rate-limit.ts';
import { docs, errorBody, primaryLimitMessage, requestId, secondaryLimitMessage } from './responses.ts';
import { ENTERPRISE_PREFIX, type GithubRoutes } from './routes.ts';

export interface GithubStandInOptions {
  state: HostState;
  tokens: string[];
  /** Public host keys (`ssh-ed25519 AAAA…`) for `GET /meta`; read per request, the SSH server may start later. */
  sshHostKeys: () => string[];
  /** Clone URL of a repository on the SSH git server, for `ssh_url`; read per request. */
  sshCloneUrl?: (path: string) => string;
  rateLimit?: GithubRateLimitOptions;
  /** Also serve over HTTPS with this certificate. */
  tls?: TlsIdentity;
  /** Sees every request that reached a route, body parsed, e.g. to hold clients to the API. */
  onRequestSeen?: (request: SeenRequest) => void;
  port?: number;
  /** Clock for App JWTs and installation tokens (ms since epoch), also sent as `Date`; default `Date.now`. */
  now?: () => number;
  /** Lifetime of installation access tokens; GitHub's is one hour. */
  installationTokenTtlSeconds?: number;
  /** Mints the OIDC token a workflow job would get; runs made on the stand-in come with one per job. */
  mintIdToken?: IdTokenMinter;
  /** Webhook deliveries in flight at once (default 4); the real platforms send from many workers. */
  deliveryConcurrency?: number | undefined;
}

export interface SeenRequest {
  method: string;
  /** Path and query as sent, `/api/v3` included when the client used it. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface GithubStandIn {
  url: string;
  /** The HTTPS twin of `url` when the stand-in was given a certificate. */
  httpsUrl?: string;
  /** Every route served (method and Fastify path), `/api/v3` twins and `/_sandbox/` included. */
  routes: { method: string; url: string }[];
  faults: FaultInjector;
  /** GitHub Apps: register them, install them on owners, set the installation token lifetime. */
  apps: AppRegistry;
  /** Every App JWT the stand-in accepted, oldest first (for leak scans). */
  appJwtsSeen: readonly string[];
  /** Workflow runs and jobs; every change is delivered to the subscribed hooks. */
  actions: ActionsState;
  /** The webhook deliveries, with their faults (drop, duplicate, reverse, hold). */
  deliveries: WebhookDispatcher;
  setRateLimit(opts: GithubStandInOptions['rateLimit']): void;
  close(): Promise<void>;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// What a classic personal access token with these scopes is told; gh checks for `repo` and `read:org`.
const TOKEN_SCOPES = 'admin:public_key, read:org, repo';

export async function startGithubStandIn(opts: GithubStandInOptions): Promise<GithubStandIn> {
  const { state } = opts;
  const now = opts.now ?? (() => Date.now());
  const apps = createAppRegistry({ state, now, tokenTtlSeconds: opts.installationTokenTtlSeconds });
  const credentials = createCredentialResolver({ tokens: opts.tokens, apps, now });
  const limiter = createGithubRateLimiter(opts.rateLimit, now);
  const app = Fastify({ logger: false });
  const served: { method: string; url: string }[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) served.push({ method, url: route.url });
  });

  const faults = registerFaults(app, (status) => errorBody(status));
  registerInstallationScope(app, state, apps);

  // GitHub reads the body as JSON whatever Content-Type the client declares.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch (error) {
      done(Object.assign(error as Error, { statusCode: 400 }), undefined);
    }
  });

  app.setErrorHandler((error: { statusCode?: number }, _request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) return reply.code(500).send(errorBody(500));
    return reply.code(status).send(errorBody(status, status === 400 ? 'Problems parsing JSON' : undefined));
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send(errorBody(404)));

  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/_sandbox/')) return;
    const id = requestId();
    reply.header('x-github-request-id', id).header('x-github-media-type', 'github.v3; format=json');
    // @octokit/auth-app corrects an App JWT for clock skew from this header.
    reply.header('date', new Date(now()).toUTCString());
    const config = request.routeOptions.config;

    const resolved = credentials.resolve(request);
    if ('status' in resolved) {
      const outcome = limiter.take(null, false);
      if (outcome.kind !== 'secondary') reply.headers(rateLimitHeaders(outcome.snapshot));
      return reply.code(resolved.status).send(errorBody(resolved.status, resolved.message));
    }
    const identity = resolved.identity;
    request.githubIdentity = identity;
    // OAuth scopes belong to personal tokens: GitHub sends none for an App or an installation token.
    if (identity?.kind === 'token')
      reply.header('x-oauth-scopes', TOKEN_SCOPES).header('x-accepted-oauth-scopes', '');
    if (config.uncounted) {
      reply.headers(rateLimitHeaders(limiter.peek(identity?.rateKey ?? null)));
      return;
    }

    // Limits are counted per identity: a user's token, an App, an App installation.
    const outcome = limiter.take(identity?.rateKey ?? null, WRITE_METHODS.has(request.method));
    // A secondary-limit answer carries `retry-after` and no x-ratelimit-* headers, as api.github.com's does.
    if (outcome.kind === 'secondary') {
      return reply
        .code(403)
        .header('retry-after', String(outcome.retryAfterSeconds))
        .send({ message: secondaryLimitMessage(id), documentation_url: docs.secondaryRateLimits });
    }
    reply.headers(rateLimitHeaders(outcome.snapshot));
    if (outcome.kind === 'primary') {
      const who =
        identity === null
          ? `${request.ip}. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)`
          : identity.label;
      return reply.code(403).send(errorBody(403, primaryLimitMessage(who, id), docs.rateLimits));
    }

    if (identity === null && request.routeOptions.url !== undefined && !config.anonymous) {
      return reply.code(401).send(errorBody(401, 'Requires authentication', config.docs));
    }
  });
  app.addHook('preHandler', async (request) => {
    opts.onRequestSeen?.({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: request.body,
    });
  });
  addGithubHeaders(app);

  const routes: GithubRoutes = {
    state: opts.state,
    limiter,
    sshHostKeys: opts.sshHostKeys,
    sshCloneUrl: (path) => opts.sshCloneUrl?.(path),
    apps,
  };
  const register = async (scope: FastifyInstance) => {
    registerAccountRoutes(scope, routes);
    registerDeployKeyRoutes(scope, routes);
    registerAppRoutes(scope, routes);
  };
  await app.register(register);
  await app.register(register, { prefix: ENTERPRISE_PREFIX });
  registerAppControls(app, apps);

  // Hooks and runs name the stand-in's own address in their bodies, known once it listens.
  let origin = '';
  const origins = () => ({ api: origin, web: origin });
  const deliveries = createWebhookDispatcher(
    opts.deliveryConcurrency === undefined ? {} : { concurrency: opts.deliveryConcurrency },
  );
  registerDeliveryFaults(app, deliveries);
  const hooks = registerGithubHooks(app, { state: opts.state, dispatcher: deliveries, origins });
  const actions = registerGithubActions(app, {
    state: opts.state,
    hooks,
    origins,
    mintIdToken: opts.mintIdToken,
  });

  const listeners = await serveOn(app, { port: opts.port, tls: opts.tls });
  origin = listeners.url;
  return {
    url: listeners.url,
    ...(listeners.httpsUrl ? { httpsUrl: listeners.httpsUrl } : {}),
    routes: served,
    faults,
    apps,
    appJwtsSeen: credentials.appJwtsSeen,
    actions,
    deliveries,
    setRateLimit: (rateLimit) => limiter.configure(rateLimit),
    close: () => listeners.close(),
  };
}

// Headers api.github.com sends with every REST answer besides the rate-limit and request-id ones.
function addGithubHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/_sandbox/')) return payload;
    const cacheable = request.method === 'GET' && reply.statusCode === 200;
    reply.headers({
      'cache-control': cacheable ? 'private, max-age=60, s-maxage=60' : 'no-cache',
      vary: 'Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding',
      'x-github-api-version-selected': '2022-11-28',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'deny',
      'x-xss-protection': '0',
      'referrer-policy': 'origin-when-cross-origin, strict-origin-when-cross-origin',
      'content-security-policy': "default-src 'none'",
    });
    return payload;
  });
}
