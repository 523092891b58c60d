// What the API server's generic registry does between a request and etcd: create with defaults
// and validation, optimistic-concurrency updates, patches, and deletion with grace periods,
// finalizers and propagation policies. The HTTP layer and the simulated controllers both write
// through it, so every object gets the same treatment whoever changes it.
import { randomUUID } from 'node:crypto';
import { createDeletion } from './deletion.ts';
import { jobCreateErrors } from './job-rules.ts';
import { clone, isRecord, type Job, type KubeObject, kubeTime, randomSuffix } from './objects.ts';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.ts';
import type { ResourceType } from './resources.ts';
import {
  alreadyExists,
  badRequest,
  conflict,
  type FieldError,
  invalid,
  invalidValue,
  notFound,
  required,
} from './status.ts';
import type { ObjectStore } from './store.ts';

export type PatchType = 'json' | 'merge' | 'strategic';

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SUBDOMAIN_MESSAGE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

function metadataErrors(object: KubeObject): FieldError[] {
  const name = object.metadata.name ?? '';
  if (name === '')
    return [{ ...required('metadata.name'), detail: 'Required value: name or generateName is required' }];
  if (!SUBDOMAIN.test(name) || name.length > 253)
    return [invalidValue('metadata.name', name, SUBDOMAIN_MESSAGE)];
  return [];
}

// JSON decoding into Go types refuses non-string label and annotation values before validation.
function checkStringMaps(type: ResourceType, object: KubeObject): void {
  for (const field of ['labels', 'annotations'] as const) {
    const map = object.metadata[field];
    if (map === undefined || map === null) continue;
    const bad = isRecord(map) ? Object.values(map).find((value) => typeof value !== 'string') : map;
    if (bad !== undefined) {
      throw badRequest(
        `json: cannot unmarshal ${typeof bad === 'number' ? 'number' : typeof bad} into Go struct field ObjectMeta.metadata.${field} of type string (${type.kind})`,
      );
    }
  }
}

function checkTypeMeta(type: ResourceType, object: unknown): asserts object is KubeObject {
  if (!isRecord(object)) throw badRequest(`json: cannot unmarshal into Go value of type ${type.kind}`);
  if (object.apiVersion !== undefined && object.apiVersion !== type.apiVersion) {
    throw badRequest(
      `the API version in the data (${String(object.apiVersion)}) does not match the expected API version (${type.apiVersion})`,
    );
  }
  if (object.kind !== undefined && object.kind !== type.kind) {
    throw badRequest(
      `the kind in the data (${String(object.kind)}) does not match the expected kind (${type.kind})`,
    );
  }
  if (!isRecord(object.metadata)) object.metadata = {};
  checkStringMaps(type, object as KubeObject);
}

export function createRegistry(store: ObjectStore, now: () => Date) {
  const find = (type: ResourceType, namespace: string, name: string) => {
    const found = store.get(type.plural, namespace, name);
    if (!found) throw notFound(type, name);
    return found;
  };

  const removeIfDue = (type: ResourceType, object: KubeObject): KubeObject | undefined => {
    const meta = object.metadata;
    const due =
      meta.deletionTimestamp !== undefined &&
      (meta.finalizers ?? []).length === 0 &&
      (type.plural !== 'pods' || meta.deletionGracePeriodSeconds === 0);
    return due ? store.remove(type.plural, meta.namespace!, meta.name!) : undefined;
  };

  function create(type: ResourceType, namespace: string, body: unknown): KubeObject {
    checkTypeMeta(type, body);
    const object = clone(body);
    if (object.metadata.namespace !== undefined && object.metadata.namespace !== namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    if (!object.metadata.name && object.metadata.generateName) {
      object.metadata.name = `${object.metadata.generateName}${randomSuffix()}`;
    }
    const nameErrors = metadataErrors(object);
    if (nameErrors.length > 0) throw invalid(type, object.metadata.name ?? '', nameErrors);
    const createErrors = type.plural === 'jobs' ? jobCreateErrors(object as Job) : [];
    if (store.get(type.plural, namespace, object.metadata.name!))
      throw alreadyExists(type, object.metadata.name!);
    const {
      deletionTimestamp: _d,
      deletionGracePeriodSeconds: _g,
      resourceVersion: _r,
      ...meta
    } = object.metadata;
    object.metadata = { ...meta, namespace, uid: randomUUID(), creationTimestamp: kubeTime(now()) };
    object.apiVersion = type.apiVersion;
    object.kind = type.kind;
    const errors = [...createErrors, ...type.validate(object)];
    if (errors.length > 0) throw invalid(type, object.metadata.name!, errors);
    type.defaults(object);
    type.normalize?.(object);
    return store.create(type.plural, object);
  }

  /** Writes `next` over the stored object, as PUT does; `status` only through the subresource. */
  function update(
    type: ResourceType,
    namespace: string,
    name: string,
    body: unknown,
    options: { subresource?: 'status' } = {},
  ): KubeObject {
    checkTypeMeta(type, body);
    const next = clone(body);
    if (next.metadata.name !== undefined && next.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${next.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    if (next.metadata.namespace !== undefined && next.metadata.namespace !== namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    const existing = store.get(type.plural, namespace, name);
    if (!existing) {
      if (type.allowCreateOnUpdate)
        return create(type, namespace, { ...next, metadata: { ...next.metadata, name } });
      throw notFound(type, name);
    }
    const version = next.metadata.resourceVersion;
    if (!version && !type.allowUnconditionalUpdate) {
      throw invalid(type, name, [
        invalidValue('metadata.resourceVersion', 0, 'must be specified for an update'),
      ]);
    }
    if (version && version !== existing.metadata.resourceVersion) throw conflict(type, name);
    if (next.metadata.uid !== undefined && next.metadata.uid !== existing.metadata.uid) {
      throw conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${next.metadata.uid}, UID in object meta: ${existing.metadata.uid}`,
      );
    }
    const merged: KubeObject =
      options.subresource === 'status'
        ? { ...existing, status: next.status }
        : { ...next, apiVersion: type.apiVersion, kind: type.kind };
    if (options.subresource !== 'status' && type.hasStatus) merged.status = existing.status;
    const { uid, creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds, generation } =
      existing.metadata;
    merged.metadata = {
      ...merged.metadata,
      name,
      namespace,
      ...(uid === undefined ? {} : { uid }),
      ...(creationTimestamp === undefined ? {} : { creationTimestamp }),
      ...(deletionTimestamp === undefined ? {} : { deletionTimestamp, deletionGracePeriodSeconds }),
      ...(generation === undefined ? {} : { generation }),
    };
    const errors = [
      ...metadataErrors(merged),
      ...type.validate(merged),
      ...type.updateErrors(merged, existing),
    ];
    if (errors.length > 0) throw invalid(type, name, errors);
    if (generation !== undefined && JSON.stringify(merged.spec) !== JSON.stringify(existing.spec)) {
      merged.metadata.generation = generation + 1;
    }
    const { resourceVersion } = existing.metadata;
    if (resourceVersion === undefined) delete merged.metadata.resourceVersion;
    else merged.metadata.resourceVersion = resourceVersion;
    // An update that changes nothing is not written, and keeps its resourceVersion (as etcd3's store does).
    if (JSON.stringify(merged) === JSON.stringify(existing)) return existing;
    const stored = store.update(type.plural, merged);
    return removeIfDue(type, stored) ?? stored;
  }

  function patch(
    type: ResourceType,
    namespace: string,
    name: string,
    kind: PatchType,
    body: unknown,
  ): KubeObject {
    const existing = find(type, namespace, name);
    const patched =
      kind === 'json'
        ? jsonPatch(existing, body)
        : kind === 'merge'
          ? mergePatch(existing, body)
          : strategicMergePatch(existing, body);
    return update(type, namespace, name, patched);
  }

  const remove = createDeletion({ store, now, find, removeIfDue });

  /** A write by a simulated cluster component (kubelet, scheduler, controllers): no client rules apply. */
  const systemUpdate = (type: ResourceType, object: KubeObject): KubeObject => {
    const stored = store.update(type.plural, object);
    return removeIfDue(type, stored) ?? stored;
  };

  return {
    store,
    get: find,
    systemUpdate,
    create,
    update,
    updateStatus: (type: ResourceType, object: KubeObject) =>
      update(type, object.metadata.namespace!, object.metadata.name!, object, { subresource: 'status' }),
    patch,
    remove,
  };
}

export type Registry = ReturnType<typeof createRegistry>;
export type { DeleteOptions } from './deletion.ts';
