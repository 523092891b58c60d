// Signing keys of one OIDC issuer: the discovery document names the JWKS, jose fetches and caches it,
// and an unknown `kid` earns exactly one refetch, so a rotated key works without restarting.
import { createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import type { Clock } from '../time.ts';
import { AuthError } from './auth-error.ts';

const CACHE_MAX_AGE_MS = 10 * 60_000;
// Any token can name any kid, so refetches on unknown kids are rationed: one per issuer per window.
// A refetch already in flight is shared, so the burst of tokens right after a rotation all wait on it.
const UNKNOWN_KID_REFETCH_COOLDOWN_MS = 30_000;

export interface IssuerKeysOptions {
  issuer: string;
  jwksUri?: string;
  fetchTimeoutMs: number;
  /** Times the refetch cooldown. */
  clock: Clock;
}

const unavailable = (issuer: string, cause: unknown) =>
  new AuthError('issuer-unavailable', `the signing keys of issuer ${issuer} could not be fetched`, { cause });

const unknownKey = () => new AuthError('unknown-key', 'the issuer publishes no key matching the token');

// OpenID Connect Discovery 1.0 §4: drop a trailing "/" from the issuer before appending the path.
export const discoveryUrl = (issuer: string) =>
  `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;

async function discoverJwksUri(issuer: string, timeoutMs: number): Promise<URL> {
  const response = await fetch(discoveryUrl(issuer), {
    headers: { accept: 'application/json' },
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (response.status !== 200) throw new Error(`discovery answered ${response.status}`);
  const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  // Discovery §4.3: the document's issuer must be identical to the one it was fetched for.
  if (document.issuer !== issuer) throw new Error('discovery document names a different issuer');
  if (typeof document.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
  return new URL(document.jwks_uri);
}

export function createIssuerKeys(options: IssuerKeysOptions): JWTVerifyGetKey {
  let keySet: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  let refetch: Promise<void> | undefined;
  let lastRefetchAt = Number.NEGATIVE_INFINITY;

  const remoteKeySet = () => {
    keySet ??= (async () => {
      const url = options.jwksUri
        ? new URL(options.jwksUri)
        : await discoverJwksUri(options.issuer, options.fetchTimeoutMs);
      // An endless cooldown turns off jose's own refetch-on-unknown-kid; the rationed one below replaces it.
      return createRemoteJWKSet(url, {
        timeoutDuration: options.fetchTimeoutMs,
        cacheMaxAge: CACHE_MAX_AGE_MS,
        cooldownDuration: Number.POSITIVE_INFINITY,
      });
    })().catch((error: unknown) => {
      keySet = undefined;
      throw unavailable(options.issuer, error);
    });
    return keySet;
  };

  type RemoteKeys = ReturnType<typeof createRemoteJWKSet>;
  const lookUp = async (
    keys: RemoteKeys,
    ...args: Parameters<RemoteKeys>
  ): Promise<Awaited<ReturnType<RemoteKeys>> | undefined> => {
    try {
      return await keys(...args);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) return undefined;
      if (error instanceof errors.JWKSMultipleMatchingKeys) {
        throw new AuthError('unknown-key', 'the token names no kid and the issuer publishes several keys');
      }
      throw unavailable(options.issuer, error);
    }
  };

  return async (header, token) => {
    const keys = await remoteKeySet();
    const first = await lookUp(keys, header, token);
    if (first) return first;
    const now = options.clock().getTime();
    if (!refetch && now - lastRefetchAt >= UNKNOWN_KID_REFETCH_COOLDOWN_MS) {
      lastRefetchAt = now;
      refetch = keys.reload().finally(() => {
        refetch = undefined;
      });
    }
    await refetch?.catch((error: unknown) => {
      throw unavailable(options.issuer, error);
    });
    // Looked up again even without a refetch of our own: another request's may have just finished.
    const second = await lookUp(keys, header, token);
    if (second) return second;
    throw unknownKey();
  };
}
