// ACL policy store and its endpoints: `sys/policies/acl/:name` and the older `sys/policy/:name`
// that node-vault's addPolicy/getPolicy/removePolicy still use.
import { type Acl, compileAcl, type PathRule, parsePolicy } from './acl.ts';
import { badRequest, stringList, type VaultRequest, type VaultRoute } from './http.ts';

// Vault's built-in `default` policy (vault/policy_store.go), trimmed to the paths that exist here
// plus the ones a client commonly probes; editable, never deletable.
const DEFAULT_POLICY = `
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
`;

// The policy every response-wrapping token carries; not listed, not assignable.
const RESPONSE_WRAPPING_POLICY = `
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
`;
export const RESPONSE_WRAPPING = 'response-wrapping';

interface StoredPolicy {
  raw: string;
  rules: PathRule[];
}

export interface PolicyStore {
  aclFor(policies: string[]): Acl;
  routes: VaultRoute[];
}

/** policyutil.SanitizePolicies: trimmed, lower-cased, deduplicated, sorted; `root` stands alone. */
export function sanitizePolicies(policies: string[], addDefault: boolean): string[] {
  const names = policies.map((name) => name.trim().toLowerCase()).filter((name) => name !== '');
  if (names.includes('root')) return ['root'];
  if (addDefault) names.push('default');
  return [...new Set(names)].sort();
}

export function createPolicyStore(): PolicyStore {
  const policies = new Map<string, StoredPolicy>([
    ['default', { raw: DEFAULT_POLICY, rules: parsePolicy(DEFAULT_POLICY) }],
    [RESPONSE_WRAPPING, { raw: RESPONSE_WRAPPING_POLICY, rules: parsePolicy(RESPONSE_WRAPPING_POLICY) }],
  ]);

  const write = (request: VaultRequest, match: RegExpExecArray, legacy: boolean) => {
    const name = match[1]!.toLowerCase();
    const warnings: string[] = [];
    let raw = typeof request.data.policy === 'string' ? request.data.policy : '';
    if (raw === '' && legacy && typeof request.data.rules === 'string') {
      raw = request.data.rules;
      warnings.push("'rules' is deprecated, please use 'policy' instead");
    }
    if (raw === '') throw badRequest("'policy' parameter not supplied or empty");
    // Vault accepts the policy base64-encoded as well.
    const decoded = Buffer.from(raw, 'base64').toString('utf8');
    if (
      /^[A-Za-z0-9+/]+={0,2}$/.test(raw.trim()) &&
      Buffer.from(decoded, 'utf8').toString('base64') === raw.trim()
    ) {
      raw = decoded;
    }
    if (name === 'root' || name === RESPONSE_WRAPPING) throw badRequest(`cannot update "${name}" policy`);
    try {
      policies.set(name, { raw, rules: parsePolicy(raw) });
    } catch (error) {
      throw badRequest(`failed to parse policy: ${(error as Error).message}`);
    }
    return warnings.length > 0 ? { warnings } : null;
  };

  const read = (match: RegExpExecArray, field: 'rules' | 'policy') => {
    const name = match[1]!.toLowerCase();
    const policy = name === RESPONSE_WRAPPING ? undefined : policies.get(name);
    return policy ? { data: { name, [field]: policy.raw } } : null;
  };

  const remove = (match: RegExpExecArray) => {
    const name = match[1]!.toLowerCase();
    if (name === 'default' || name === 'root' || name === RESPONSE_WRAPPING) {
      throw badRequest(`cannot delete "${name}" policy`);
    }
    policies.delete(name);
    return null;
  };

  // Vault lists stored policies sorted, then appends the implicit `root`.
  const names = () => [...[...policies.keys()].filter((name) => name !== RESPONSE_WRAPPING).sort(), 'root'];

  return {
    aclFor: (tokenPolicies) =>
      compileAcl(
        stringList(tokenPolicies).flatMap((name) => {
          if (name === 'root') return [{ name, rules: [] }];
          const policy = policies.get(name);
          return policy ? [{ name, rules: policy.rules }] : [];
        }),
      ),
    routes: [
      {
        pattern: /^sys\/policies\/acl\/?$/,
        operations: { list: () => ({ data: { keys: names() } }) },
      },
      {
        pattern: /^sys\/policies\/acl\/(.+)$/,
        operations: {
          read: (_request, match) => read(match, 'policy'),
          update: (request, match) => write(request, match, false),
          delete: (_request, match) => remove(match),
        },
      },
      {
        pattern: /^sys\/policy\/?$/,
        operations: { read: () => ({ data: { keys: names(), policies: names() } }) },
      },
      {
        pattern: /^sys\/policy\/(.+)$/,
        operations: {
          read: (_request, match) => read(match, 'rules'),
          update: (request, match) => write(request, match, true),
          delete: (_request, match) => remove(match),
        },
      },
    ],
  };
}
