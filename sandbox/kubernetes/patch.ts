// The PATCH bodies the API server accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
// and strategic merge patch for the fields the stand-in lets a client change (maps merge, `null`
// deletes, `$patch`/`$retainKeys`/`$deleteFromPrimitiveList` directives, finalizers merge as a
// set and owner references by uid; other lists are replaced, as for lists without a merge key).
import { isRecord } from './objects.ts';
import { badRequest, failure } from './status.ts';

type Json = unknown;

export const PATCH_MEDIA_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
];

export function mergePatch(target: Json, patch: Json): Json {
  if (!isRecord(patch)) return patch;
  const result: Record<string, Json> = isRecord(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

// Lists with a patch merge key in the Kubernetes types the stand-in lets clients patch.
const MERGE_KEYS: Record<string, string> = { ownerReferences: 'uid', containers: 'name', conditions: 'type' };
const SET_LISTS = new Set(['finalizers']);

function mergeList(field: string, target: Json, patch: Json[]): Json[] {
  const current = Array.isArray(target) ? target : [];
  if (SET_LISTS.has(field)) return [...new Set([...current, ...patch])];
  const mergeKey = MERGE_KEYS[field];
  if (!mergeKey) return patch;
  const result = [...current];
  for (const item of patch) {
    if (!isRecord(item)) continue;
    const index = result.findIndex((existing) => isRecord(existing) && existing[mergeKey] === item[mergeKey]);
    if (item.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
    } else if (index >= 0) result[index] = strategicMergePatch(result[index], item);
    else result.push(strategicMergePatch({}, item));
  }
  return result;
}

export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isRecord(patch)) return patch;
  if (patch.$patch === 'delete') return undefined;
  const { $patch: directive, $retainKeys: retainKeys, ...fields } = patch;
  let result: Record<string, Json> = isRecord(target) && directive !== 'replace' ? { ...target } : {};
  for (const [key, value] of Object.entries(fields)) {
    if (key.startsWith('$setElementOrder/')) continue;
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const field = key.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set(Array.isArray(value) ? value : []);
      if (Array.isArray(result[field])) result[field] = (result[field] as Json[]).filter((v) => !drop.has(v));
      continue;
    }
    if (value === null) delete result[key];
    else if (Array.isArray(value)) result[key] = mergeList(key, result[key], value);
    else {
      const merged = strategicMergePatch(result[key], value);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    }
  }
  if (Array.isArray(retainKeys)) {
    result = Object.fromEntries(Object.entries(result).filter(([key]) => retainKeys.includes(key)));
  }
  return result;
}

// RFC 6901 pointer segments.
function pointer(path: unknown): string[] {
  if (typeof path !== 'string' || (path !== '' && !path.startsWith('/'))) {
    throw badRequest(`the server rejected our request due to an error in our request`);
  }
  return path === ''
    ? []
    : path
        .slice(1)
        .split('/')
        .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
}

const patchFailed = (message: string) => failure(422, 'Invalid', message);

function parentOf(document: Json, segments: string[], path: string): [Json, string] {
  let node = document;
  for (const segment of segments.slice(0, -1)) {
    node = Array.isArray(node) ? node[Number(segment)] : isRecord(node) ? node[segment] : undefined;
    if (node === undefined) throw patchFailed(`jsonpatch path ${path}: missing value`);
  }
  return [node, segments[segments.length - 1]!];
}

function readAt(document: Json, path: string): Json {
  let node = document;
  for (const segment of pointer(path)) {
    node = Array.isArray(node) ? node[Number(segment)] : isRecord(node) ? node[segment] : undefined;
    if (node === undefined) throw patchFailed(`jsonpatch path ${path}: missing value`);
  }
  return node;
}

function removeAt(document: Json, path: string): Json {
  const [parent, last] = parentOf(document, pointer(path), path);
  if (Array.isArray(parent)) return parent.splice(Number(last), 1)[0];
  if (!isRecord(parent) || !(last in parent))
    throw patchFailed(`jsonpatch remove operation does not apply: doc is missing key: ${path}`);
  const value = parent[last];
  delete parent[last];
  return value;
}

function addAt(document: Json, path: string, value: Json, replace: boolean): Json {
  const segments = pointer(path);
  if (segments.length === 0) return structuredClone(value);
  const [parent, last] = parentOf(document, segments, path);
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    parent.splice(index, replace ? 1 : 0, structuredClone(value));
  } else if (isRecord(parent)) {
    if (replace && !(last in parent))
      throw patchFailed(`jsonpatch replace operation does not apply: doc is missing key: ${path}`);
    parent[last] = structuredClone(value);
  } else throw patchFailed(`jsonpatch path ${path}: missing value`);
  return document;
}

export function jsonPatch(target: Json, operations: Json): Json {
  if (!Array.isArray(operations))
    throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let document = structuredClone(target);
  for (const operation of operations) {
    if (!isRecord(operation))
      throw badRequest('the server rejected our request due to an error in our request');
    const path = String(operation.path ?? '');
    switch (operation.op) {
      case 'add':
      case 'replace':
        document = addAt(document, path, operation.value, operation.op === 'replace');
        break;
      case 'remove':
        removeAt(document, path);
        break;
      case 'move':
      case 'copy': {
        const value =
          operation.op === 'move'
            ? removeAt(document, String(operation.from))
            : readAt(document, String(operation.from));
        document = addAt(document, path, value, false);
        break;
      }
      case 'test':
        if (JSON.stringify(readAt(document, path)) !== JSON.stringify(operation.value)) {
          throw patchFailed(`testing value ${path} failed: test failed`);
        }
        break;
      default:
        throw badRequest(`Unexpected kind: ${String(operation.op)}`);
    }
  }
  return document;
}
