// `GET /repos/{owner}/{repo}` and the deploy-key routes, with the checks Gitea's router runs before
// them in its order: token scope (403), repository lookup (404, also for a repository the caller
// cannot see), signed in (401), repository administrator (403).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HostState, SandboxDeployKey, SandboxRepository } from '../shared/host-state.ts';
import { type Caller, type GiteaUser, missingScope } from './auth.ts';
import { decodeCreateKeyOption } from './create-key-option.ts';
import type { GiteaDeployKeys, GiteaPublicKey } from './deploy-keys.ts';
import { checkPublicKey } from './public-keys.ts';
import { API_SETTINGS, apiError, deployKeyBody, type Permission, repositoryBody } from './responses.ts';

export interface RepositoryRoutesContext {
  state: HostState;
  keys: GiteaDeployKeys;
  origin: () => string;
  callerOf: (request: FastifyRequest) => Caller;
  ownerOf: (repositoryPath: string) => GiteaUser;
  sshCloneUrl: (path: string) => string;
  createdAt: Date;
}

type RepoParams = { owner: string; repo: string };
type KeyParams = RepoParams & { id: string };
type ListQuery = Record<string, string | undefined>;

interface Assigned {
  repository: SandboxRepository;
  permission: Permission;
}

const REPO = '/api/v1/repos/:owner/:repo';
const NO_ACCESS: Permission = { admin: false, push: false, pull: false };

/** Go's `strconv.Atoi` as `ctx.FormInt` uses it: anything unparsable is 0. */
const formInt = (value: string | undefined) => (value && /^[+-]?\d+$/.test(value) ? Number(value) : 0);

function permissionOf(caller: Caller): Permission {
  if (caller.kind !== 'user') return NO_ACCESS;
  return caller.user.isAdmin
    ? { admin: true, push: true, pull: true }
    : { admin: false, push: false, pull: true };
}

/** Gitea's checks for a repository route; on a refusal it answers and returns `undefined`. */
function createRepositoryAccess(context: RepositoryRoutesContext) {
  const fail = (reply: FastifyReply, status: number, message: string) =>
    reply.code(status).send(apiError(context.origin(), message));

  return (
    request: FastifyRequest<{ Params: RepoParams }>,
    reply: FastifyReply,
    keyRoute: boolean,
  ): Assigned | undefined => {
    const caller = context.callerOf(request);
    const write = request.method !== 'GET' && request.method !== 'HEAD';
    const scopeError = missingScope(caller, 'repository', write);
    if (scopeError) return void fail(reply, 403, scopeError);
    const repository = context.state.findRepository(`${request.params.owner}/${request.params.repo}`);
    const permission = permissionOf(caller);
    // A private repository: whoever may not read it is told it does not exist.
    if (!repository || !permission.pull) return void fail(reply, 404, 'not found');
    if (keyRoute && caller.kind !== 'user') return void fail(reply, 401, 'token is required');
    if (keyRoute && !permission.admin) {
      const message = 'user should be an owner or a collaborator with admin write of a repository';
      return void fail(reply, 403, message);
    }
    return { repository, permission };
  };
}

/** The bodies of repositories and deploy keys as the assigned caller sees them. */
function createViews(context: RepositoryRoutesContext) {
  const repository = ({ repository }: Assigned, permission: Permission) =>
    repositoryBody({
      origin: context.origin(),
      repository,
      owner: context.ownerOf(repository.path),
      permission,
      sshCloneUrl: context.sshCloneUrl(repository.path),
      createdAt: context.createdAt,
    });

  // A key written into the state directly (tests do) has no Gitea record yet; derive one from its blob.
  const publicKeyOf = (deployKey: SandboxDeployKey): GiteaPublicKey => {
    const known = context.keys.publicKeyOf(deployKey.key);
    if (known) return known;
    const checked = checkPublicKey(deployKey.key);
    const fingerprint = 'fingerprint' in checked ? checked.fingerprint : '';
    return { id: 0, name: deployKey.title, content: deployKey.key, blob: deployKey.key, fingerprint };
  };

  return {
    repository,
    publicKeyOf,
    created: (assigned: Assigned, deployKey: SandboxDeployKey) =>
      deployKeyBody(context.origin(), assigned.repository.path, deployKey, publicKeyOf(deployKey)),
    // Only a site administrator gets this far, and Gitea shows such a caller the repository, with the
    // key's own access as its permission.
    withRepository: (assigned: Assigned, deployKey: SandboxDeployKey) =>
      deployKeyBody(
        context.origin(),
        assigned.repository.path,
        deployKey,
        publicKeyOf(deployKey),
        repository(assigned, { admin: false, push: !deployKey.readOnly, pull: true }),
      ),
  };
}

export function registerRepositoryRoutes(app: FastifyInstance, context: RepositoryRoutesContext): void {
  const { state, keys } = context;
  const assign = createRepositoryAccess(context);
  const views = createViews(context);
  const fail = (reply: FastifyReply, status: number, message: string) =>
    reply.code(status).send(apiError(context.origin(), message));

  app.get<{ Params: RepoParams }>(REPO, async (request, reply) => {
    const assigned = assign(request, reply, false);
    return assigned ? views.repository(assigned, assigned.permission) : reply;
  });

  app.get<{ Params: RepoParams; Querystring: ListQuery }>(`${REPO}/keys`, async (request, reply) => {
    const assigned = assign(request, reply, true);
    if (!assigned) return reply;
    const { query } = request;
    const keyId = formInt(query.key_id);
    const matching = state
      .listKeys(assigned.repository.id)
      .filter((deployKey) => keyId === 0 || views.publicKeyOf(deployKey).id === keyId)
      .filter(
        (deployKey) => !query.fingerprint || views.publicKeyOf(deployKey).fingerprint === query.fingerprint,
      );
    const limit = formInt(query.limit);
    const pageSize =
      limit <= 0 ? API_SETTINGS.default_paging_num : Math.min(limit, API_SETTINGS.max_response_items);
    const page = Math.max(formInt(query.page), 1);
    // Gitea's deploy-key list reports the total only; it writes no Link header.
    reply.header('x-total-count', String(matching.length));
    reply.header('access-control-expose-headers', 'X-Total-Count');
    return matching
      .slice((page - 1) * pageSize, page * pageSize)
      .map((deployKey) => views.withRepository(assigned, deployKey));
  });

  app.post<{ Params: RepoParams; Body: string | undefined }>(`${REPO}/keys`, async (request, reply) => {
    const assigned = assign(request, reply, true);
    if (!assigned) return reply;
    const option = decodeCreateKeyOption(request.headers['content-type'], request.body);
    if ('error' in option) return fail(reply, 422, option.error);
    const checked = checkPublicKey(option.key);
    if ('error' in checked) return fail(reply, 422, checked.error);
    const added = keys.add({
      repositoryId: assigned.repository.id,
      title: option.title,
      key: checked,
      readOnly: option.readOnly,
    });
    if ('error' in added) return fail(reply, 422, added.error);
    return reply.code(201).send(views.created(assigned, added));
  });

  app.get<{ Params: KeyParams }>(`${REPO}/keys/:id`, async (request, reply) => {
    const assigned = assign(request, reply, true);
    if (!assigned) return reply;
    const deployKey = state.getKey(assigned.repository.id, formInt(request.params.id));
    if (!deployKey) return fail(reply, 404, 'not found');
    return views.withRepository(assigned, deployKey);
  });

  app.delete<{ Params: KeyParams }>(`${REPO}/keys/:id`, async (request, reply) => {
    const assigned = assign(request, reply, true);
    if (!assigned) return reply;
    // Gitea answers 204 whether or not the key existed: a deleted key is deleted.
    keys.remove(assigned.repository.id, formInt(request.params.id));
    return reply.code(204).send();
  });
}
