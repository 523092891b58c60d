// The GitHub stand-in's GitHub App routes: the authenticated App and its installations (App JWT),
// installation access tokens, the repositories an installation token reaches (served at the root
// and under `/api/v3`, as a GitHub Enterprise Server serves them), and `/_sandbox/apps` to register
// Apps and install them from another process (`/_sandbox/installations/{id}` to uninstall one).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type AppUrls, appBody, appDocs, installationBody, repositoryBody, tokenBody } from './app-bodies.ts';
import type { AppRegistry, GithubApp, Permissions, RegisterAppInput, TokenRequest } from './app-registry.ts';
import { errorBody, linkHeader, readPage } from './responses.ts';
import { apiUrl, type GithubRoutes, notFound, webUrl } from './routes.ts';

type Query = Record<string, string | undefined>;

const urlsOf = (request: FastifyRequest): AppUrls => ({ api: apiUrl(request), web: webUrl(request) });

/** The App a route was called as; the credential hook has already refused anything else. */
function appOf(request: FastifyRequest): GithubApp {
  const identity = request.githubIdentity;
  if (identity?.kind !== 'app') throw new Error('App route reached without an App JWT');
  return identity.app;
}

function paged<T>(request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply, items: T[]): T[] {
  const page = readPage(request.query);
  const link = linkHeader(new URL(request.url, webUrl(request)), page, items.length);
  if (link) reply.header('link', link);
  return items.slice((page.page - 1) * page.perPage, page.page * page.perPage);
}

// GitHub checks the body against the operation's JSON schema first, and names the first mismatch.
function tokenRequest(body: unknown): TokenRequest | string {
  if (body === undefined || body === null) return {};
  const invalid = (where: string, value: unknown, type: string) =>
    `Invalid request.\n\nFor '${where}', ${JSON.stringify(value)} is not ${type}.`;
  if (typeof body !== 'object' || Array.isArray(body)) return invalid('type', body, 'an object');
  const { repositories, repository_ids: ids, permissions } = body as Record<string, unknown>;
  const lists = [
    ['repositories', repositories, (item: unknown) => typeof item === 'string', 'a string'],
    ['repository_ids', ids, (item: unknown) => Number.isInteger(item), 'an integer'],
  ] as const;
  for (const [field, value, fits, itemType] of lists) {
    if (value === undefined) continue;
    if (!Array.isArray(value)) return invalid(`properties/${field}`, value, 'an array');
    const misfit = value.find((item) => !fits(item));
    if (misfit !== undefined) return invalid('items', misfit, itemType);
  }
  if (permissions !== undefined) {
    if (typeof permissions !== 'object' || permissions === null || Array.isArray(permissions)) {
      return invalid('properties/permissions', permissions, 'an object');
    }
    for (const [name, level] of Object.entries(permissions)) {
      if (level !== 'read' && level !== 'write')
        return invalid(`properties/${name}`, level, 'one of ["read", "write"]');
    }
  }
  return {
    ...(repositories ? { repositories: repositories as string[] } : {}),
    ...(ids ? { repositoryIds: ids as number[] } : {}),
    ...(permissions ? { permissions: permissions as Permissions } : {}),
  };
}

export function registerAppRoutes(app: FastifyInstance, { state, apps }: GithubRoutes): void {
  const appRoute = (docs: string) => ({ config: { docs, appAuth: true } });

  app.get('/app', appRoute(appDocs.app), async (request) => {
    const self = appOf(request);
    return appBody(self, apps.installationsOf(self).length, urlsOf(request));
  });

  app.get<{ Querystring: Query }>(
    '/app/installations',
    appRoute(appDocs.installations),
    async (request, reply) => {
      const all = apps.installationsOf(appOf(request));
      return paged(request, reply, all).map((entry) => installationBody(entry, urlsOf(request)));
    },
  );

  const installationOf = (request: FastifyRequest<{ Params: { installation_id: string } }>) =>
    apps.installationsOf(appOf(request)).find((entry) => String(entry.id) === request.params.installation_id);

  app.get<{ Params: { installation_id: string } }>(
    '/app/installations/:installation_id',
    appRoute(appDocs.installation),
    async (request, reply) => {
      const installation = installationOf(request);
      if (!installation) return notFound(reply, appDocs.installation);
      return installationBody(installation, urlsOf(request));
    },
  );

  app.post<{ Params: { installation_id: string }; Body: unknown }>(
    '/app/installations/:installation_id/access_tokens',
    appRoute(appDocs.accessToken),
    async (request, reply) => {
      const installation = installationOf(request);
      if (!installation) return notFound(reply, appDocs.accessToken);
      const wanted = tokenRequest(request.body);
      if (typeof wanted === 'string')
        return reply.code(422).send(errorBody(422, wanted, appDocs.accessToken));
      const minted = apps.mintToken(installation, wanted);
      if ('status' in minted)
        return reply.code(minted.status).send(errorBody(minted.status, minted.message, appDocs.accessToken));
      const repositories = apps.tokenRepositories(minted.token);
      return reply.code(201).send(tokenBody(minted.token, repositories, urlsOf(request)));
    },
  );

  app.get<{ Params: { owner: string; repo: string } }>(
    '/repos/:owner/:repo/installation',
    appRoute(appDocs.repoInstallation),
    async (request, reply) => {
      const repository = state.findRepository(`${request.params.owner}/${request.params.repo}`);
      const installation = repository && apps.installationForRepository(appOf(request), repository);
      if (!installation) return notFound(reply, appDocs.repoInstallation);
      return installationBody(installation, urlsOf(request));
    },
  );

  app.get<{ Params: { org: string } }>(
    '/orgs/:org/installation',
    appRoute(appDocs.orgInstallation),
    async (request, reply) => {
      const installation = apps.installationForAccount(appOf(request), request.params.org);
      if (installation?.account.type !== 'Organization') return notFound(reply, appDocs.orgInstallation);
      return installationBody(installation, urlsOf(request));
    },
  );

  // Organizations are users too on this route, as on GitHub.
  app.get<{ Params: { username: string } }>(
    '/users/:username/installation',
    appRoute(appDocs.userInstallation),
    async (request, reply) => {
      const installation = apps.installationForAccount(appOf(request), request.params.username);
      if (!installation) return notFound(reply, appDocs.userInstallation);
      return installationBody(installation, urlsOf(request));
    },
  );

  app.get<{ Querystring: Query }>(
    '/installation/repositories',
    { config: { docs: appDocs.installationRepositories } },
    async (request, reply) => {
      const identity = request.githubIdentity;
      if (identity?.kind !== 'installation') {
        const message =
          'You must authenticate with an installation access token in order to list repositories for an installation.';
        return reply.code(403).send(errorBody(403, message, appDocs.installationRepositories));
      }
      const { installation } = identity.token;
      const reachable = apps.tokenRepositories(identity.token);
      return {
        total_count: reachable.length,
        repository_selection: identity.token.repositoryIds ? 'selected' : installation.repositorySelection,
        repositories: paged(request, reply, reachable).map((repository) =>
          repositoryBody(repository, installation.account, urlsOf(request)),
        ),
      };
    },
  );
}

export function registerAppControls(app: FastifyInstance, apps: AppRegistry): void {
  app.post<{ Body: RegisterAppInput }>('/_sandbox/apps', async (request, reply) => {
    const { app: registered, privateKeyPem } = apps.registerApp(request.body ?? {});
    return reply.code(201).send({
      id: registered.id,
      slug: registered.slug,
      clientId: registered.clientId,
      owner: registered.owner.login,
      ...(privateKeyPem ? { privateKeyPem } : {}),
    });
  });
  app.post<{ Params: { id: string }; Body: Parameters<AppRegistry['install']>[1] }>(
    '/_sandbox/apps/:id/installations',
    async (request, reply) => {
      try {
        const installation = apps.install(Number(request.params.id), request.body);
        return reply.code(201).send({ id: installation.id, account: installation.account.login });
      } catch (error) {
        return reply.code(404).send({ message: (error as Error).message });
      }
    },
  );
  app.delete<{ Params: { installation_id: string } }>(
    '/_sandbox/installations/:installation_id',
    async (request, reply) =>
      reply.code(apps.uninstall(Number(request.params.installation_id)) ? 204 : 404).send(),
  );
  app.put<{ Body: { seconds: number } }>('/_sandbox/apps/token-ttl', async (request, reply) => {
    apps.setTokenTtl(request.body.seconds);
    return reply.code(204).send();
  });
}
