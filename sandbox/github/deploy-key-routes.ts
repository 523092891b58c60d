// GitHub's deploy keys API (docs.github.com/rest/deploy-keys/deploy-keys): list, create, get and
// delete, by repository name and, as the Link headers GitHub writes name them, by repository id.
// An App installation's token needs the "Administration" repository permission for them.
import type { FastifyInstance } from 'fastify';
import {
  deployKeyBody,
  docs,
  errorBody,
  linkHeader,
  parsePublicKey,
  readPage,
  validationFailed,
} from './responses.ts';
import { apiUrl, findRepository, type GithubRoutes, notFound, type RepoParams } from './routes.ts';

type KeyParams = RepoParams & { key_id: string };

const REPOSITORY_PREFIXES = ['/repos/:owner/:repo', '/repositories/:repository_id'];

export function registerDeployKeyRoutes(app: FastifyInstance, routes: GithubRoutes): void {
  const { state } = routes;
  const keyIdOf = (params: KeyParams) => (/^\d+$/.test(params.key_id) ? Number(params.key_id) : undefined);

  for (const prefix of REPOSITORY_PREFIXES) {
    app.get<{ Params: RepoParams; Querystring: Record<string, string | undefined> }>(
      `${prefix}/keys`,
      { config: { docs: docs.list, installationPermission: 'administration' } },
      async (request, reply) => {
        const repository = findRepository(state, request.params);
        if (!repository) return notFound(reply, docs.list);
        const page = readPage(request.query);
        const keys = state.listKeys(repository.id);
        // api.github.com writes its Link URLs against /repositories/{id}, keeping the caller's query.
        const base = apiUrl(request);
        const { search } = new URL(request.url, base);
        const link = linkHeader(
          new URL(`${base}/repositories/${repository.id}/keys${search}`),
          page,
          keys.length,
        );
        if (link) reply.header('link', link);
        const slice = keys.slice((page.page - 1) * page.perPage, page.page * page.perPage);
        return slice.map((key) => deployKeyBody(key, base, repository.path));
      },
    );

    app.post<{ Params: RepoParams; Body: unknown }>(
      `${prefix}/keys`,
      { config: { docs: docs.create, installationPermission: 'administration' } },
      async (request, reply) => {
        const repository = findRepository(state, request.params);
        if (!repository) return notFound(reply, docs.create);
        const body = request.body ?? {};
        if (typeof body !== 'object' || body === null || Array.isArray(body)) {
          return reply.code(400).send(errorBody(400, 'Body should be a JSON object', docs.create));
        }
        const input = body as Record<string, unknown>;
        const invalid = invalidRequest(input);
        if (invalid) return reply.code(422).send(errorBody(422, invalid, docs.create));

        const blob = parsePublicKey(input.key as string);
        if (!blob) {
          const message = 'key is invalid. You must supply a key in OpenSSH public key format';
          return reply.code(422).send(validationFailed('key', message, docs.create));
        }
        // A public key may be a deploy key of one repository only, host-wide.
        if (state.keysWithBlob(blob).length > 0) {
          return reply.code(422).send(validationFailed('key', 'key is already in use', docs.create));
        }
        const key = state.addKey({
          repositoryId: repository.id,
          title: (input.title as string | undefined) ?? '',
          key: blob,
          // Omitting read_only gives a read-write key on GitHub.
          readOnly: (input.read_only as boolean | undefined) ?? false,
          expiresAt: null,
        });
        const created = deployKeyBody(key, apiUrl(request), repository.path);
        return reply.code(201).header('location', created.url).send(created);
      },
    );

    app.get<{ Params: KeyParams }>(
      `${prefix}/keys/:key_id`,
      { config: { docs: docs.get, installationPermission: 'administration' } },
      async (request, reply) => {
        const repository = findRepository(state, request.params);
        const keyId = keyIdOf(request.params);
        const key = repository && keyId !== undefined ? state.getKey(repository.id, keyId) : undefined;
        if (!repository || !key) return notFound(reply, docs.get);
        return deployKeyBody(key, apiUrl(request), repository.path);
      },
    );

    app.delete<{ Params: KeyParams }>(
      `${prefix}/keys/:key_id`,
      { config: { docs: docs.delete, installationPermission: 'administration' } },
      async (request, reply) => {
        const repository = findRepository(state, request.params);
        const keyId = keyIdOf(request.params);
        if (!repository || keyId === undefined || !state.deleteKey(repository.id, keyId)) {
          return notFound(reply, docs.delete);
        }
        return reply.code(204).send();
      },
    );
  }
}

// GitHub checks the body against the operation's schema before anything else and answers
// "Invalid request." (no `errors` array) for a missing or mistyped field.
function invalidRequest(body: Record<string, unknown>): string | undefined {
  if (body.key === undefined) return 'Invalid request.\n\n"key" wasn\'t supplied.';
  const expected: Array<[string, 'string' | 'boolean']> = [
    ['key', 'string'],
    ['title', 'string'],
    ['read_only', 'boolean'],
  ];
  for (const [field, type] of expected) {
    const value = body[field];
    if (value !== undefined && typeof value !== type) {
      return `Invalid request.\n\nFor 'properties/${field}', ${JSON.stringify(value)} is not a ${type}.`;
    }
  }
  return undefined;
}
