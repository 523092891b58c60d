// The resource endpoints under `/api/v1` and `/apis/{group}/v1`: paths, verbs, content types and
// DeleteOptions as the API server reads them, answered through the registry, list and watch.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parse as parseYaml } from 'yaml';
import type { PropagationPolicy } from './deletion.ts';
import { listObjects, type Query } from './list.ts';
import { isRecord, type KubeObject } from './objects.ts';
import { PATCH_MEDIA_TYPES } from './patch.ts';
import type { DeleteOptions, PatchType, Registry } from './registry.ts';
import { findResourceType, type ResourceType } from './resources.ts';
import {
  badRequest,
  failure,
  methodNotAllowed,
  pathNotFound,
  qualifiedName,
  unsupportedMediaType,
} from './status.ts';
import { renderTable, tableVersionAccepted } from './table.ts';
import { isTrue, serveWatch, type WatchConnection, type WatchStats } from './watch.ts';

export interface ResourcePath {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export interface ApiRouteOptions {
  registry: Registry;
  now: () => Date;
  connections: Set<WatchConnection>;
  watchStats: WatchStats;
  bookmarkIntervalMs: () => number;
}

const BODY_MEDIA_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];
const PATCH_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
};

export function parseResourcePath(pathname: string): ResourcePath | undefined {
  const segments = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let rest: string[];
  if (segments[0] === 'api' && segments[1] === 'v1') [group, rest] = ['', segments.slice(2)];
  else if (segments[0] === 'apis' && segments[2] === 'v1') [group, rest] = [segments[1]!, segments.slice(3)];
  else return undefined;
  const namespaced = rest[0] === 'namespaces' && rest.length >= 3;
  const [plural, name, subresource] = namespaced ? rest.slice(2) : rest;
  const type = findResourceType(group, plural ?? '');
  // Every resource served here is namespaced: a cluster-scoped path may only list or watch it.
  if (!type || (!namespaced && name !== undefined)) return undefined;
  return {
    type,
    ...(namespaced ? { namespace: rest[1] } : {}),
    ...(name === undefined ? {} : { name }),
    ...(subresource === undefined ? {} : { subresource }),
  };
}

/** The verb RBAC would check for this request. */
export function verbOf(method: string, path: ResourcePath, query: Query): string {
  if (method === 'GET') return path.name ? 'get' : isTrue(query.watch) ? 'watch' : 'list';
  if (method === 'DELETE') return path.name ? 'delete' : 'deletecollection';
  return { POST: 'create', PUT: 'update', PATCH: 'patch' }[method] ?? method.toLowerCase();
}

/** 403 for a request made without credentials, worded as the API server's RBAC denial. */
export function forbiddenFor(method: string, url: URL, query: Query) {
  const user = 'User "system:anonymous"';
  const path = parseResourcePath(url.pathname);
  if (!path)
    return failure(
      403,
      'Forbidden',
      `forbidden: ${user} cannot ${method.toLowerCase()} path "${url.pathname}"`,
      {},
    );
  const { type, namespace, name } = path;
  const subject = name ? `${qualifiedName(type)} "${name}"` : qualifiedName(type);
  const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
  return failure(
    403,
    'Forbidden',
    `${subject} is forbidden: ${user} cannot ${verbOf(method, path, query)} resource "${type.plural}" in API group "${type.group}" ${scope}`,
    { ...(name ? { name } : {}), ...(type.group ? { group: type.group } : {}), kind: type.plural },
  );
}

const mediaType = (request: FastifyRequest) =>
  (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

function decodeBody(request: FastifyRequest, accepted: string[]): unknown {
  const media = mediaType(request);
  if (!accepted.includes(media) || media === 'application/vnd.kubernetes.protobuf')
    throw unsupportedMediaType(accepted);
  const text = typeof request.body === 'string' ? request.body : '';
  try {
    return media === 'application/yaml' ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(error as Error).message}`);
  }
}

function deleteOptions(request: FastifyRequest, query: Query): DeleteOptions {
  const body =
    typeof request.body === 'string' && request.body.trim() !== ''
      ? decodeBody(request, BODY_MEDIA_TYPES)
      : {};
  const options = (isRecord(body) ? body : {}) as DeleteOptions & Record<string, unknown>;
  const policy = query.propagationPolicy ?? options.propagationPolicy;
  if (policy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(policy)) {
    throw failure(
      422,
      'Invalid',
      `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan", "nil"`,
    );
  }
  const grace = query.gracePeriodSeconds ?? options.gracePeriodSeconds;
  const orphan = query.orphanDependents ?? options.orphanDependents;
  return {
    ...(policy === undefined ? {} : { propagationPolicy: policy as PropagationPolicy }),
    ...(grace === undefined ? {} : { gracePeriodSeconds: Number(grace) }),
    ...(orphan === undefined ? {} : { orphanDependents: orphan === true || orphan === 'true' }),
    ...(isRecord(options.preconditions) ? { preconditions: options.preconditions } : {}),
  };
}

export function registerApiRoutes(app: FastifyInstance, options: ApiRouteOptions): void {
  const { registry } = options;

  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    const url = new URL(request.url, 'http://localhost');
    const query: Query = Object.fromEntries(url.searchParams);
    const path = parseResourcePath(url.pathname);
    if (!path || path.subresource !== undefined) throw pathNotFound();
    const { type, namespace, name } = path;
    const send = (code: number, body: unknown) =>
      reply.code(code).header('audit-id', randomUUID()).send(body);
    const tableVersion = tableVersionAccepted(request.headers.accept);
    const asTable = (objects: KubeObject[], resourceVersion: string, next?: string) =>
      renderTable(type, objects, {
        version: tableVersion!,
        resourceVersion,
        ...(next ? { continue: next } : {}),
        ...(query.includeObject ? { includeObject: query.includeObject } : {}),
        now: options.now(),
      });

    if (name === undefined) {
      if (request.method === 'GET' && isTrue(query.watch)) {
        reply.hijack();
        try {
          await serveWatch({ store: registry.store, type, namespace, query, ...options }, reply.raw);
        } catch (error) {
          reply.raw.writeHead((error as { status?: { code?: number } }).status?.code ?? 500, {
            'content-type': 'application/json',
          });
          reply.raw.end(
            JSON.stringify(
              (error as { status?: unknown }).status ??
                failure(500, 'InternalError', 'Internal error occurred').status,
            ),
          );
        }
        return reply;
      }
      if (request.method === 'GET') {
        const list = listObjects(registry.store, type, namespace, query);
        if (!tableVersion) return send(200, list);
        return send(200, asTable(list.items, list.metadata.resourceVersion, list.metadata.continue));
      }
      if (namespace === undefined) throw methodNotAllowed();
      if (request.method === 'POST')
        return send(201, registry.create(type, namespace, decodeBody(request, BODY_MEDIA_TYPES)));
      if (request.method === 'DELETE') {
        const options = deleteOptions(request, query);
        const doomed = listObjects(registry.store, type, namespace, query).items;
        for (const object of doomed) registry.remove(type, namespace, object.metadata.name!, options);
        return send(200, { ...listObjects(registry.store, type, namespace, {}), items: doomed });
      }
      throw methodNotAllowed();
    }

    const ns = namespace!;
    switch (request.method) {
      case 'GET': {
        const object = registry.get(type, ns, name);
        return send(200, tableVersion ? asTable([object], object.metadata.resourceVersion!) : object);
      }
      case 'PUT':
        return send(200, registry.update(type, ns, name, decodeBody(request, BODY_MEDIA_TYPES)));
      case 'PATCH': {
        const kind = PATCH_TYPES[mediaType(request)];
        if (!kind) throw unsupportedMediaType(PATCH_MEDIA_TYPES);
        return send(200, registry.patch(type, ns, name, kind, decodeBody(request, [mediaType(request)])));
      }
      case 'DELETE': {
        const outcome = registry.remove(type, ns, name, deleteOptions(request, query));
        if (outcome.warning) reply.header('warning', `299 - "${outcome.warning}"`);
        return send(200, outcome.body);
      }
      default:
        throw methodNotAllowed();
    }
  };

  for (const prefix of ['/api/v1/*', '/apis/*']) {
    app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: prefix, handler: handle });
  }
}
