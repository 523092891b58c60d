// The token fields every auth method's role carries (sdk/helper/tokenutil): their parsing, their
// read-back, and the token a login gets from them, renewed later on the role's current TTLs.
import {
  badRequest,
  multiError,
  parseDurationSeconds,
  stringList,
  type VaultResult,
  vaultFailure,
} from './http.ts';
import { sanitizePolicies } from './policies.ts';
import { calculateTtl, type RenewalTerms } from './token-ttl.ts';
import { newEntityId, type TokenStore } from './tokens.ts';

export interface TokenParams {
  tokenPolicies: string[];
  tokenTtl: number;
  tokenMaxTtl: number;
  tokenPeriod: number;
  tokenExplicitMaxTtl: number;
  tokenNumUses: number;
  tokenNoDefaultPolicy: boolean;
  tokenType: string;
  tokenBoundCidrs: string[];
  /** Fields last set under their deprecated names (`policies`, `ttl`, …), read back under those too. */
  legacy: Set<string>;
}

const TOKEN_TYPES = new Set(['default', 'service', 'batch', 'default-service', 'default-batch']);
// tokenutil.UpgradeValue: the deprecated name each `token_*` field replaces.
const DEPRECATED: Record<string, keyof TokenParams> = {
  policies: 'tokenPolicies',
  ttl: 'tokenTtl',
  max_ttl: 'tokenMaxTtl',
  period: 'tokenPeriod',
  num_uses: 'tokenNumUses',
  bound_cidrs: 'tokenBoundCidrs',
};
const FIELDS: Record<string, keyof TokenParams> = {
  token_policies: 'tokenPolicies',
  token_ttl: 'tokenTtl',
  token_max_ttl: 'tokenMaxTtl',
  token_period: 'tokenPeriod',
  token_num_uses: 'tokenNumUses',
  token_bound_cidrs: 'tokenBoundCidrs',
};

export function defaultTokenParams(): TokenParams {
  return {
    tokenPolicies: [],
    tokenTtl: 0,
    tokenMaxTtl: 0,
    tokenPeriod: 0,
    tokenExplicitMaxTtl: 0,
    tokenNumUses: 0,
    tokenNoDefaultPolicy: false,
    tokenType: 'default',
    tokenBoundCidrs: [],
    legacy: new Set(),
  };
}

function fieldValue(field: keyof TokenParams, raw: unknown, name: string): unknown {
  if (field === 'tokenPolicies' || field === 'tokenBoundCidrs') return stringList(raw);
  if (field === 'tokenNumUses') return Number(raw) || 0;
  return parseDurationSeconds(raw, name);
}

/** Applies the token fields present in a role write to `params`; throws Vault's 400 on a bad one. */
export function parseTokenFields(body: Record<string, unknown>, params: TokenParams): void {
  const target = params as unknown as Record<string, unknown>;
  for (const [name, field] of Object.entries(FIELDS)) {
    const deprecated = Object.keys(DEPRECATED).find((old) => DEPRECATED[old] === field)!;
    if (name in body) {
      target[field] = fieldValue(field, body[name], name);
      params.legacy.delete(deprecated);
    } else if (deprecated in body) {
      target[field] = fieldValue(field, body[deprecated], deprecated);
      params.legacy.add(deprecated);
    }
  }
  if ('token_explicit_max_ttl' in body) {
    params.tokenExplicitMaxTtl = parseDurationSeconds(body.token_explicit_max_ttl, 'token_explicit_max_ttl');
  }
  if ('token_no_default_policy' in body) params.tokenNoDefaultPolicy = body.token_no_default_policy === true;
  if ('token_type' in body) {
    const type = String(body.token_type || 'default');
    if (!TOKEN_TYPES.has(type)) throw badRequest(`invalid 'token_type' value "${type}"`);
    params.tokenType = type;
  }
  if (params.tokenMaxTtl < 0) throw badRequest("'token_max_ttl' cannot be negative");
  if (params.tokenPeriod < 0) throw badRequest("'token_period' cannot be negative");
  if (params.tokenTtl < 0) throw badRequest("'token_ttl' cannot be negative");
  if (params.tokenTtl > 0 && params.tokenMaxTtl > 0 && params.tokenTtl > params.tokenMaxTtl) {
    throw badRequest("'token_ttl' cannot be greater than 'token_max_ttl'");
  }
  if (params.tokenNumUses < 0) throw badRequest("'token_num_uses' cannot be negative");
}

/** tokenutil.PopulateTokenData, plus the deprecated names a role was written with. */
export function tokenData(params: TokenParams): Record<string, unknown> {
  const data: Record<string, unknown> = {
    token_bound_cidrs: params.tokenBoundCidrs,
    token_explicit_max_ttl: params.tokenExplicitMaxTtl,
    token_max_ttl: params.tokenMaxTtl,
    token_no_default_policy: params.tokenNoDefaultPolicy,
    token_period: params.tokenPeriod,
    token_policies: params.tokenPolicies,
    token_type: params.tokenType,
    token_ttl: params.tokenTtl,
    token_num_uses: params.tokenNumUses,
  };
  for (const old of params.legacy) {
    const value = (params as unknown as Record<string, unknown>)[DEPRECATED[old]!];
    if (Array.isArray(value) ? value.length > 0 : value !== 0) data[old] = value;
  }
  return data;
}

/** The renewal terms of a login token: its role's TTLs when it renews, or Vault's error once the role is gone. */
export function roleRenewal(
  missingRoleMessage: string,
  find: () => TokenParams | undefined,
): () => RenewalTerms {
  return () => {
    const role = find();
    if (!role) throw vaultFailure(500, multiError(missingRoleMessage));
    return { ttl: role.tokenTtl, maxTtl: role.tokenMaxTtl, period: role.tokenPeriod };
  };
}

export interface Login {
  meta: Record<string, string>;
  displayName: string;
  path: string;
  renewal: () => RenewalTerms;
}

/** The service token a successful login returns, its TTL computed as Vault's core computes it. */
export function issueLoginToken(
  tokens: TokenStore,
  params: TokenParams,
  login: Login,
  now: () => number,
): VaultResult {
  const at = now();
  const { ttl, warnings } = calculateTtl({
    backendTtl: params.tokenTtl,
    period: params.tokenPeriod,
    backendMaxTtl: params.tokenMaxTtl,
    explicitMaxTtl: params.tokenExplicitMaxTtl,
    issuedAtMs: at,
    nowMs: at,
  });
  const entry = tokens.issue({
    policies: sanitizePolicies(params.tokenPolicies, !params.tokenNoDefaultPolicy),
    ttl,
    period: params.tokenPeriod,
    maxTtl: params.tokenMaxTtl,
    explicitMaxTtl: params.tokenExplicitMaxTtl,
    numUses: params.tokenNumUses,
    meta: login.meta,
    displayName: login.displayName,
    path: login.path,
    entityId: newEntityId(),
    renewal: login.renewal,
  });
  return { auth: tokens.auth(entry), warnings };
}
