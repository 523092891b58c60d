// What every GitHub route module gets from the stand-in. Routes are registered twice: at the root
// as on api.github.com, and under `/api/v3` as on a GitHub Enterprise Server, where clients such
// as gh and PyGithub expect the REST API of a host that is not github.com.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import type { AppRegistry } from './app-registry.ts';
import type { GithubRateLimiter } from './rate-limit.ts';
import { errorBody } from './responses.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** GitHub's documentation URL for the route, echoed in its error bodies. */
    docs?: string;
    /** Served without a token, as `GET /meta` and `GET /` are. */
    anonymous?: boolean;
    /** Not counted against the primary rate limit (`GET /rate_limit`). */
    uncounted?: boolean;
  }
}

export const ENTERPRISE_PREFIX = '/api/v3';

export interface GithubRoutes {
  state: HostState;
  limiter: GithubRateLimiter;
  /** Public host keys (`ssh-ed25519 AAAA…`) of the SSH git server. */
  sshHostKeys(): string[];
  /** Clone URL of a repository on the SSH git server, when one is known. */
  sshCloneUrl(path: string): string | undefined;
  /** GitHub Apps and their installations; the caller's identity is on `request.githubIdentity`. */
  apps: AppRegistry;
}

/** `https://host:port` or `…/api/v3` as the client addressed the stand-in. */
export function apiUrl(request: FastifyRequest): string {
  const origin = `${request.protocol}://${request.host}`;
  return request.url.startsWith(`${ENTERPRISE_PREFIX}/`) || request.url === ENTERPRISE_PREFIX
    ? `${origin}${ENTERPRISE_PREFIX}`
    : origin;
}

/** Where the web pages would be: the host itself. */
export function webUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

export function notFound(reply: FastifyReply, documentationUrl: string) {
  return reply.code(404).send(errorBody(404, 'Not Found', documentationUrl));
}

export type RepoParams = { owner?: string; repo?: string; repository_id?: string };

export function findRepository(state: HostState, params: RepoParams): SandboxRepository | undefined {
  if (params.repository_id !== undefined) {
    return /^\d+$/.test(params.repository_id)
      ? state.findRepository(Number(params.repository_id))
      : undefined;
  }
  return state.findRepository(`${params.owner}/${params.repo}`);
}
