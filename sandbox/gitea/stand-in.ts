// Local stand-in for a Gitea (or Forgejo) server: the deploy-key API under `/api/v1`, what clients ask
// first (`/version`, `/user`, `/repos/{owner}/{repo}`, `/settings/api`) and `/swagger.v1.json`, with
// Gitea's token forms, error bodies and headers. `url` is the instance's root, as Gitea clients take it.
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { FastifyReply } from 'fastify';
import { projectPath } from '../../src/project-root.ts';
import type { FaultInjector } from '../shared/faults.ts';
import type { HostState } from '../shared/host-state.ts';
import { createOwnerDirectory, type GiteaTokenGrant, missingScope } from './auth.ts';
import { createGiteaDeployKeys, type GiteaDeployKeys } from './deploy-keys.ts';
import { createGiteaServer } from './http.ts';
import { checkPublicKey } from './public-keys.ts';
import { createGiteaRateLimiter, type GiteaRateLimitOptions } from './rate-limit.ts';
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

// The subset of Gitea's description this stand-in serves; the tests hold its answers to the same file.
const SWAGGER_FILE = projectPath('test', 'fixtures', 'gitea-swagger.v1.json');

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
  let origin = '';
  const fail = (reply: FastifyReply, status: number, message: string) =>
    reply.code(status).send(apiError(origin, message));

  const { app, faults, callerOf } = createGiteaServer({
    grants,
    limiter,
    acceptQueryTokens: !opts.disableQueryAuthToken,
    origin: () => origin,
  });
  const ownerOf = createOwnerDirectory();
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
