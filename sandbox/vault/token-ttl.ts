// Token lifetimes as Vault computes them (sdk/framework/lease.go `CalculateTTL`) and the renewal
// endpoints `auth/token/renew-self` and `auth/token/renew` (vault/expiration.go `RenewToken`):
// a renewal asks for an increment, gets at most what is left of the token's max TTL, and is told
// so in Vault's warning.
import {
  badRequest,
  multiError,
  parseDurationSeconds,
  type VaultRequest,
  type VaultRoute,
  vaultFailure,
} from './http.ts';
import type { TokenEntry, TokenStore } from './tokens.ts';

// The token mount's default and maximum lease TTL (768h), as on a Vault without tuning.
export const SYSTEM_MAX_TTL = 768 * 3600;
export const SYSTEM_DEFAULT_TTL = 768 * 3600;

export interface TtlInput {
  /** What a renewal asks for; 0 = the backend's TTL. */
  increment?: number;
  /** The TTL the auth method (role) or token store grants; 0 = the system default. */
  backendTtl: number;
  period: number;
  /** The role's `token_max_ttl`; 0 = the system maximum. */
  backendMaxTtl: number;
  explicitMaxTtl: number;
  /** When the token was issued: max TTLs count from here. */
  issuedAtMs: number;
  nowMs: number;
}

/** Go's `time.Duration.String()` for whole seconds, trimmed as Vault's `humanDuration` trims it. */
export function humanDuration(seconds: number): string {
  if (seconds === 0) return '0s';
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  let text = hours > 0 ? `${hours}h${minutes}m${rest}s` : minutes > 0 ? `${minutes}m${rest}s` : `${rest}s`;
  if (text.endsWith('m0s')) text = text.slice(0, -2);
  const zeroMinutes = text.indexOf('h0m');
  if (zeroMinutes > 0) text = text.slice(0, zeroMinutes + 1) + text.slice(zeroMinutes + 3);
  return text;
}

export function calculateTtl(input: TtlInput): { ttl: number; warnings: string[] } {
  // Vault truncates every time to the second first.
  const now = Math.floor(input.nowMs / 1000);
  const start = Math.floor(input.issuedAtMs / 1000);
  const warnings: string[] = [];
  let maxTtl = SYSTEM_MAX_TTL;
  if (input.backendMaxTtl > 0 && input.backendMaxTtl < maxTtl) maxTtl = input.backendMaxTtl;
  if (input.explicitMaxTtl > 0 && input.explicitMaxTtl < maxTtl) maxTtl = input.explicitMaxTtl;

  let ttl: number;
  let maxValidTime: number | undefined;
  if (input.period > 0) {
    let period = input.period;
    if (period > maxTtl) {
      warnings.push(
        `period of "${humanDuration(period)}" exceeded the effective max_ttl of "${humanDuration(maxTtl)}"; period value is capped accordingly`,
      );
      period = maxTtl;
    }
    ttl = period;
    // A periodic token has no max TTL unless an explicit one was set.
    if (input.explicitMaxTtl > 0) maxValidTime = start + input.explicitMaxTtl;
  } else {
    ttl =
      (input.increment ?? 0) > 0
        ? input.increment!
        : input.backendTtl > 0
          ? input.backendTtl
          : SYSTEM_DEFAULT_TTL;
    maxValidTime = start + maxTtl;
  }

  if (maxValidTime !== undefined) {
    const maxValidTtl = maxValidTime - now;
    if (maxValidTtl <= 0) throw vaultFailure(500, multiError('past the max TTL, cannot renew'));
    if (maxValidTtl < ttl) {
      warnings.push(
        `TTL of "${humanDuration(ttl)}" exceeded the effective max_ttl of "${humanDuration(maxValidTtl)}"; TTL value is capped accordingly`,
      );
      ttl = maxValidTtl;
    }
  }
  return { ttl, warnings };
}

/**
 * The lifetime `auth/token/create` gives (vault/token_store.go handleCreateCommon): a periodic
 * token needs sudo (root here), and the TTL is the requested one, the period or the default,
 * capped by the explicit max TTL.
 */
export function creationLifetime(
  body: Record<string, unknown>,
  policies: string[],
  isRoot: boolean,
  nowMs: number,
) {
  const seconds = (field: string) => {
    const value = parseDurationSeconds(body[field], field);
    if (value < 0) throw badRequest(`${field} must be positive`);
    return value;
  };
  const explicitMaxTtl = seconds('explicit_max_ttl');
  const period = seconds('period');
  if (period > 0 && !isRoot) throw badRequest('root or sudo privileges required to create periodic token');
  const requested = seconds('ttl');
  let ttl = 0;
  let warnings: string[] = [];
  if (period > 0 || requested > 0 || !policies.includes('root')) {
    ({ ttl, warnings } = calculateTtl({
      backendTtl: requested,
      period,
      backendMaxTtl: 0,
      explicitMaxTtl,
      issuedAtMs: nowMs,
      nowMs,
    }));
  }
  // Root tokens are still bound by an explicit max TTL.
  if (ttl === 0 && explicitMaxTtl > 0) ttl = explicitMaxTtl;
  return { ttl, period, explicitMaxTtl, warnings };
}

/** What an auth method grants on renewal: its role's current TTLs (a login token), or the token's own. */
export interface RenewalTerms {
  ttl: number;
  maxTtl: number;
  period: number;
}

type RenewingStore = Pick<TokenStore, 'lookup' | 'auth'>;

function renew(tokens: RenewingStore, entry: TokenEntry, request: VaultRequest, now: () => number) {
  // Root tokens never expire, so there is no lease to renew.
  if (entry.expiresAt === undefined || !entry.renewable) throw badRequest('lease is not renewable');
  const increment = parseDurationSeconds(request.data.increment, 'increment');
  const terms: RenewalTerms = entry.renewal?.() ?? {
    ttl: entry.leaseTtl,
    maxTtl: entry.maxTtl,
    period: entry.period,
  };
  const { ttl, warnings } = calculateTtl({
    increment,
    backendTtl: terms.ttl,
    period: terms.period,
    backendMaxTtl: terms.maxTtl,
    explicitMaxTtl: entry.explicitMaxTtl,
    issuedAtMs: entry.createdAt,
    nowMs: now(),
  });
  entry.expiresAt = now() + ttl * 1000;
  entry.leaseTtl = ttl;
  entry.lastRenewalAt = now();
  return { auth: { ...tokens.auth(entry), lease_duration: ttl }, warnings };
}

export function createRenewalRoutes(tokens: RenewingStore, now: () => number): VaultRoute[] {
  return [
    {
      pattern: /^auth\/token\/renew-self$/,
      operations: { update: (request) => renew(tokens, tokens.lookup(request.clientToken)!, request, now) },
    },
    {
      pattern: /^auth\/token\/renew$/,
      operations: {
        update: (request) => {
          const id = typeof request.data.token === 'string' ? request.data.token : '';
          if (id === '') throw badRequest('missing token ID');
          const entry = tokens.lookup(id);
          if (!entry) throw badRequest('token not found');
          return renew(tokens, entry, request, now);
        },
      },
    },
  ];
}
