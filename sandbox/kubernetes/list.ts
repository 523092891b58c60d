// Collection GETs: selectors, `limit`/`continue` pages served from one consistent snapshot, and
// the `resourceVersion`/`resourceVersionMatch` semantics of the API concepts page.
import { type KubeObject, objectKey } from './objects.ts';
import type { ResourceType } from './resources.ts';
import { parseFieldSelector, parseLabelSelector, type Selector } from './selectors.ts';
import { badRequest, expired, failure, tooLargeResourceVersion } from './status.ts';
import type { ObjectStore } from './store.ts';

export type Query = Record<string, string | undefined>;

export interface ListBody {
  kind: string;
  apiVersion: string;
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: KubeObject[];
}

interface ContinueToken {
  /** The snapshot's revision; -1 for the "inconsistent" token handed out with a 410. */
  rv: number;
  start: string;
}

const CONTINUE_EXPIRED =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

// The API server's token: unpadded base64url of {"v":"meta.k8s.io/v1","rv":…,"start":…}.
const encodeContinue = (token: ContinueToken) =>
  Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: token.rv, start: token.start })).toString(
    'base64url',
  );

function decodeContinue(text: string): ContinueToken {
  try {
    const parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (parsed.v === 'meta.k8s.io/v1' && Number.isInteger(parsed.rv) && typeof parsed.start === 'string') {
      return { rv: parsed.rv, start: parsed.start };
    }
  } catch {}
  throw badRequest(
    'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
  );
}

export function parseResourceVersion(text: string): number {
  if (!/^\d+$/.test(text))
    throw badRequest(`resourceVersion: Invalid value: "${text}": must be a non-negative integer`);
  return Number(text);
}

/** Items of a list carry no kind or apiVersion, as the API server serves them. */
export function listItem(object: KubeObject): KubeObject {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = object;
  return rest as KubeObject;
}

export function selectorsOf(type: ResourceType, query: Query): Selector {
  const byLabel = parseLabelSelector(query.labelSelector);
  const byField = parseFieldSelector(query.fieldSelector, type);
  return (object) => byLabel(object) && byField(object);
}

function snapshot(
  store: ObjectStore,
  type: ResourceType,
  namespace: string | undefined,
  query: Query,
  token?: ContinueToken,
) {
  if (token && token.rv >= 0) {
    const objects = store.listAt(type.plural, namespace, token.rv);
    if (!objects) {
      const error = expired(CONTINUE_EXPIRED);
      error.status.metadata.continue = encodeContinue({ rv: -1, start: token.start });
      throw error;
    }
    return { revision: token.rv, objects };
  }
  const match = query.resourceVersionMatch;
  const requested = query.resourceVersion ? parseResourceVersion(query.resourceVersion) : undefined;
  if (match !== undefined && requested === undefined) {
    throw badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
  }
  if (match === 'Exact' && requested !== undefined) {
    const objects = store.listAt(type.plural, namespace, requested);
    if (!objects || requested > store.revision()) {
      throw expired('The resourceVersion for the provided list is too old.');
    }
    return { revision: requested, objects };
  }
  if (match !== undefined && match !== 'NotOlderThan') {
    throw failure(
      422,
      'Invalid',
      `resourceVersionMatch: Unsupported value: "${match}": supported values: "Exact", "NotOlderThan", ""`,
    );
  }
  if (requested !== undefined && requested > store.revision())
    throw tooLargeResourceVersion(requested, store.revision());
  return { revision: store.revision(), objects: store.list(type.plural, namespace) };
}

export function listObjects(
  store: ObjectStore,
  type: ResourceType,
  namespace: string | undefined,
  query: Query,
): ListBody {
  const matches = selectorsOf(type, query);
  const limit = query.limit ? Number(query.limit) : 0;
  if (!Number.isInteger(limit) || limit < 0) throw badRequest(`limit: Invalid value: "${query.limit}"`);
  const token = query.continue ? decodeContinue(query.continue) : undefined;
  if (token && query.resourceVersion) {
    throw badRequest('specifying resource version is not allowed when using continue');
  }
  const { revision, objects } = snapshot(store, type, namespace, query, token);
  const keyOf = (object: KubeObject) =>
    objectKey(object.metadata.namespace ?? '', object.metadata.name ?? '');
  const remaining = objects.filter((object) => (!token || keyOf(object) >= token.start) && matches(object));
  const page = limit > 0 ? remaining.slice(0, limit) : remaining;
  const more = page.length < remaining.length;
  const last = page[page.length - 1];
  const unfiltered = !query.labelSelector && !query.fieldSelector;
  return {
    kind: type.listKind,
    apiVersion: type.apiVersion,
    metadata: {
      resourceVersion: String(revision),
      ...(more && last ? { continue: encodeContinue({ rv: revision, start: `${keyOf(last)}\u0000` }) } : {}),
      ...(more && unfiltered ? { remainingItemCount: remaining.length - page.length } : {}),
    },
    items: page.map(listItem),
  };
}
