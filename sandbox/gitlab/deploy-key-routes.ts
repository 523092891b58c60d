// GitLab's deploy keys API (lib/api/deploy_keys.rb): a key is one `Key` record that any number of
// projects use through `DeployKeysProject` links, each with its own `can_push`. Adding a key that
// another project already uses links it under the same id; removing the last link deletes it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { normalizeKeyBlob, type SandboxDeployKey } from '../shared/host-state.ts';
import {
  coerceBoolean,
  coerceCreateParams,
  coerceInteger,
  renderDeployKey,
  renderProjectIdentity,
  sanitizeKey,
  validateNewKey,
} from './deploy-keys.ts';
import type { GitlabRoutes } from './routes.ts';
import { flatten } from './routes.ts';

type KeyParams = { id: string; key_id: string };

export function registerDeployKeyRoutes(app: FastifyInstance, routes: GitlabRoutes): void {
  const { state, api } = routes;
  const keysPath = `${api}/projects/:id/deploy_keys`;
  // The key text as GitLab stores it (first comment word kept); host state keeps only type and blob.
  const storedKeys = new Map<number, string>();
  const storedKey = (record: SandboxDeployKey) => storedKeys.get(record.id) ?? record.key;
  // `DeployKeysProject` merges the key with the link's `can_push`; `DeployKey` is the key alone.
  const withLink = (record: SandboxDeployKey) => renderDeployKey(record, storedKey(record));
  const keyOnly = (record: SandboxDeployKey) => {
    const { can_push: _canPush, ...key } = withLink(record);
    return key;
  };
  const keyIdOf = (request: FastifyRequest) => coerceInteger((request.params as KeyParams).key_id);

  app.get(`${api}/deploy_keys`, async (request, reply) => {
    if (!routes.authenticate(request, reply)) return reply;
    const query = flatten(request.query);
    const publicOnly = coerceBoolean(query.public ?? 'false');
    if (publicOnly === undefined) return reply.code(400).send({ error: 'public is invalid' });
    const ids = [...new Set(state.listRepositories().flatMap((r) => state.listKeys(r.id).map((k) => k.id)))];
    // Keys made through a project are never public (`DeployKey.are_public` finds none of them).
    const keys = publicOnly ? [] : ids.sort((a, b) => a - b).map((id) => state.keyLinks(id));
    const page = routes.paginate(request, keys, {});
    if ('error' in page) return reply.code(400).send({ error: page.error });
    const projectsWhere = (links: SandboxDeployKey[], readOnly: boolean) =>
      links
        .filter((link) => link.readOnly === readOnly)
        .map((link) => state.findRepository(link.repositoryId))
        .filter((project) => project !== undefined)
        .map((project) => renderProjectIdentity(project));
    return reply.headers(page.headers).send(
      page.items.map((links) => ({
        ...keyOnly(links[0]!),
        projects_with_write_access: projectsWhere(links, false),
        projects_with_readonly_access: projectsWhere(links, true),
      })),
    );
  });

  app.get<{ Params: KeyParams }>(keysPath, async (request, reply) => {
    const project = routes.resolveProject(request, reply);
    if (!project) return reply;
    const page = routes.paginate(request, state.listKeys(project.id), { id: request.params.id });
    if ('error' in page) return reply.code(400).send({ error: page.error });
    return reply.headers(page.headers).send(page.items.map(withLink));
  });

  app.get<{ Params: KeyParams }>(`${keysPath}/:key_id`, async (request, reply) => {
    const project = routes.resolveProject(request, reply);
    if (!project) return reply;
    const keyId = keyIdOf(request);
    if (keyId === undefined) return reply.code(400).send({ error: 'key_id is invalid' });
    const record = state.getKey(project.id, keyId);
    // `find_by!` raises RecordNotFound, which the API turns into this generic body.
    if (!record) return reply.code(404).send({ message: '404 Not found' });
    return withLink(record);
  });

  app.post<{ Params: KeyParams }>(keysPath, async (request, reply) => {
    const project = routes.resolveProject(request, reply);
    if (!project) return reply;
    const params = coerceCreateParams({ ...flatten(request.query), ...routes.bodyOf(request) });
    if ('error' in params) return reply.code(400).send({ error: params.error });

    // GitLab looks the key up by its exact text: the same key already on this project is answered
    // as if created, and a key another project uses is linked here under its own id and title.
    const stored = sanitizeKey(params.key);
    const sameText = state.keysWithBlob(normalizeKeyBlob(stored)).filter((k) => storedKey(k) === params.key);
    const existing = sameText.find((k) => k.repositoryId === project.id);
    if (existing) return reply.code(201).send(withLink(existing));
    const elsewhere = sameText[0];
    if (elsewhere) {
      const linked = state.linkKey(elsewhere.id, project.id, !params.canPush);
      return reply.code(201).send(withLink(linked!));
    }

    const errors = validateNewKey(params, (blob) => state.keysWithBlob(blob).length > 0, new Date());
    if (Object.keys(errors).length > 0) return reply.code(400).send({ message: errors });
    const created = state.addKey({
      repositoryId: project.id,
      title: params.title,
      key: stored,
      readOnly: !params.canPush,
      expiresAt: params.expiresAt,
    });
    storedKeys.set(created.id, stored);
    return reply.code(201).send(withLink(created));
  });

  app.put<{ Params: KeyParams }>(`${keysPath}/:key_id`, async (request, reply) => {
    const project = routes.resolveProject(request, reply);
    if (!project) return reply;
    const params = { ...flatten(request.query), ...routes.bodyOf(request) };
    const keyId = keyIdOf(request);
    const canPush = params.can_push === undefined ? undefined : coerceBoolean(params.can_push);
    const errors: string[] = [];
    if (keyId === undefined) errors.push('key_id is invalid');
    if (params.can_push !== undefined && canPush === undefined) errors.push('can_push is invalid');
    if (params.title === undefined && params.can_push === undefined) {
      errors.push('title, can_push are missing, at least one parameter must be provided');
    }
    if (errors.length > 0) return reply.code(400).send({ error: errors.join(', ') });
    const record = state.getKey(project.id, keyId!);
    if (!record) return reply.code(404).send({ message: '404 Not found' });
    const title = params.title === undefined ? undefined : String(params.title);
    if (title !== undefined && title.trim() === '') {
      return reply.code(400).send({ message: { 'deploy_key.title': ["can't be blank"] } });
    }
    const readOnly = canPush === undefined ? undefined : !canPush;
    return withLink(state.updateKey(project.id, keyId!, { title, readOnly })!);
  });

  // Projects::EnableDeployKeyService: link a key the caller can see; enabling it twice is a no-op.
  app.post<{ Params: KeyParams }>(`${keysPath}/:key_id/enable`, async (request, reply) => {
    const project = routes.resolveProject(request, reply);
    if (!project) return reply;
    const keyId = keyIdOf(request);
    if (keyId === undefined) return reply.code(400).send({ error: 'key_id is invalid' });
    const linked = state.linkKey(keyId, project.id, true);
    if (!linked) return reply.code(404).send({ message: '404 Deploy key Not Found' });
    return reply.code(201).send(keyOnly(linked));
  });

  app.delete<{ Params: KeyParams }>(`${keysPath}/:key_id`, async (request, reply) => {
    const project = routes.resolveProject(request, reply);
    if (!project) return reply;
    const keyId = keyIdOf(request);
    if (keyId === undefined) return reply.code(400).send({ error: 'key_id is invalid' });
    if (!state.deleteKey(project.id, keyId)) {
      return reply.code(404).send({ message: '404 Deploy key Not Found' });
    }
    if (state.keyLinks(keyId).length === 0) storedKeys.delete(keyId);
    return reply.code(204).send();
  });
}
