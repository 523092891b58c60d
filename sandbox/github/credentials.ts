// Who is calling the GitHub stand-in: a personal access token, a GitHub App (its JWT, on the App
// routes only) or an App installation (its access token, on repository routes only), and the
// identity its rate limits are counted against: GitHub counts them per user, App and installation.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { HostState } from '../shared/host-state.ts';
import { checkAppJwt } from './app-jwt.ts';
import {
  type AppRegistry,
  type GithubApp,
  type InstallationToken,
  type PermissionLevel,
  permissionsCover,
} from './app-registry.ts';
import { errorBody } from './responses.ts';

export type GithubIdentity =
  | { kind: 'token'; token: string; rateKey: string; label: string }
  | { kind: 'app'; app: GithubApp; rateKey: string; label: string }
  | { kind: 'installation'; token: InstallationToken; rateKey: string; label: string };

export type Resolution = { identity: GithubIdentity | null } | { status: number; message: string };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes a GitHub App's JWT (and nothing else), as `/app/...` routes do. */
    appAuth?: boolean;
    /**
     * The repository permission an installation token needs here, read for GET and write for
     * changes; unset, `metadata` (every installation has it) is enough.
     */
    installationPermission?: string;
  }
  interface FastifyRequest {
    githubIdentity: GithubIdentity | null;
  }
}

const AUTHORIZATION = /^(?:token|bearer)\s+(\S+)\s*$/i;
const BAD_CREDENTIALS = { status: 401, message: 'Bad credentials' };

export interface CredentialResolver {
  resolve(request: FastifyRequest): Resolution;
  /** Every App JWT accepted so far, for tests that make sure a client never writes one down. */
  appJwtsSeen: string[];
}

export function createCredentialResolver(deps: {
  tokens: string[];
  apps: AppRegistry;
  now: () => number;
}): CredentialResolver {
  const { apps, now } = deps;
  const appJwtsSeen: string[] = [];
  return {
    appJwtsSeen,
    resolve(request) {
      const header = request.headers.authorization;
      if (header === undefined) return { identity: null };
      const credential = AUTHORIZATION.exec(header)?.[1];
      if (credential === undefined) return BAD_CREDENTIALS;

      if (request.routeOptions.config.appAuth) {
        const checked = checkAppJwt(credential, apps.findApp, now());
        if (!('app' in checked)) return checked;
        const { app } = checked;
        if (!appJwtsSeen.includes(credential)) appJwtsSeen.push(credential);
        return { identity: { kind: 'app', app, rateKey: `app:${app.id}`, label: `app ID ${app.id}` } };
      }

      const userIndex = deps.tokens.indexOf(credential);
      if (userIndex >= 0) {
        const label = `user ID ${userIndex + 1}`;
        return { identity: { kind: 'token', token: credential, rateKey: credential, label } };
      }
      const token = apps.findToken(credential);
      // An expired installation token, or an App's JWT off the App routes, is answered like any
      // unknown token.
      if (!token || token.expiresAtMs <= now()) return BAD_CREDENTIALS;
      const { id } = token.installation;
      return {
        identity: {
          kind: 'installation',
          token,
          rateKey: `installation:${id}`,
          label: `installation ID ${id}`,
        },
      };
    },
  };
}

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * Repository routes answered to an installation token: a repository outside the token's reach is
 * hidden (404) as GitHub hides it; one inside it without the route's permission is 403.
 */
export function registerInstallationScope(app: FastifyInstance, state: HostState, apps: AppRegistry): void {
  app.decorateRequest('githubIdentity', null);
  app.addHook('preHandler', async (request, reply) => {
    const identity = request.githubIdentity;
    if (identity?.kind !== 'installation' || request.routeOptions.config.appAuth) return;
    const params = request.params as { owner?: string; repo?: string; repository_id?: string };
    const wanted =
      params.repository_id ?? (params.owner && params.repo ? `${params.owner}/${params.repo}` : undefined);
    const repository = wanted === undefined ? undefined : state.findRepository(wanted);
    if (!repository) return;
    const docs = request.routeOptions.config.docs;
    if (!apps.tokenRepositories(identity.token).some((reachable) => reachable.id === repository.id)) {
      return reply.code(404).send(errorBody(404, 'Not Found', docs));
    }
    const permission = request.routeOptions.config.installationPermission;
    if (permission === undefined) return;
    const level: PermissionLevel = READ_METHODS.has(request.method) ? 'read' : 'write';
    if (!permissionsCover(identity.token.permissions, { [permission]: level })) {
      return reply.code(403).send(errorBody(403, 'Resource not accessible by integration', docs));
    }
  });
}
