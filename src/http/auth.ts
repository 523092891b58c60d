import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type AccessAction, requireAccess } from '../auth/access.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { bearerToken, unauthorized } from '../auth/bearer-token.ts';
import type { Caller } from '../keys/caller.ts';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
  interface FastifyContextConfig {
    /** What the route does, as the access table (src/auth/access.ts) names it. */
    access?: AccessAction;
  }
}

export { bearerToken, unauthorized };

export function requireCaller(request: FastifyRequest): Caller {
  if (!request.caller) throw unauthorized('authentication required');
  return request.caller;
}

/**
 * Every route of the plugin authenticates its caller before anything else runs, and a caller whose
 * role may not do the route's action is refused (and audited) before the route is reached. The
 * action is the route's `config.access`, or `access` for an area whose routes all do one thing; a
 * route with neither is refused when it is registered, so no route is left open by omission.
 */
export function authenticateRequests(
  app: Pick<FastifyInstance, 'addHook'>,
  authenticate: Authenticator,
  access?: AccessAction,
): void {
  app.addHook('onRoute', (route) => {
    if (!route.config?.access && !access) {
      throw new Error(`route ${route.method} ${route.url} names no access action`);
    }
  });
  app.addHook('onRequest', async (request) => {
    request.caller = await authenticate(request);
    const action = request.routeOptions.config.access ?? access;
    if (action) requireAccess(request.caller, action);
  });
}
