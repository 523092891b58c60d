// Workload identity: CI jobs and Kubernetes pods present an OIDC ID token from an issuer we trust,
// and we learn who they are from its verified claims.
import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import Type, { type Static } from 'typebox';
import type { Logger } from '../log.ts';
import { type Clock, systemClock } from '../time.ts';
import { AuthError } from './auth-error.ts';
import { createIssuerKeys } from './oidc-keys.ts';

const HttpUrl = (description: string) => Type.String({ pattern: '^https?://[^\\s]+$', description });

export const OidcIssuerSchema = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$', description: 'Name access policy rules use' }),
    issuer: HttpUrl('Exact `iss` value of the tokens, e.g. https://token.actions.githubusercontent.com'),
    jwksUri: Type.Optional(HttpUrl('JWKS location; default: `jwks_uri` of the discovery document')),
    audience: Type.Optional(Type.String({ minLength: 1, description: 'Required `aud`; default: ours' })),
  },
  { additionalProperties: false },
);

export type OidcIssuer = Static<typeof OidcIssuerSchema>;
export type OidcKind = 'github-actions' | 'gitlab-ci' | 'kubernetes' | 'generic';

export interface OidcIdentity {
  issuerId: string;
  issuer: string;
  kind: OidcKind;
  subject: string;
  claims: Record<string, unknown>;
}

export interface OidcVerifierOptions {
  issuers: OidcIssuer[];
  audience: string;
  clockSkewSeconds: number;
  logger: Logger;
  fetchTimeoutMs?: number;
  /** What `exp`, `nbf` and `iat` are checked against; the system clock by default. */
  clock?: Clock;
}

export interface OidcVerifier {
  verify(token: string): Promise<OidcIdentity>;
  looksLikeJwt(token: string): boolean;
}

// Asymmetric only: with an HMAC algorithm the issuer's *public* key would become the shared secret.
const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];
// Real ID tokens are a few kilobytes; anything far larger is not worth decoding.
const MAX_TOKEN_LENGTH = 16_384;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** Whether any claim name or string value, at any depth, holds a control character (NUL included). */
function hasControlCharacter(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return CONTROL_CHARACTER.test(value);
  if (value === null || typeof value !== 'object' || depth > 16) return false;
  return Object.entries(value).some(
    ([key, entry]) => CONTROL_CHARACTER.test(key) || hasControlCharacter(entry, depth + 1),
  );
}

export function detectKind(claims: Record<string, unknown>): OidcKind {
  if (isObject(claims['kubernetes.io'])) return 'kubernetes';
  if (
    isText(claims.repository) &&
    isText(claims.repository_owner) &&
    (isText(claims.workflow) || isText(claims.job_workflow_ref))
  ) {
    return 'github-actions';
  }
  if (isText(claims.project_path) && isText(claims.namespace_path)) return 'gitlab-ci';
  return 'generic';
}

function decodeUnverified(token: string): { alg: unknown; payload: JWTPayload } {
  try {
    return { alg: decodeProtectedHeader(token).alg, payload: decodeJwt(token) };
  } catch (cause) {
    throw new AuthError('malformed-token', 'the token is not a well-formed JWT', { cause });
  }
}

function toAuthError(error: unknown): AuthError {
  if (error instanceof AuthError) return error;
  if (error instanceof errors.JWTExpired) return new AuthError('expired', 'the token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return new AuthError('not-yet-valid', 'the token is not valid yet (nbf)');
    if (error.claim === 'aud')
      return new AuthError('wrong-audience', 'the token is meant for another audience');
    const problem = error.reason === 'missing' ? 'missing' : 'invalid';
    return new AuthError('invalid-claims', `the token's "${error.claim}" claim is ${problem}`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return new AuthError('unsupported-algorithm', 'the token is signed with an algorithm we do not accept');
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError('bad-signature', 'the token signature does not verify');
  }
  return new AuthError('malformed-token', 'the token is not a well-formed JWT', { cause: error });
}

type KnownIssuer = OidcIssuer & { keys: ReturnType<typeof createIssuerKeys> };

/** The configured issuers by their exact `iss`, each with its own key set; a duplicate is a config error. */
function configuredIssuers(options: OidcVerifierOptions): Map<string, KnownIssuer> {
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 5_000;
  const issuers = new Map<string, KnownIssuer>();
  for (const issuer of options.issuers) {
    if (issuers.has(issuer.issuer) || [...issuers.values()].some((known) => known.id === issuer.id)) {
      throw new Error(`OIDC issuer ${issuer.id} (${issuer.issuer}) is configured twice`);
    }
    issuers.set(issuer.issuer, {
      ...issuer,
      keys: createIssuerKeys({
        issuer: issuer.issuer,
        fetchTimeoutMs,
        clock: options.clock ?? systemClock,
        ...(issuer.jwksUri === undefined ? {} : { jwksUri: issuer.jwksUri }),
      }),
    });
  }
  return issuers;
}

/** The trusted issuer whose keys may verify this token, from checks made before any signature is. */
function issuerToTry(issuers: Map<string, KnownIssuer>, token: string): KnownIssuer {
  if (typeof token !== 'string' || token.length === 0) {
    throw new AuthError('missing-token', 'no token was presented');
  }
  if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('malformed-token', 'the token is too long');
  const { alg, payload } = decodeUnverified(token);
  // The unverified `iss` only picks which configured issuer's keys to try; nothing else is trusted yet,
  // and a token naming any other issuer never makes us fetch anything.
  const issuer = typeof payload.iss === 'string' ? issuers.get(payload.iss) : undefined;
  if (!issuer) throw new AuthError('unknown-issuer', 'the token comes from an issuer we do not trust');
  if (typeof alg !== 'string' || !ALGORITHMS.includes(alg)) {
    throw new AuthError('unsupported-algorithm', 'the token is signed with an algorithm we do not accept');
  }
  return issuer;
}

async function verifiedClaims(
  token: string,
  issuer: KnownIssuer,
  options: OidcVerifierOptions,
): Promise<JWTPayload & { sub: string }> {
  let claims: JWTPayload;
  const now = (options.clock ?? systemClock)();
  try {
    ({ payload: claims } = await jwtVerify(token, issuer.keys, {
      currentDate: now,
      issuer: issuer.issuer,
      audience: issuer.audience ?? options.audience,
      algorithms: ALGORITHMS,
      clockTolerance: options.clockSkewSeconds,
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (error) {
    throw toAuthError(error);
  }
  // jose checks `iat` only when a maximum age is set; a token issued in the future is not valid yet.
  if (typeof claims.iat === 'number' && claims.iat > now.getTime() / 1000 + options.clockSkewSeconds) {
    throw new AuthError('not-yet-valid', 'the token was issued in the future (iat)');
  }
  if (!isText(claims.sub)) throw new AuthError('invalid-claims', 'the token\'s "sub" claim is empty');
  // Claims become identities, audit records and policy input; a control character in any of them
  // (NUL cannot even be stored) makes the token unusable rather than something to clean up.
  if (hasControlCharacter(claims)) {
    throw new AuthError('invalid-claims', 'the token carries a claim with a control character', {
      identity: { issuerId: issuer.id, subject: claims.sub },
    });
  }
  return { ...claims, sub: claims.sub };
}

function looksLikeJwt(token: string): boolean {
  if (token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) return false;
  try {
    return typeof decodeProtectedHeader(token).alg === 'string';
  } catch {
    return false;
  }
}

export function createOidcVerifier(options: OidcVerifierOptions): OidcVerifier {
  const { logger } = options;
  const issuers = configuredIssuers(options);

  const check = async (token: string): Promise<OidcIdentity> => {
    const issuer = issuerToTry(issuers, token);
    const claims = await verifiedClaims(token, issuer, options);
    return {
      issuerId: issuer.id,
      issuer: issuer.issuer,
      kind: detectKind(claims),
      subject: claims.sub,
      claims: { ...claims },
    };
  };

  return {
    async verify(token) {
      try {
        return await check(token);
      } catch (error) {
        const refused = toAuthError(error);
        if (refused.reason === 'issuer-unavailable') {
          logger.warn({ reason: refused.reason, err: refused.cause }, refused.message);
        } else {
          logger.debug({ reason: refused.reason }, 'OIDC token refused');
        }
        throw refused;
      }
    },
    looksLikeJwt,
  };
}
