// Vault's request pipeline for the stand-in: route lookup, existence check (create vs update),
// token and ACL check, use counting, the handler, then the envelope or response wrapping.
import { isAllowed } from './acl.ts';
import {
  envelope,
  isVaultFailure,
  multiError,
  PERMISSION_DENIED,
  type VaultRequest,
  type VaultResult,
  type VaultRoute,
} from './http.ts';
import type { PolicyStore } from './policies.ts';
import type { TokenStore } from './tokens.ts';
import type { Wrapping } from './wrapping.ts';

export interface VaultReply {
  status: number;
  body?: unknown;
}

export interface VaultRouter {
  handle(request: VaultRequest): Promise<VaultReply>;
}

// Older sys paths that Vault answers with `data` also copied to the top level (http/logical.go).
const TOP_LEVEL_DATA = /^sys\/(policy|mounts)(\/|$)/;

const errorReply = (status: number, ...errors: string[]): VaultReply => ({ status, body: { errors } });

export function createVaultRouter(deps: {
  mounts: { prefix: string; type: string }[];
  routes: VaultRoute[];
  tokens: TokenStore;
  policies: PolicyStore;
  wrapping: Wrapping;
}): VaultRouter {
  const { tokens, policies, wrapping } = deps;

  const find = (path: string) => {
    for (const route of deps.routes) {
      const match = route.pattern.exec(path);
      if (match) return { route, match };
    }
    return undefined;
  };

  const mountOf = (path: string) => deps.mounts.find((mount) => path.startsWith(mount.prefix));

  const reply = (request: VaultRequest, result: VaultResult | null, mountType: string): VaultReply => {
    if (result === null || (!result.data && !result.auth && !result.warnings?.length && !result.raw)) {
      const missing = ['read', 'list', 'patch'].includes(request.operation);
      return missing ? errorReply(404) : { status: 204 };
    }
    if (result.raw) return result.raw;
    // An empty listing is a 404 with no errors.
    if (request.operation === 'list' && !(result.data?.keys as unknown[] | undefined)?.length)
      return errorReply(404);
    const body = envelope(result, mountType);
    if (TOP_LEVEL_DATA.test(request.path) && result.data) Object.assign(body, result.data);
    const status = result.status ?? 200;
    if (request.wrapTtl > 0 && status === 200) {
      return { status: 200, body: wrapping.wrap(body, request, result.auth?.accessor ?? '') };
    }
    return { status, body };
  };

  const handle = async (request: VaultRequest): Promise<VaultReply> => {
    const found = find(request.path);
    found?.route.validate?.(request);

    let caller: ReturnType<TokenStore['lookup']>;
    if (found?.route.auth !== 'none') {
      if (request.clientToken === '') return errorReply(403, PERMISSION_DENIED);
      caller = tokens.lookup(request.clientToken);
      if (!caller) return errorReply(403, multiError(PERMISSION_DENIED, 'invalid token'));
      if (request.operation === 'update' && found?.route.exists?.(found.match) === false) {
        request.operation = 'create';
      }
      if (!isAllowed(policies.aclFor(caller.policies), request.path, request.operation))
        return errorReply(403, multiError(PERMISSION_DENIED));
    }

    try {
      if (!found) {
        const mount = mountOf(request.path);
        if (mount) return errorReply(404, multiError('unsupported path'));
        return errorReply(404, `no handler for route "${request.path}". route entry not found.`);
      }
      const handler = found.route.operations[request.operation];
      if (!handler) return errorReply(405, multiError('unsupported operation'));
      const result = await handler(request, found.match);
      return reply(request, result, mountOf(request.path)?.type ?? 'system');
    } finally {
      if (caller) tokens.use(caller);
    }
  };

  return {
    handle: async (request) => {
      try {
        return await handle(request);
      } catch (error) {
        if (isVaultFailure(error)) return errorReply(error.vaultStatus, ...error.vaultErrors);
        throw error;
      }
    },
  };
}
