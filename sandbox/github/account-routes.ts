// The GitHub calls clients make before anything else: `GET /` (the API root), `GET /meta`,
// `GET /rate_limit`, `GET /user` and `GET /repos/{owner}/{repo}`.
import type { FastifyInstance } from 'fastify';
import { privateUserBody, rateLimitBody, repositoryBody, rootBody } from './account-responses.ts';
import { errorBody, metaBody, REST_DOCS } from './responses.ts';
import { apiUrl, findRepository, type GithubRoutes, notFound, type RepoParams, webUrl } from './routes.ts';

const DOCS = {
  root: `${REST_DOCS}/meta/meta#github-api-root`,
  meta: `${REST_DOCS}/meta/meta#get-github-meta-information`,
  rateLimit: `${REST_DOCS}/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user`,
  user: `${REST_DOCS}/users/users#get-the-authenticated-user`,
  repository: `${REST_DOCS}/repos/repos#get-a-repository`,
};

export function registerAccountRoutes(app: FastifyInstance, routes: GithubRoutes): void {
  const startedAt = new Date();

  app.get('/', { config: { docs: DOCS.root, anonymous: true } }, async (request) =>
    rootBody(apiUrl(request), webUrl(request)),
  );

  app.get('/meta', { config: { docs: DOCS.meta, anonymous: true } }, async () =>
    metaBody(routes.sshHostKeys()),
  );

  // Documented as not counting against the primary rate limit, and open to anonymous callers.
  app.get(
    '/rate_limit',
    { config: { docs: DOCS.rateLimit, anonymous: true, uncounted: true } },
    async (request) => rateLimitBody(routes.limiter.peek(request.githubIdentity?.rateKey ?? null)),
  );

  app.get('/user', { config: { docs: DOCS.user } }, async (request, reply) => {
    // An installation acts for no user: GitHub refuses its token here.
    if (request.githubIdentity?.kind === 'installation') {
      return reply.code(403).send(errorBody(403, 'Resource not accessible by integration', DOCS.user));
    }
    return privateUserBody(
      apiUrl(request),
      webUrl(request),
      startedAt,
      routes.state.listRepositories().length,
    );
  });

  app.get<{ Params: RepoParams }>(
    '/repos/:owner/:repo',
    { config: { docs: DOCS.repository } },
    async (request, reply) => {
      const repository = findRepository(routes.state, request.params);
      if (!repository) return notFound(reply, DOCS.repository);
      return repositoryBody(repository, {
        api: apiUrl(request),
        web: webUrl(request),
        host: request.host,
        ssh: routes.sshCloneUrl(repository.path),
      });
    },
  );
}
