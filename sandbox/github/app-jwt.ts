// GitHub's checks of a GitHub App's JSON Web Token, with the statuses and messages api.github.com
// answers (docs.github.com "Generating a JSON Web Token (JWT) for a GitHub App"; the messages are
// the ones @octokit/auth-app matches to correct a client's clock skew).
import { verify } from 'node:crypto';
import type { GithubApp } from './app-registry.ts';

export type AppJwtCheck = { app: GithubApp } | { status: number; message: string };

export const JWT_MESSAGES = {
  undecodable: 'A JSON web token could not be decoded',
  issuer: "'Issuer' claim ('iss') must be an Integer",
  unknownApp: 'Integration not found',
  issuedAt:
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
  expired:
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
  tooFar: "'Expiration time' claim ('exp') is too far in the future",
} as const;

// `exp` may be at most ten minutes ahead; GitHub's own examples back-date `iat` by 60 s against
// clock drift and still set `exp` ten minutes from now, so `exp - iat` may reach eleven minutes.
const MAX_LIFETIME_SECONDS = 600;
const IAT_BACKDATE_SECONDS = 60;

const undecodable: AppJwtCheck = { status: 401, message: JWT_MESSAGES.undecodable };

function decodePart(part: string | undefined): Record<string, unknown> | undefined {
  if (!part) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function checkAppJwt(
  jwt: string,
  findApp: (issuer: string | number) => GithubApp | undefined,
  nowMs: number,
): AppJwtCheck {
  const [encodedHeader, encodedPayload, signature] = jwt.split('.');
  const header = decodePart(encodedHeader);
  const claims = decodePart(encodedPayload);
  if (!header || !claims || signature === undefined || header.alg !== 'RS256') return undecodable;

  const issuer = claims.iss;
  if (typeof issuer !== 'number' && (typeof issuer !== 'string' || issuer === '')) {
    return { status: 401, message: JWT_MESSAGES.issuer };
  }
  const app = findApp(issuer);
  if (!app) return { status: 404, message: JWT_MESSAGES.unknownApp };

  const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`);
  const valid = verify('RSA-SHA256', signed, app.publicKey, Buffer.from(signature, 'base64url'));
  if (!valid) return undecodable;

  const now = Math.floor(nowMs / 1000);
  const { iat, exp } = claims;
  if (typeof iat !== 'number' || !Number.isInteger(iat) || iat > now) {
    return { status: 401, message: JWT_MESSAGES.issuedAt };
  }
  if (typeof exp !== 'number' || exp <= now) return { status: 401, message: JWT_MESSAGES.expired };
  if (exp > now + MAX_LIFETIME_SECONDS || exp - iat > MAX_LIFETIME_SECONDS + IAT_BACKDATE_SECONDS) {
    return { status: 401, message: JWT_MESSAGES.tooFar };
  }
  return { app };
}
