import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Role } from '../db/schema.ts';
import type { Caller } from '../keys/caller.ts';
import { AppError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

export function unauthorized(message: string): AppError {
  return new AppError('unauthorized', 401, message, {
    headers: { 'www-authenticate': 'Bearer realm="deploykey"' },
  });
}

export function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (!header) throw unauthorized('send "Authorization: Bearer <token>"');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw unauthorized('the Authorization header must be "Bearer <token>"');
  if (match[1].length > 8192) throw unauthorized('the bearer token is too long');
  return match[1];
}

export function requireCaller(request: FastifyRequest, roles?: Role[]): Caller {
  if (!request.caller) throw unauthorized('authentication required');
  if (roles && !roles.includes(request.caller.role)) {
    throw new AppError(
      'role-not-allowed',
      403,
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
