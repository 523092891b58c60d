import type { FastifyRequest } from 'fastify';
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
