// The JWT auth method's token checks, in the order and with the messages of hashicorp/cap's
// `jwt.Validator` and vault-plugin-auth-jwt's `pathLogin`: signature, algorithm, issuer, subject,
// audience, time claims with the role's leeways, then the role's user and bound claims.
import type { KeyObject } from 'node:crypto';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import { badRequest, isObject } from './http.ts';

export const DEFAULT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
];
// go-jose's default clock skew leeway, and cap's leeway for a missing `exp` or `nbf`.
const DEFAULT_CLOCK_SKEW = 60;
const DEFAULT_LEEWAY = 150;

/** Where the signing keys come from: PEM keys given in the config, or a JWKS fetched from a URL. */
export type KeySource =
  | { kind: 'static'; keys: KeyObject[] }
  | { kind: 'remote'; jwks(refresh: boolean): Promise<JSONWebKeySet> };

export interface Expectations {
  boundIssuer: string;
  boundSubject: string;
  boundAudiences: string[];
  algorithms: string[];
  /** Seconds; 0 = cap's default, negative = none. */
  expirationLeeway: number;
  notBeforeLeeway: number;
  clockSkewLeeway: number;
  nowMs: number;
}

const tokenError = (detail: string) => badRequest(`error validating token: ${detail}`);
const leeway = (seconds: number, fallback: number) => (seconds < 0 ? 0 : seconds === 0 ? fallback : seconds);

async function verifiedClaims(jwt: string, source: KeySource): Promise<unknown> {
  const decode = (payload: Uint8Array) => JSON.parse(new TextDecoder().decode(payload)) as unknown;
  if (source.kind === 'static') {
    for (const key of source.keys) {
      try {
        return decode((await compactVerify(jwt, key)).payload);
      } catch {}
    }
    throw tokenError(
      'error verifying token signature: no known key successfully validated the token signature',
    );
  }
  // go-oidc's remote key set refetches the JWKS once when no cached key verifies the token.
  for (const refresh of [false, true]) {
    try {
      return decode((await compactVerify(jwt, createLocalJWKSet(await source.jwks(refresh)))).payload);
    } catch {}
  }
  throw tokenError('error verifying token signature: failed to verify id token signature');
}

function checkTimes(claims: Record<string, unknown>, expected: Expectations): void {
  const number = (value: unknown) => (typeof value === 'number' ? value : 0);
  const iat = number(claims.iat);
  let exp = number(claims.exp);
  let nbf = number(claims.nbf);
  if (iat === 0 && exp === 0 && nbf === 0) {
    throw tokenError('no issued at (iat), not before (nbf), or expiration time (exp) claims in token');
  }
  if (exp === 0) exp = Math.max(iat, nbf) + leeway(expected.expirationLeeway, DEFAULT_LEEWAY);
  if (nbf === 0) nbf = iat !== 0 ? iat : exp - leeway(expected.notBeforeLeeway, DEFAULT_LEEWAY);
  const skew = leeway(expected.clockSkewLeeway, DEFAULT_CLOCK_SKEW);
  const now = expected.nowMs / 1000;
  if (now + skew < nbf) throw tokenError('invalid not before (nbf) claim: token not yet valid');
  if (now - skew > exp) throw tokenError('invalid expiration time (exp) claim: token is expired');
  if (iat !== 0 && now + skew < iat)
    throw tokenError('invalid issued at (iat) claim: token issued in the future');
}

/** The claims of a JWT that passes every check `expected` asks for, or Vault's 400 naming the first failure. */
export async function validateJwt(
  jwt: string,
  source: KeySource,
  expected: Expectations,
): Promise<Record<string, unknown>> {
  const claims = await verifiedClaims(jwt, source);
  if (!isObject(claims)) throw tokenError('error verifying token signature: invalid claims');
  const algorithm = decodeProtectedHeader(jwt).alg ?? '';
  const allowed = expected.algorithms.length > 0 ? expected.algorithms : DEFAULT_ALGORITHMS;
  if (!allowed.includes(algorithm)) {
    throw tokenError('invalid algorithm (alg) header parameter: token signed with unexpected algorithm');
  }
  if (expected.boundIssuer !== '' && claims.iss !== expected.boundIssuer)
    throw tokenError('invalid issuer (iss) claim');
  if (expected.boundSubject !== '' && claims.sub !== expected.boundSubject) {
    throw tokenError('invalid subject (sub) claim');
  }
  const audiences = Array.isArray(claims.aud)
    ? claims.aud
    : typeof claims.aud === 'string'
      ? [claims.aud]
      : [];
  if (expected.boundAudiences.length > 0 && !expected.boundAudiences.some((aud) => audiences.includes(aud))) {
    throw tokenError('invalid audience (aud) claim: audience claim does not match any expected audience');
  }
  checkTimes(claims, expected);
  if (expected.boundAudiences.length === 0 && audiences.some((aud) => aud !== '')) {
    throw badRequest('audience claim found in JWT but no audiences bound to the role');
  }
  return claims;
}

/** A claim by name, or by JSON pointer (`/a/b`) as the plugin reads one. */
export function claimOf(claims: Record<string, unknown>, name: string): unknown {
  if (!name.startsWith('/')) return claims[name];
  let value: unknown = claims;
  for (const part of name.slice(1).split('/')) {
    if (!isObject(value)) return undefined;
    value = value[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return value;
}

// ryanuber/go-glob: `*` matches any run of characters, anywhere in the pattern.
function glob(pattern: string, value: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === value;
  if (!value.startsWith(parts[0]!) || !value.endsWith(parts.at(-1)!)) return false;
  let at = parts[0]!.length;
  for (const part of parts.slice(1, -1)) {
    const found = value.indexOf(part, at);
    if (found < 0) return false;
    at = found + part.length;
  }
  return at <= value.length - parts.at(-1)!.length;
}

/** validateBoundClaims: every bound claim must be present and match one of its values. */
export function checkBoundClaims(
  claims: Record<string, unknown>,
  bound: Record<string, unknown>,
  type: string,
): void {
  const list = (value: unknown) => (Array.isArray(value) ? value : [value]);
  for (const [name, wanted] of Object.entries(bound)) {
    const actual = claimOf(claims, name);
    if (actual === undefined || actual === null)
      throw badRequest(`error validating claims: claim "${name}" is missing`);
    const matched = list(wanted).some((expected) =>
      list(actual).some((value) =>
        type === 'glob' ? typeof value === 'string' && glob(String(expected), value) : value === expected,
      ),
    );
    if (!matched) {
      throw badRequest(
        `error validating claims: claim "${name}" does not match any associated bound claim values`,
      );
    }
  }
}
