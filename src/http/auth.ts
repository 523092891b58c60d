import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.ts';
import { bearerToken, unauthorized } from '../auth/bearer-token.ts';
import type { Role } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import type { Caller } from '../keys/caller.ts';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

export { bearerToken, unauthorized };

export function requireCaller(request: FastifyRequest, roles?: Role[]): Caller {
  if (!request.caller) throw unauthorized('authentication required');
  if (roles && !roles.includes(request.caller.role)) {
    throw new RefusalError(
      'role-not-allowed',
      `this needs the role ${roles.join(' or ')}; the caller is ${request.caller.role}`,
      {
        denial: {
          actor: request.caller.actor,
          reason: 'role-not-allowed',
          details: { role: request.caller.role, needs: roles, caller: request.caller.id },
        },
      },
    );
  }
  return request.caller;
}

/**
 * Every route of the plugin authenticates its caller before anything else runs; with `roles`, a caller
 * of another role is refused (and audited) before the route is reached.
 */
export function authenticateRequests(
  app: Pick<FastifyInstance, 'addHook'>,
  authenticate: Authenticator,
  roles?: Role[],
): void {
  app.addHook('onRequest', async (request) => {
    request.caller = await authenticate(request);
    if (roles) requireCaller(request, roles);
  });
}
