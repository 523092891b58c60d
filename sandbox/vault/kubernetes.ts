// Kubernetes auth method (vault-plugin-auth-kubernetes): config, roles and login with a service
// account JWT verified against the configured `pem_keys`.
import type { KeyObject } from 'node:crypto';
import {
  badRequest,
  globMatch,
  multiError,
  PERMISSION_DENIED,
  parseDurationSeconds,
  stringList,
  type VaultRequest,
  type VaultRoute,
  vaultFailure,
} from './http.ts';
import { parsePublicKeyPem, verifyServiceAccountJwt } from './kubernetes-jwt.ts';
import { sanitizePolicies } from './policies.ts';
import { calculateTtl } from './token-ttl.ts';
import { newEntityId, type TokenStore } from './tokens.ts';

interface KubernetesConfig {
  kubernetes_host: string;
  kubernetes_ca_cert: string;
  pem_keys: string[];
  issuer: string;
  disable_iss_validation: boolean;
  disable_local_ca_jwt: boolean;
  keys: KeyObject[];
}

interface KubernetesRole {
  bound_service_account_names: string[];
  bound_service_account_namespaces: string[];
  audience: string;
  alias_name_source: string;
  token_policies: string[];
  token_ttl: number;
  token_max_ttl: number;
  token_num_uses: number;
  token_no_default_policy: boolean;
  legacyPolicies: boolean;
}

export function createKubernetesAuth(
  tokens: TokenStore,
  initialKeys: string[] | undefined,
  now: () => number,
): VaultRoute[] {
  let config: KubernetesConfig | undefined;
  if (initialKeys) {
    config = {
      kubernetes_host: 'https://kubernetes.default.svc',
      kubernetes_ca_cert: '',
      pem_keys: initialKeys,
      issuer: '',
      disable_iss_validation: true,
      disable_local_ca_jwt: false,
      keys: initialKeys.map(parsePublicKeyPem),
    };
  }
  const roles = new Map<string, KubernetesRole>();

  const writeConfig = (request: VaultRequest) => {
    const body = request.data;
    const host = typeof body.kubernetes_host === 'string' ? body.kubernetes_host : '';
    if (host === '') throw badRequest('no host provided');
    const pemKeys = stringList(body.pem_keys);
    config = {
      kubernetes_host: host,
      kubernetes_ca_cert: String(body.kubernetes_ca_cert ?? ''),
      pem_keys: pemKeys,
      issuer: String(body.issuer ?? ''),
      disable_iss_validation: body.disable_iss_validation !== false,
      disable_local_ca_jwt: body.disable_local_ca_jwt === true,
      keys: pemKeys.map(parsePublicKeyPem),
    };
    return null;
  };

  const writeRole = (request: VaultRequest, match: RegExpExecArray) => {
    const name = match[1]!.toLowerCase();
    const body = request.data;
    const role: KubernetesRole = roles.get(name) ?? {
      bound_service_account_names: [],
      bound_service_account_namespaces: [],
      audience: '',
      alias_name_source: 'serviceaccount_uid',
      token_policies: [],
      token_ttl: 0,
      token_max_ttl: 0,
      token_num_uses: 0,
      token_no_default_policy: false,
      legacyPolicies: false,
    };
    if ('token_policies' in body) role.token_policies = stringList(body.token_policies);
    else if ('policies' in body) {
      role.token_policies = stringList(body.policies);
      role.legacyPolicies = true;
    }
    if ('token_ttl' in body || 'ttl' in body)
      role.token_ttl = parseDurationSeconds(body.token_ttl ?? body.ttl, 'token_ttl');
    if ('token_max_ttl' in body || 'max_ttl' in body) {
      role.token_max_ttl = parseDurationSeconds(body.token_max_ttl ?? body.max_ttl, 'token_max_ttl');
    }
    if ('token_num_uses' in body) role.token_num_uses = Number(body.token_num_uses) || 0;
    if ('token_no_default_policy' in body)
      role.token_no_default_policy = body.token_no_default_policy === true;
    if (role.token_max_ttl > 0 && role.token_ttl > role.token_max_ttl) {
      throw badRequest('token ttl should not be greater than token max ttl');
    }
    if ('bound_service_account_names' in body) {
      role.bound_service_account_names = stringList(body.bound_service_account_names);
    }
    const names = role.bound_service_account_names;
    if (names.length === 0) throw badRequest('"bound_service_account_names" can not be empty');
    if (names.length > 1 && names.includes('*')) throw badRequest('can not mix "*" with values');
    if ('bound_service_account_namespaces' in body) {
      role.bound_service_account_namespaces = stringList(body.bound_service_account_namespaces);
    }
    const namespaces = role.bound_service_account_namespaces;
    if (namespaces.length === 0) {
      throw badRequest(
        '"bound_service_account_namespaces" can not be empty if "bound_service_account_namespace_selector" is not set',
      );
    }
    if (namespaces.length > 1 && namespaces.includes('*')) throw badRequest('can not mix "*" with values');
    if ('audience' in body) role.audience = String(body.audience ?? '');
    roles.set(name, role);
    return role.audience.trim() === ''
      ? {
          warnings: [
            'This role does not specify an audience. In a future version of Vault, specifying an audience will be required.',
          ],
        }
      : null;
  };

  const readRole = (_request: VaultRequest, match: RegExpExecArray) => {
    const role = roles.get(match[1]!.toLowerCase());
    if (!role) return null;
    const data: Record<string, unknown> = {
      alias_name_source: role.alias_name_source,
      bound_service_account_names: role.bound_service_account_names,
      bound_service_account_namespace_selector: '',
      bound_service_account_namespaces: role.bound_service_account_namespaces,
      token_bound_cidrs: [],
      token_explicit_max_ttl: 0,
      token_max_ttl: role.token_max_ttl,
      token_no_default_policy: role.token_no_default_policy,
      token_num_uses: role.token_num_uses,
      token_period: 0,
      token_policies: role.token_policies,
      token_ttl: role.token_ttl,
      token_type: 'default',
    };
    if (role.audience !== '') data.audience = role.audience;
    if (role.legacyPolicies) data.policies = role.token_policies;
    return { data };
  };

  const login = async (request: VaultRequest) => {
    const roleName = typeof request.data.role === 'string' ? request.data.role : '';
    if (roleName === '') throw badRequest('missing role');
    const jwt = typeof request.data.jwt === 'string' ? request.data.jwt : '';
    if (jwt === '') throw badRequest('missing jwt');
    const role = roles.get(roleName.toLowerCase());
    if (!role) throw badRequest(`invalid role name "${roleName}"`);
    if (!config) throw vaultFailure(500, 'could not load backend configuration');
    // Without pem_keys Vault defers to the TokenReview API, which cannot be reached from here.
    if (config.keys.length === 0) throw vaultFailure(403, PERMISSION_DENIED);

    const account = await verifyServiceAccountJwt(jwt, {
      keys: config.keys,
      issuer: config.disable_iss_validation ? undefined : config.issuer,
      audience: role.audience.trim(),
      now: now(),
    });
    const names = role.bound_service_account_names;
    if (
      (names.length > 1 || names[0] !== '*') &&
      !names.some((pattern) => globMatch(pattern, account.name))
    ) {
      throw vaultFailure(403, 'service account name not authorized');
    }
    const namespaces = role.bound_service_account_namespaces;
    if (!(namespaces[0] === '*' || namespaces.some((pattern) => globMatch(pattern, account.namespace)))) {
      throw vaultFailure(403, 'namespace not authorized');
    }
    if (account.uid === '') throw vaultFailure(500, 'could not parse UID from claims');

    const { ttl, warnings } = calculateTtl({
      backendTtl: role.token_ttl,
      period: 0,
      backendMaxTtl: role.token_max_ttl,
      explicitMaxTtl: 0,
      issuedAtMs: now(),
      nowMs: now(),
    });
    const name = roleName.toLowerCase();
    const renewal = () => {
      const current = roles.get(name);
      if (!current) throw vaultFailure(500, multiError(`role ${roleName} does not exist during renewal`));
      return { ttl: current.token_ttl, maxTtl: current.token_max_ttl, period: 0 };
    };
    const entry = tokens.issue({
      policies: sanitizePolicies(role.token_policies, !role.token_no_default_policy),
      ttl,
      maxTtl: role.token_max_ttl,
      renewal,
      numUses: role.token_num_uses,
      meta: {
        role: roleName,
        service_account_name: account.name,
        service_account_namespace: account.namespace,
        service_account_secret_name: account.secretName,
        service_account_uid: account.uid,
      },
      displayName: `kubernetes-${account.namespace}-${account.name}`,
      path: 'auth/kubernetes/login',
      entityId: newEntityId(),
    });
    return { auth: tokens.auth(entry), warnings };
  };

  return [
    {
      pattern: /^auth\/kubernetes\/config$/,
      operations: {
        read: () => {
          if (!config) return null;
          const { keys: _keys, ...data } = config;
          return { data };
        },
        create: writeConfig,
        update: writeConfig,
      },
    },
    {
      pattern: /^auth\/kubernetes\/role\/?$/,
      operations: { list: () => ({ data: { keys: [...roles.keys()].sort() } }) },
    },
    {
      // framework.GenericNameRegex: word characters, `-` and `.`, starting and ending with a word character.
      pattern: /^auth\/kubernetes\/role\/(\w(?:[\w\-.]*\w)?)$/,
      exists: (match) => roles.has(match[1]!.toLowerCase()),
      operations: {
        read: readRole,
        create: writeRole,
        update: writeRole,
        delete: (_request, match) => {
          roles.delete(match[1]!.toLowerCase());
          return null;
        },
      },
    },
    { pattern: /^auth\/kubernetes\/login$/, auth: 'none', operations: { update: login } },
  ];
}
