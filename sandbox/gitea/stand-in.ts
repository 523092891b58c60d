// Local stand-in for a Gitea (or Forgejo) server: the deploy-key API under `/api/v1`, what clients ask
// first (`/version`, `/user`, `/repos/{owner}/{repo}`, `/settings/api`) and `/swagger.v1.json`, with
// Gitea's token forms, error bodies and headers. `url` is the instance's root, as Gitea clients take it.
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { projectPath } from '../../src/project-root.ts';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import { type Caller, type GiteaTokenGrant, type GiteaUser, identifyCaller, missingScope } from './auth.ts';
import { createGiteaDeployKeys, type GiteaDeployKeys } from './deploy-keys.ts';
import { checkPublicKey } from './public-keys.ts';
import { createGiteaRateLimiter, type GiteaRateLimitOptions, RATE_LIMITED_TEXT } from './rate-limit.ts';
import { registerRepositoryRoutes } from './repository-routes.ts';
import { API_SETTINGS, apiError, GITEA_VERSION, userBody } from './responses.ts';

export interface GiteaStandInOptions {
  state: HostState;
  /** Accepted API tokens: a plain string is the site administrator's token with every scope. */
  tokens: Array<string | GiteaTokenGrant>;
  /** The deploy-key records, shared with the SSH server's messages; made here when omitted. */
  keys?: GiteaDeployKeys;
  /** Where `ssh_url` points (SSH_DOMAIN and SSH_PORT); default 127.0.0.1:22. */
  ssh?: { host: string; port: number };
  /** Off by default, as in Gitea; over the limit the API answers 429 with `Retry-After`. */
  rateLimit?: GiteaRateLimitOptions;
  /** `[security] DISABLE_QUERY_AUTH_TOKEN`; Gitea's default, false, accepts `?token=` and `?access_token=`. */
  disableQueryAuthToken?: boolean;
  port?: number;
}

export interface GiteaStandIn {
  /** The instance root (Gitea's ROOT_URL without the trailing slash). */
  url: string;
  /** `${url}/api/v1` */
  apiUrl: string;
  keys: GiteaDeployKeys;
  faults: FaultInjector;
  setRateLimit(options: GiteaRateLimitOptions | undefined): void;
  /** Registers a user's SSH key (`ssh-ed25519 AAAA…`), which Gitea refuses as a deploy key. */
  addUserKey(publicKey: string): void;
  close(): Promise<void>;
}

const SWAGGER_FILE = projectPath('test', 'fixtures', 'gitea-swagger.v1.json');
// Gitea sends this warning whenever a query carries a token; its text still names 1.23.
const QUERY_TOKEN_WARNING =
  'token and access_token API authentication is deprecated and will be removed in gitea 1.23. Please use AuthorizationHeaderToken instead. Existing queries will continue to work but without authorization.';

export async function startGiteaStandIn(opts: GiteaStandInOptions): Promise<GiteaStandIn> {
  const { state } = opts;
  const keys = opts.keys ?? createGiteaDeployKeys(state);
  const grants = new Map<string, GiteaTokenGrant>(
    opts.tokens.map((grant) =>
      typeof grant === 'string' ? [grant, { token: grant }] : [grant.token, grant],
    ),
  );
  const limiter = createGiteaRateLimiter(opts.rateLimit);
  const createdAt = new Date(Math.floor(Date.now() / 1000) * 1000);
  const callers = new WeakMap<FastifyRequest, Caller>();
  let origin = '';
  const fail = (reply: FastifyReply, status: number, message: string) =>
    reply.code(status).send(apiError(origin, message));

  const app = Fastify({ logger: false });
  const faults = registerFaults(app, (status) =>
    status === 429 ? RATE_LIMITED_TEXT : apiError(origin, status >= 500 ? '' : 'injected fault'),
  );
  // Gitea binds the body itself (see create-key-option.ts); only the sandbox's own routes take JSON here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    if (!request.url.startsWith('/_sandbox/')) return done(null, body);
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch (error) {
      done(Object.assign(error as Error, { statusCode: 400 }), undefined);
    }
  });
  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) => {
    // Gitea hides what went wrong in a 500 from anyone but an administrator.
    const status = Math.min(error.statusCode ?? 500, 500);
    return fail(reply, status, status === 500 ? '' : error.message);
  });
  app.setNotFoundHandler((_request, reply) => fail(reply, 404, 'not found'));

  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/_sandbox/')) return;
    reply.header('cache-control', 'max-age=0, private, must-revalidate');
    reply.header('x-content-type-options', 'nosniff');
    const retryAfter = limiter.retryAfter(request.ip);
    if (retryAfter !== undefined) {
      reply.header('retry-after', String(retryAfter)).header('content-type', 'text/plain; charset=utf-8');
      return reply.code(429).send(RATE_LIMITED_TEXT);
    }
    const caller = identifyCaller(request, grants, !opts.disableQueryAuthToken);
    const query = request.query as Record<string, unknown>;
    if (query.token || query.access_token) reply.header('x-gitea-warning', QUERY_TOKEN_WARNING);
    // An unknown token is refused on every route, public ones included.
    if (caller.kind === 'invalid') return fail(reply, 401, 'user does not exist [uid: 0, name: ]');
    callers.set(request, caller);
  });
  // Gitea's `ctx.JSON` writes no space before the charset.
  app.addHook('onSend', async (_request, reply, payload) => {
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('application/json')) {
      reply.header('content-type', 'application/json;charset=utf-8');
    }
    return payload;
  });

  const callerOf = (request: FastifyRequest): Caller => callers.get(request) ?? { kind: 'anonymous' };
  const owners = new Map<string, GiteaUser>();
  const ownerOf = (repository: SandboxRepository): GiteaUser => {
    const login = repository.path.split('/')[0]!.toLowerCase();
    let owner = owners.get(login);
    if (!owner) {
      owner = {
        id: 100 + owners.size,
        login,
        fullName: '',
        email: `${login}@sandbox.invalid`,
        isAdmin: false,
      };
      owners.set(login, owner);
    }
    return owner;
  };
  const ssh = opts.ssh ?? { host: '127.0.0.1', port: 22 };
  // Gitea's clone link: the scp form on port 22, a URL on any other.
  const sshCloneUrl = (path: string) =>
    ssh.port === 22 ? `git@${ssh.host}:${path}.git` : `ssh://git@${ssh.host}:${ssh.port}/${path}.git`;

  app.get('/api/v1/version', async () => ({ version: GITEA_VERSION }));
  app.get('/api/v1/settings/api', async () => API_SETTINGS);
  app.get('/api/v1/user', async (request, reply) => {
    const caller = callerOf(request);
    const scopeError = missingScope(caller, 'user', false);
    if (scopeError) return fail(reply, 403, scopeError);
    if (caller.kind !== 'user') return fail(reply, 401, 'token is required');
    return userBody(origin, caller.user, createdAt);
  });
  app.get('/swagger.v1.json', async (_request, reply) => {
    const document = await readFile(SWAGGER_FILE, 'utf8').catch(() => undefined);
    if (document === undefined) return fail(reply, 404, 'not found');
    return reply.type('application/json').send(document);
  });
  registerRepositoryRoutes(app, {
    state,
    keys,
    origin: () => origin,
    callerOf,
    ownerOf,
    sshCloneUrl,
    createdAt,
  });

  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  return {
    url: origin,
    apiUrl: `${origin}/api/v1`,
    keys,
    faults,
    setRateLimit: (options) => limiter.configure(options),
    addUserKey(publicKey) {
      const checked = checkPublicKey(publicKey);
      if ('error' in checked) throw new Error(checked.error);
      keys.addUserKey(checked);
    },
    close: () => app.close(),
  };
}
