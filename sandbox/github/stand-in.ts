// Local stand-in for GitHub's REST API: the deploy-key endpoints and `/meta`, with GitHub's auth,
// error bodies, pagination and rate limits. Served at the root, like api.github.com, so Octokit
// takes `url` as its `baseUrl`.
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import {
  createWebhookDispatcher,
  registerDeliveryFaults,
  type WebhookDispatcher,
} from '../shared/webhook-dispatcher.ts';
import { registerGithubActions } from './actions.ts';
import type { IdTokenMinter } from './actions-sandbox.ts';
import type { ActionsState } from './actions-state.ts';
import { registerGithubHooks } from './hooks.ts';
import { createGithubRateLimiter, type GithubRateLimitOptions, rateLimitHeaders } from './rate-limit.ts';
import {
  deployKeyBody,
  docs,
  errorBody,
  linkHeader,
  metaBody,
  parsePublicKey,
  primaryLimitMessage,
  readPage,
  requestId,
  secondaryLimitMessage,
  validationFailed,
} from './responses.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** GitHub's documentation URL for the route, echoed in its error bodies. */
    docs?: string;
  }
}

export interface GithubStandInOptions {
  state: HostState;
  tokens: string[];
  /** Public host keys (`ssh-ed25519 AAAA…`) for `GET /meta`; read per request, the SSH server may start later. */
  sshHostKeys: () => string[];
  rateLimit?: GithubRateLimitOptions;
  port?: number;
  /** Mints the OIDC token a workflow job would get; runs made on the stand-in come with one per job. */
  mintIdToken?: IdTokenMinter;
}

export interface GithubStandIn {
  url: string;
  faults: FaultInjector;
  /** Workflow runs and jobs; every change is delivered to the subscribed hooks. */
  actions: ActionsState;
  /** The webhook deliveries, with their faults (drop, duplicate, reverse, hold). */
  deliveries: WebhookDispatcher;
  setRateLimit(opts: GithubStandInOptions['rateLimit']): void;
  close(): Promise<void>;
}

type RepoParams = { owner?: string; repo?: string; repository_id?: string };
type KeyParams = RepoParams & { key_id: string };

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const AUTHORIZATION = /^(?:token|bearer)\s+(\S+)\s*$/i;
// GitHub serves every repository route both by name and, in the Link headers it writes, by id.
const REPOSITORY_PREFIXES = ['/repos/:owner/:repo', '/repositories/:repository_id'];

export async function startGithubStandIn(opts: GithubStandInOptions): Promise<GithubStandIn> {
  const { state } = opts;
  const tokens = new Set(opts.tokens);
  const limiter = createGithubRateLimiter(opts.rateLimit);
  const app = Fastify({ logger: false });

  const faults = registerFaults(app, (status) => errorBody(status));

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

    const header = request.headers.authorization;
    const token = header === undefined ? undefined : AUTHORIZATION.exec(header)?.[1];
    const credential = token !== undefined && tokens.has(token) ? token : null;
    if (header !== undefined && credential === null) {
      const outcome = limiter.take(null, false);
      if (outcome.kind !== 'secondary') reply.headers(rateLimitHeaders(outcome.snapshot));
      return reply.code(401).send(errorBody(401, 'Bad credentials'));
    }

    const outcome = limiter.take(credential, WRITE_METHODS.has(request.method));
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
        credential === null
          ? `${request.ip}. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)`
          : `user ID ${opts.tokens.indexOf(credential) + 1}`;
      return reply.code(403).send(errorBody(403, primaryLimitMessage(who, id), docs.rateLimits));
    }

    const route = request.routeOptions.url;
    if (credential === null && route !== undefined && route !== '/meta') {
      const routeDocs = request.routeOptions.config.docs;
      return reply.code(401).send(errorBody(401, 'Requires authentication', routeDocs));
    }
  });

  const apiUrl = (request: FastifyRequest) => `${request.protocol}://${request.host}`;

  const findRepository = (params: RepoParams): SandboxRepository | undefined => {
    if (params.repository_id !== undefined) {
      return /^\d+$/.test(params.repository_id)
        ? state.findRepository(Number(params.repository_id))
        : undefined;
    }
    return state.findRepository(`${params.owner}/${params.repo}`);
  };

  const notFound = (reply: FastifyReply, documentationUrl: string) =>
    reply.code(404).send(errorBody(404, 'Not Found', documentationUrl));

  const keyIdOf = (params: KeyParams) => (/^\d+$/.test(params.key_id) ? Number(params.key_id) : undefined);

  for (const prefix of REPOSITORY_PREFIXES) {
    app.get<{ Params: RepoParams; Querystring: Record<string, string | undefined> }>(
      `${prefix}/keys`,
      { config: { docs: docs.list } },
      async (request, reply) => {
        const repository = findRepository(request.params);
        if (!repository) return notFound(reply, docs.list);
        const page = readPage(request.query);
        const keys = state.listKeys(repository.id);
        // api.github.com writes its Link URLs against /repositories/{id}, keeping the caller's query.
        const { search } = new URL(request.url, apiUrl(request));
        const linkBase = new URL(`/repositories/${repository.id}/keys${search}`, apiUrl(request));
        const link = linkHeader(linkBase, page, keys.length);
        if (link) reply.header('link', link);
        const slice = keys.slice((page.page - 1) * page.perPage, page.page * page.perPage);
        return slice.map((key) => deployKeyBody(key, apiUrl(request), repository.path));
      },
    );

    app.post<{ Params: RepoParams; Body: unknown }>(
      `${prefix}/keys`,
      { config: { docs: docs.create } },
      async (request, reply) => {
        const repository = findRepository(request.params);
        if (!repository) return notFound(reply, docs.create);
        const body = request.body ?? {};
        if (typeof body !== 'object' || body === null || Array.isArray(body)) {
          return reply.code(400).send(errorBody(400, 'Body should be a JSON object', docs.create));
        }
        const input = body as Record<string, unknown>;
        const invalid = invalidRequest(input);
        if (invalid) return reply.code(422).send(errorBody(422, invalid, docs.create));

        const blob = parsePublicKey(input.key as string);
        if (!blob) {
          const message = 'key is invalid. You must supply a key in OpenSSH public key format';
          return reply.code(422).send(validationFailed('key', message, docs.create));
        }
        // A public key may be a deploy key of one repository only, host-wide.
        if (state.keysWithBlob(blob).length > 0) {
          return reply.code(422).send(validationFailed('key', 'key is already in use', docs.create));
        }
        const key = state.addKey({
          repositoryId: repository.id,
          title: (input.title as string | undefined) ?? '',
          key: blob,
          // Omitting read_only gives a read-write key on GitHub.
          readOnly: (input.read_only as boolean | undefined) ?? false,
          expiresAt: null,
        });
        const created = deployKeyBody(key, apiUrl(request), repository.path);
        return reply.code(201).header('location', created.url).send(created);
      },
    );

    app.get<{ Params: KeyParams }>(
      `${prefix}/keys/:key_id`,
      { config: { docs: docs.get } },
      async (request, reply) => {
        const repository = findRepository(request.params);
        const keyId = keyIdOf(request.params);
        const key = repository && keyId !== undefined ? state.getKey(repository.id, keyId) : undefined;
        if (!repository || !key) return notFound(reply, docs.get);
        return deployKeyBody(key, apiUrl(request), repository.path);
      },
    );

    app.delete<{ Params: KeyParams }>(
      `${prefix}/keys/:key_id`,
      { config: { docs: docs.delete } },
      async (request, reply) => {
        const repository = findRepository(request.params);
        const keyId = keyIdOf(request.params);
        if (!repository || keyId === undefined || !state.deleteKey(repository.id, keyId)) {
          return notFound(reply, docs.delete);
        }
        return reply.code(204).send();
      },
    );
  }

  app.get('/meta', async () => metaBody(opts.sshHostKeys()));

  let origin = '';
  const origins = () => ({ api: origin, web: origin });
  const deliveries = createWebhookDispatcher();
  registerDeliveryFaults(app, deliveries);
  const hooks = registerGithubHooks(app, { state, dispatcher: deliveries, origins });
  const actions = registerGithubActions(app, { state, hooks, origins, mintIdToken: opts.mintIdToken });

  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  origin = `http://127.0.0.1:${port}`;

  return {
    url: origin,
    faults,
    actions,
    deliveries,
    setRateLimit: (rateLimit) => limiter.configure(rateLimit),
    close: () => app.close(),
  };
}

// GitHub checks the body against the operation's schema before anything else and answers
// "Invalid request." (no `errors` array) for a missing or mistyped field.
function invalidRequest(body: Record<string, unknown>): string | undefined {
  if (body.key === undefined) return 'Invalid request.\n\n"key" wasn\'t supplied.';
  const expected: Array<[string, 'string' | 'boolean']> = [
    ['key', 'string'],
    ['title', 'string'],
    ['read_only', 'boolean'],
  ];
  for (const [field, type] of expected) {
    const value = body[field];
    if (value !== undefined && typeof value !== type) {
      return `Invalid request.\n\nFor 'properties/${field}', ${JSON.stringify(value)} is not a ${type}.`;
    }
  }
  return undefined;
}
