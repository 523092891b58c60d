// The HTTP front of the Gitea stand-in: what Gitea does to every API request before a route runs
// (the per-client limit, finding the caller, refusing an unknown token) and to every answer (headers).
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import { type Caller, type GiteaTokenGrant, identifyCaller } from './auth.ts';
import { type GiteaRateLimiter, RATE_LIMITED_TEXT } from './rate-limit.ts';
import { apiError } from './responses.ts';

export interface GiteaServerOptions {
  grants: Map<string, GiteaTokenGrant>;
  limiter: GiteaRateLimiter;
  acceptQueryTokens: boolean;
  /** The instance root, known once the server listens. */
  origin: () => string;
}

export interface GiteaServer {
  app: FastifyInstance;
  faults: FaultInjector;
  callerOf(request: FastifyRequest): Caller;
}

const SANDBOX_ROUTES = '/_sandbox/';
// Gitea sends this warning whenever a query carries a token; its text still names 1.23.
const QUERY_TOKEN_WARNING =
  'token and access_token API authentication is deprecated and will be removed in gitea 1.23. Please use AuthorizationHeaderToken instead. Existing queries will continue to work but without authorization.';

export function createGiteaServer(opts: GiteaServerOptions): GiteaServer {
  const app = Fastify({ logger: false });
  const fail = (reply: FastifyReply, status: number, message: string) =>
    reply.code(status).send(apiError(opts.origin(), message));
  const faults = registerFaults(app, (status) =>
    status === 429 ? RATE_LIMITED_TEXT : apiError(opts.origin(), status >= 500 ? '' : 'injected fault'),
  );
  const callers = new WeakMap<FastifyRequest, Caller>();

  // Gitea binds the body itself (see create-key-option.ts); only the sandbox's own routes take JSON here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    if (!request.url.startsWith(SANDBOX_ROUTES)) return done(null, body);
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
    if (request.url.startsWith(SANDBOX_ROUTES)) return;
    reply.header('cache-control', 'max-age=0, private, must-revalidate');
    reply.header('x-content-type-options', 'nosniff');
    const retryAfter = opts.limiter.retryAfter(request.ip);
    if (retryAfter !== undefined) {
      reply.header('retry-after', String(retryAfter)).header('content-type', 'text/plain; charset=utf-8');
      return reply.code(429).send(RATE_LIMITED_TEXT);
    }
    const caller = identifyCaller(request, opts.grants, opts.acceptQueryTokens);
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

  return { app, faults, callerOf: (request) => callers.get(request) ?? { kind: 'anonymous' } };
}
