// What every GitLab route module gets from the stand-in: its state, the `authenticate!` and
// `user_project` steps Grape's `before` blocks run, pagination and the request's parameters.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import { type PageResult, paginate } from './pagination.ts';

export const API_PREFIX = '/api/v4';

export interface GitlabRoutes {
  state: HostState;
  api: typeof API_PREFIX;
  /** `http://127.0.0.1:PORT` or `https://…` as the client addressed the stand-in. */
  origin(request: FastifyRequest): string;
  /** `ssh://git@host:port/<path>.git` of the SSH git server, once it listens. */
  sshCloneUrl(path: string): string | undefined;
  /** Answers 401 and returns false when the request carries no accepted token. */
  authenticate(request: FastifyRequest, reply: FastifyReply): boolean;
  /** `authenticate!` then `user_project`: answers 401 or 404 and returns undefined on failure. */
  resolveProject(request: FastifyRequest, reply: FastifyReply): SandboxRepository | undefined;
  /** One page of `items`, the links carrying the query plus `routeParams` as GitLab's do. */
  paginate<T>(request: FastifyRequest, items: T[], routeParams: Record<string, string>): PageResult<T>;
  /** A JSON or form body as an object; `{}` when there is none. */
  bodyOf(request: FastifyRequest): Record<string, unknown>;
}

export function flatten(query: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    out[name] = Array.isArray(value) ? String(value.at(-1)) : String(value);
  }
  return out;
}

export function pageOf<T>(
  origin: string,
  request: FastifyRequest,
  items: T[],
  routeParams: Record<string, string>,
): PageResult<T> {
  const [path] = request.url.split('?');
  return paginate(items, {
    baseUrl: `${origin}${path}`,
    params: { ...flatten(request.query), ...routeParams },
  });
}
