// How Gitea's API finds the caller (services/auth/oauth2.go `parseToken`) and checks a token's
// scopes (routers/api/v1/api.go `tokenRequiresScopes`).
import type { FastifyRequest } from 'fastify';

export interface GiteaTokenGrant {
  token: string;
  /** Gitea token scopes, e.g. `read:repository`; default `all`. */
  scopes?: string[];
  /** The token of a read-only collaborator instead of the site administrator. */
  reader?: boolean;
}

export interface GiteaUser {
  id: number;
  login: string;
  fullName: string;
  email: string;
  isAdmin: boolean;
}

export const SANDBOX_ADMIN: GiteaUser = {
  id: 1,
  login: 'sandbox-admin',
  fullName: 'Sandbox Administrator',
  email: 'sandbox-admin@sandbox.invalid',
  isAdmin: true,
};

export const SANDBOX_READER: GiteaUser = {
  id: 3,
  login: 'sandbox-reader',
  fullName: 'Sandbox Reader',
  email: 'sandbox-reader@sandbox.invalid',
  isAdmin: false,
};

export type Caller =
  | { kind: 'anonymous' }
  | { kind: 'invalid' }
  | { kind: 'user'; user: GiteaUser; scopes: string[] };

export type ScopeCategory = 'repository' | 'user';

/**
 * `token` and `access_token` in the query count unless DISABLE_QUERY_AUTH_TOKEN is set (Gitea still
 * defaults it to false); then `Authorization: token …` or `Bearer …`, either word in any case.
 */
export function identifyCaller(
  request: FastifyRequest,
  grants: Map<string, GiteaTokenGrant>,
  acceptQueryTokens: boolean,
): Caller {
  const query = request.query as Record<string, string | string[] | undefined>;
  const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
  const queryToken = acceptQueryTokens ? first(query.token) || first(query.access_token) : undefined;
  const fields = (request.headers.authorization ?? '').trim().split(/\s+/);
  const headerToken = fields.length === 2 && /^(token|bearer)$/i.test(fields[0]!) ? fields[1] : undefined;
  const token = queryToken || headerToken;
  if (!token) return { kind: 'anonymous' };
  const grant = grants.get(token);
  if (!grant) return { kind: 'invalid' };
  return {
    kind: 'user',
    user: grant.reader ? SANDBOX_READER : SANDBOX_ADMIN,
    scopes: grant.scopes ?? ['all'],
  };
}

/** The 403 message when the token lacks the scope, else `undefined` (sessions and anonymous pass). */
export function missingScope(caller: Caller, category: ScopeCategory, write: boolean): string | undefined {
  if (caller.kind !== 'user') return undefined;
  const required = `${write ? 'write' : 'read'}:${category}`;
  const granted = caller.scopes.some(
    (scope) => scope === 'all' || scope === required || (!write && scope === `write:${category}`),
  );
  if (granted) return undefined;
  return `token does not have at least one of required scope(s), required=[${required}], token scope=${caller.scopes.join(',')}`;
}

/** The owner of each repository: an organization named after the path's first segment. */
export function createOwnerDirectory(): (repositoryPath: string) => GiteaUser {
  const owners = new Map<string, GiteaUser>();
  return (repositoryPath) => {
    const login = repositoryPath.split('/')[0]!.toLowerCase();
    let owner = owners.get(login);
    if (!owner) {
      owner = {
        id: 100 + owners.size,
        login,
        fullName: '',
        email: `${login}@sandbox.invalid`,
        isAdmin: false,
      };
      owners.set(login, owner);
    }
    return owner;
  };
}
