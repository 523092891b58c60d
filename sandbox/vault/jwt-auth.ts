// JWT/OIDC auth method (vault-plugin-auth-jwt) for machine logins: `auth/jwt/config` with
// `jwt_validation_pubkeys`, `jwks_url` or `oidc_discovery_url`, roles of `role_type: jwt` with
// bound audiences, subject and claims, and `auth/jwt/login` with `role` + `jwt`.
import {
  badRequest,
  isObject,
  parseDurationSeconds,
  stringList,
  type VaultRequest,
  type VaultRoute,
} from './http.ts';
import { type JwtConfig, text, writeConfig } from './jwt-config.ts';
import { checkBoundClaims, claimOf, validateJwt } from './jwt-validate.ts';
import {
  defaultTokenParams,
  issueLoginToken,
  parseTokenFields,
  roleRenewal,
  type TokenParams,
  tokenData,
} from './token-params.ts';
import type { TokenStore } from './tokens.ts';

interface JwtRole extends TokenParams {
  roleType: string;
  boundAudiences: string[];
  boundSubject: string;
  boundClaims: Record<string, unknown>;
  boundClaimsType: string;
  claimMappings: Record<string, string>;
  userClaim: string;
  userClaimJsonPointer: boolean;
  groupsClaim: string;
  allowedRedirectUris: string[];
  oidcScopes: string[];
  expirationLeeway: number;
  notBeforeLeeway: number;
  clockSkewLeeway: number;
}

const MOUNT = 'auth/jwt';

function newRole(): JwtRole {
  return {
    ...defaultTokenParams(),
    roleType: 'oidc',
    boundAudiences: [],
    boundSubject: '',
    boundClaims: {},
    boundClaimsType: 'string',
    claimMappings: {},
    userClaim: '',
    userClaimJsonPointer: false,
    groupsClaim: '',
    allowedRedirectUris: [],
    oidcScopes: [],
    expirationLeeway: 150,
    notBeforeLeeway: 150,
    clockSkewLeeway: 60,
  };
}

function applyRoleFields(role: JwtRole, body: Record<string, unknown>): void {
  role.roleType = text(body.role_type) || 'oidc';
  if (role.roleType !== 'jwt' && role.roleType !== 'oidc')
    throw badRequest(`invalid 'role_type': ${role.roleType}`);
  parseTokenFields(body, role);
  for (const [field, key] of [
    ['expiration_leeway', 'expirationLeeway'],
    ['not_before_leeway', 'notBeforeLeeway'],
    ['clock_skew_leeway', 'clockSkewLeeway'],
  ] as const) {
    if (field in body) role[key] = parseDurationSeconds(body[field], field);
  }
  if ('bound_audiences' in body) role.boundAudiences = stringList(body.bound_audiences);
  if ('bound_subject' in body) role.boundSubject = text(body.bound_subject);
  // Read with its default on every write, as the plugin reads it.
  role.boundClaimsType = text(body.bound_claims_type) || 'string';
  if (role.boundClaimsType !== 'string' && role.boundClaimsType !== 'glob') {
    throw badRequest(`invalid 'bound_claims_type': ${role.boundClaimsType}`);
  }
  if (isObject(body.bound_claims)) role.boundClaims = body.bound_claims;
  if (role.boundClaimsType === 'glob') {
    for (const value of Object.values(role.boundClaims).flat()) {
      if (typeof value !== 'string') throw badRequest(`claim is not a string: ${String(value)}`);
    }
  }
  if (isObject(body.claim_mappings)) {
    const targets = Object.values(body.claim_mappings).map(String);
    if (targets.includes('role'))
      throw badRequest('metadata key "role" is reserved and may not be a mapping destination');
    const repeated = targets.find((target, index) => targets.indexOf(target) !== index);
    if (repeated) throw badRequest(`multiple keys are mapped to metadata key "${repeated}"`);
    role.claimMappings = Object.fromEntries(
      Object.entries(body.claim_mappings).map(([key, value]) => [key, String(value)]),
    );
  }
  if ('user_claim' in body) role.userClaim = text(body.user_claim);
  if ('user_claim_json_pointer' in body) role.userClaimJsonPointer = body.user_claim_json_pointer === true;
  if ('groups_claim' in body) role.groupsClaim = text(body.groups_claim);
  if ('oidc_scopes' in body) role.oidcScopes = stringList(body.oidc_scopes);
  if ('allowed_redirect_uris' in body) role.allowedRedirectUris = stringList(body.allowed_redirect_uris);
}

function checkRole(role: JwtRole): void {
  if (role.userClaim === '') throw badRequest('a user claim must be defined on the role');
  if (role.roleType === 'oidc' && role.allowedRedirectUris.length === 0) {
    throw badRequest("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.");
  }
  const bound =
    role.boundAudiences.length > 0 ||
    role.tokenBoundCidrs.length > 0 ||
    role.boundSubject !== '' ||
    Object.keys(role.boundClaims).length > 0;
  if (role.roleType !== 'oidc' && !bound) {
    throw badRequest('must have at least one bound constraint when creating/updating a role');
  }
  if (role.tokenMaxTtl > 0 && role.tokenTtl > role.tokenMaxTtl)
    throw badRequest('ttl should not be greater than max ttl');
}

function roleData(role: JwtRole): Record<string, unknown> {
  return {
    role_type: role.roleType,
    expiration_leeway: role.expirationLeeway,
    not_before_leeway: role.notBeforeLeeway,
    clock_skew_leeway: role.clockSkewLeeway,
    bound_audiences: role.boundAudiences,
    bound_subject: role.boundSubject,
    bound_claims_type: role.boundClaimsType,
    bound_claims: Object.keys(role.boundClaims).length > 0 ? role.boundClaims : null,
    claim_mappings: Object.keys(role.claimMappings).length > 0 ? role.claimMappings : null,
    user_claim: role.userClaim,
    user_claim_json_pointer: role.userClaimJsonPointer,
    groups_claim: role.groupsClaim,
    allowed_redirect_uris: role.allowedRedirectUris,
    oidc_scopes: role.oidcScopes,
    verbose_oidc_logging: false,
    max_age: 0,
    ...tokenData(role),
  };
}

/** The claims a role maps into token metadata, as strings (extractMetadata). */
function mappedMetadata(
  claims: Record<string, unknown>,
  mappings: Record<string, string>,
): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [claim, key] of Object.entries(mappings)) {
    const value = claimOf(claims, claim);
    if (value === undefined) continue;
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      throw badRequest(`error converting claim '${claim}' to string`);
    }
    metadata[key] = String(value);
  }
  return metadata;
}

export function createJwtAuth(tokens: TokenStore, now: () => number): VaultRoute[] {
  let config: JwtConfig | undefined;
  const roles = new Map<string, JwtRole>();

  const login = async (request: VaultRequest) => {
    if (!config) throw badRequest('could not load configuration');
    const roleName = text(request.data.role).toLowerCase() || config.defaultRole;
    if (roleName === '') throw badRequest('missing role');
    const role = roles.get(roleName);
    if (!role) throw badRequest(`role "${roleName}" could not be found`);
    if (role.roleType === 'oidc') throw badRequest('role with oidc role_type is not allowed');
    const jwt = text(request.data.jwt);
    if (jwt === '') throw badRequest('missing token');

    const claims = await validateJwt(jwt, config.source, {
      boundIssuer: config.boundIssuer,
      boundSubject: role.boundSubject,
      boundAudiences: role.boundAudiences,
      algorithms: config.algorithms,
      expirationLeeway: role.expirationLeeway,
      notBeforeLeeway: role.notBeforeLeeway,
      clockSkewLeeway: role.clockSkewLeeway,
      nowMs: now(),
    });
    const user = role.userClaimJsonPointer ? claimOf(claims, role.userClaim) : claims[role.userClaim];
    if (user === undefined || user === null) throw badRequest(`claim "${role.userClaim}" not found in token`);
    if (typeof user !== 'string')
      throw badRequest(`claim "${role.userClaim}" could not be converted to string`);
    const metadata = { ...mappedMetadata(claims, role.claimMappings), role: roleName };
    checkBoundClaims(claims, role.boundClaims, role.boundClaimsType);

    return issueLoginToken(
      tokens,
      role,
      {
        meta: metadata,
        displayName: `jwt-${user}`,
        path: `${MOUNT}/login`,
        renewal: roleRenewal(`role ${roleName} does not exist during renewal`, () => roles.get(roleName)),
      },
      now,
    );
  };

  const writeRole = (request: VaultRequest, match: RegExpExecArray) => {
    const name = match[1]!.toLowerCase();
    const role = roles.get(name) ?? newRole();
    applyRoleFields(role, request.data);
    checkRole(role);
    roles.set(name, role);
    return null;
  };

  return [
    {
      pattern: new RegExp(`^${MOUNT}/config$`),
      operations: {
        read: () => (config ? { data: config.data } : null),
        create: async (request) => {
          config = await writeConfig(request);
          return null;
        },
        update: async (request) => {
          config = await writeConfig(request);
          return null;
        },
      },
    },
    {
      pattern: new RegExp(`^${MOUNT}/role/?$`),
      operations: { list: () => ({ data: { keys: [...roles.keys()].sort() } }) },
    },
    {
      pattern: new RegExp(`^${MOUNT}/role/(\\w(?:[\\w\\-.]*\\w)?)$`),
      exists: (match) => roles.has(match[1]!.toLowerCase()),
      operations: {
        read: (_request, match) => {
          const role = roles.get(match[1]!.toLowerCase());
          return role ? { data: roleData(role) } : null;
        },
        create: writeRole,
        update: writeRole,
        delete: (_request, match) => {
          roles.delete(match[1]!.toLowerCase());
          return null;
        },
      },
    },
    { pattern: new RegExp(`^${MOUNT}/login$`), auth: 'none', operations: { update: login } },
  ];
}
