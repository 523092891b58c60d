// Caller authentication. Until workload identity (OIDC) lands, callers present a static bearer
// token from configuration; everything downstream only sees the resulting `Caller`.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Caller } from '../keys/caller.ts';
import { AppError } from './errors.ts';

export type Authenticator = (request: FastifyRequest) => Promise<Caller>;

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

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
  return match[1];
}

export function createStaticTokenAuthenticator(tokens: { name: string; token: string }[]): Authenticator {
  const known = tokens.map(({ name, token }) => ({ name, digest: sha256(token) }));
  return async (request) => {
    const digest = sha256(bearerToken(request));
    // Compare against every token so the time taken does not reveal which one came close.
    let match: string | undefined;
    for (const entry of known) if (timingSafeEqual(entry.digest, digest)) match = entry.name;
    if (!match) throw unauthorized('the token is not valid');
    return {
      id: `token:${match}`,
      actor: `token:${match}`,
      role: 'issuer',
      details: { kind: 'api-token', name: match },
    };
  };
}

export function requireCaller(request: FastifyRequest): Caller {
  if (!request.caller) throw unauthorized('authentication required');
  return request.caller;
}
