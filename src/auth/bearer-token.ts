// Reading the caller's bearer token; every way it can be missing or malformed is `unauthorized`.
import { RefusalError } from '../errors.ts';

export function unauthorized(message: string): RefusalError {
  return new RefusalError('unauthorized', message);
}

export function bearerToken(request: { headers: { authorization?: string | undefined } }): string {
  const header = request.headers.authorization;
  if (!header) throw unauthorized('send "Authorization: Bearer <token>"');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw unauthorized('the Authorization header must be "Bearer <token>"');
  if (match[1].length > 8192) throw unauthorized('the bearer token is too long');
  return match[1];
}
