// AppRole auth method (builtin/credential/approle): roles with their token fields, role IDs,
// secret IDs with a TTL and a use limit, and login with `role_id` + `secret_id`.
import { randomUUID } from 'node:crypto';
import {
  badRequest,
  goTime,
  isObject,
  parseDurationSeconds,
  stringList,
  type VaultRequest,
  type VaultRoute,
} from './http.ts';
import {
  defaultTokenParams,
  issueLoginToken,
  parseTokenFields,
  roleRenewal,
  type TokenParams,
  tokenData,
} from './token-params.ts';
import type { TokenStore } from './tokens.ts';

interface AppRole extends TokenParams {
  name: string;
  roleId: string;
  bindSecretId: boolean;
  secretIdBoundCidrs: string[];
  secretIdNumUses: number;
  secretIdTtl: number;
  localSecretIds: boolean;
}

interface SecretId {
  secretId: string;
  accessor: string;
  metadata: Record<string, string>;
  cidrList: string[];
  tokenBoundCidrs: string[];
  /** Logins left; 0 = unlimited. */
  numUses: number;
  ttl: number;
  createdAt: number;
  /** 0 = never expires. */
  expiresAt: number;
}

const MOUNT = 'auth/approle';
const NAME = String.raw`(\w(?:[\w\-. ]*\w)?)`;
const route = (suffix: string) => new RegExp(`^${MOUNT}/role/${NAME}${suffix}$`);
// Any failure to match a credential gets this one answer, so a caller learns nothing from it.
const INVALID = 'invalid role or secret ID';

export function createAppRoleAuth(tokens: TokenStore, now: () => number): VaultRoute[] {
  const roles = new Map<string, AppRole>();
  const secrets = new Map<string, Map<string, SecretId>>();
  const roleNamed = (match: RegExpExecArray) => roles.get(match[1]!.toLowerCase());
  const secretsOf = (role: AppRole) => secrets.get(role.name) ?? new Map<string, SecretId>();
  const live = (secret: SecretId) => secret.expiresAt === 0 || secret.expiresAt > now();

  const writeRole = (request: VaultRequest, match: RegExpExecArray) => {
    const name = match[1]!.toLowerCase();
    const body = request.data;
    const role: AppRole = roles.get(name) ?? {
      ...defaultTokenParams(),
      name,
      roleId: randomUUID(),
      bindSecretId: true,
      secretIdBoundCidrs: [],
      secretIdNumUses: 0,
      secretIdTtl: 0,
      localSecretIds: body.local_secret_ids === true,
    };
    parseTokenFields(body, role);
    if ('bind_secret_id' in body) role.bindSecretId = body.bind_secret_id !== false;
    if ('secret_id_bound_cidrs' in body) role.secretIdBoundCidrs = stringList(body.secret_id_bound_cidrs);
    if ('secret_id_num_uses' in body) role.secretIdNumUses = Number(body.secret_id_num_uses) || 0;
    if ('secret_id_ttl' in body) role.secretIdTtl = parseDurationSeconds(body.secret_id_ttl, 'secret_id_ttl');
    if (typeof body.role_id === 'string' && body.role_id !== '') role.roleId = body.role_id;
    if (role.secretIdNumUses < 0) throw badRequest('secret_id_num_uses cannot be negative');
    if (!role.bindSecretId && role.secretIdBoundCidrs.length === 0 && role.tokenBoundCidrs.length === 0) {
      throw badRequest('at least one constraint should be enabled on the role');
    }
    if (role.tokenMaxTtl > 0 && role.tokenTtl > role.tokenMaxTtl) {
      throw badRequest('token_ttl should not be greater than token_max_ttl');
    }
    roles.set(name, role);
    return null;
  };

  const readRole = (_request: VaultRequest, match: RegExpExecArray) => {
    const role = roleNamed(match);
    if (!role) return null;
    return {
      data: {
        bind_secret_id: role.bindSecretId,
        local_secret_ids: role.localSecretIds,
        secret_id_bound_cidrs: role.secretIdBoundCidrs,
        secret_id_num_uses: role.secretIdNumUses,
        secret_id_ttl: role.secretIdTtl,
        ...tokenData(role),
      },
    };
  };

  const createSecretId = (request: VaultRequest, match: RegExpExecArray) => {
    const role = roleNamed(match);
    if (!role) throw badRequest(`role "${match[1]}" does not exist`);
    if (!role.bindSecretId) throw badRequest('bind_secret_id is not set on the role');
    const body = request.data;
    const numUses = 'num_uses' in body ? Number(body.num_uses) || 0 : role.secretIdNumUses;
    const ttl = 'ttl' in body ? parseDurationSeconds(body.ttl, 'ttl') : role.secretIdTtl;
    if (numUses < 0) throw badRequest('num_uses cannot be negative');
    if (role.secretIdNumUses > 0 && (numUses === 0 || numUses > role.secretIdNumUses)) {
      throw badRequest("num_uses cannot be higher than the role's secret_id_num_uses");
    }
    if (role.secretIdTtl > 0 && (ttl === 0 || ttl > role.secretIdTtl)) {
      throw badRequest("ttl cannot be longer than the role's secret_id_ttl");
    }
    let metadata: Record<string, string> = {};
    if (typeof body.metadata === 'string' && body.metadata !== '') {
      try {
        const parsed: unknown = JSON.parse(body.metadata);
        if (!isObject(parsed)) throw new Error('not an object');
        metadata = Object.fromEntries(Object.entries(parsed).map(([key, value]) => [key, String(value)]));
      } catch {
        throw badRequest('failed to parse metadata: invalid JSON');
      }
    }
    const secret: SecretId = {
      secretId: randomUUID(),
      accessor: randomUUID(),
      metadata,
      cidrList: stringList(body.cidr_list),
      tokenBoundCidrs: stringList(body.token_bound_cidrs),
      numUses,
      ttl,
      createdAt: now(),
      expiresAt: ttl > 0 ? now() + ttl * 1000 : 0,
    };
    secrets.set(role.name, secretsOf(role).set(secret.secretId, secret));
    return {
      data: {
        secret_id_accessor: secret.accessor,
        secret_id: secret.secretId,
        secret_id_ttl: secret.ttl,
        secret_id_num_uses: secret.numUses,
      },
    };
  };

  const findSecret = (match: RegExpExecArray, request: VaultRequest) => {
    const role = roleNamed(match);
    const id = typeof request.data.secret_id === 'string' ? request.data.secret_id : '';
    if (id === '') throw badRequest('missing secret_id');
    const secret = role ? secretsOf(role).get(id) : undefined;
    return role && secret && live(secret) ? { role, secret } : undefined;
  };

  const describeSecret = (secret: SecretId) => ({
    cidr_list: secret.cidrList,
    creation_time: goTime(new Date(secret.createdAt)),
    expiration_time: secret.expiresAt === 0 ? '0001-01-01T00:00:00Z' : goTime(new Date(secret.expiresAt)),
    last_updated_time: goTime(new Date(secret.createdAt)),
    metadata: secret.metadata,
    secret_id_accessor: secret.accessor,
    secret_id_num_uses: secret.numUses,
    secret_id_ttl: secret.ttl,
    token_bound_cidrs: secret.tokenBoundCidrs,
  });

  const login = (request: VaultRequest) => {
    const roleId = typeof request.data.role_id === 'string' ? request.data.role_id.trim() : '';
    if (roleId === '') throw badRequest('missing role_id');
    const role = [...roles.values()].find((candidate) => candidate.roleId === roleId);
    if (!role) throw badRequest(INVALID);
    let metadata: Record<string, string> = {};
    if (role.bindSecretId) {
      const secretId = typeof request.data.secret_id === 'string' ? request.data.secret_id.trim() : '';
      if (secretId === '') throw badRequest('missing secret_id');
      const secret = secretsOf(role).get(secretId);
      if (!secret || !live(secret)) throw badRequest(INVALID);
      // The last allowed use removes the secret ID; the login it serves still succeeds.
      if (secret.numUses === 1) secretsOf(role).delete(secretId);
      else if (secret.numUses > 1) secret.numUses -= 1;
      metadata = { ...secret.metadata };
    }
    return issueLoginToken(
      tokens,
      role,
      {
        meta: { ...metadata, role_name: role.name },
        displayName: 'approle',
        path: `${MOUNT}/login`,
        renewal: roleRenewal(`role "${role.name}" does not exist during renewal`, () => roles.get(role.name)),
      },
      now,
    );
  };

  return [
    {
      pattern: new RegExp(`^${MOUNT}/role/?$`),
      operations: { list: () => ({ data: { keys: [...roles.keys()].sort() } }) },
    },
    {
      pattern: route(''),
      exists: (match) => roles.has(match[1]!.toLowerCase()),
      operations: {
        read: readRole,
        create: writeRole,
        update: writeRole,
        delete: (_request, match) => {
          roles.delete(match[1]!.toLowerCase());
          secrets.delete(match[1]!.toLowerCase());
          return null;
        },
      },
    },
    {
      pattern: route('/role-id'),
      operations: {
        read: (_request, match) => {
          const role = roleNamed(match);
          return role ? { data: { role_id: role.roleId } } : null;
        },
        update: (request, match) => {
          const role = roleNamed(match);
          if (!role) throw badRequest(`role "${match[1]}" does not exist`);
          if (typeof request.data.role_id !== 'string' || request.data.role_id === '') {
            throw badRequest('missing role_id');
          }
          role.roleId = request.data.role_id;
          return null;
        },
      },
    },
    {
      pattern: route('/secret-id/?'),
      operations: {
        update: createSecretId,
        list: (_request, match) => {
          const role = roleNamed(match);
          const accessors = role
            ? [...secretsOf(role).values()].filter(live).map((secret) => secret.accessor)
            : [];
          return { data: { keys: accessors } };
        },
      },
    },
    {
      pattern: route('/secret-id/lookup'),
      operations: {
        update: (request, match) => {
          const found = findSecret(match, request);
          return found ? { data: describeSecret(found.secret) } : null;
        },
      },
    },
    {
      pattern: route('/secret-id/destroy'),
      operations: {
        update: (request, match) => {
          const found = findSecret(match, request);
          if (found) secretsOf(found.role).delete(found.secret.secretId);
          return null;
        },
      },
    },
    { pattern: new RegExp(`^${MOUNT}/login$`), auth: 'none', operations: { update: login } },
  ];
}
