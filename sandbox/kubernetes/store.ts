// The stand-in's etcd: objects by resource and `namespace/name`, one revision counter shared by
// every resource (so resourceVersions are comparable, as etcd revisions are), and a bounded log
// of changes from which watches resume and older list snapshots are rebuilt.
import { clone, type KubeObject, objectKey } from './objects.ts';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  revision: number;
  type: ChangeType;
  resource: string;
  key: string;
  /** The object after the change; for DELETED its last state, stamped with the deletion's version. */
  object: KubeObject;
  /** The object before the change (MODIFIED, DELETED). */
  previous?: KubeObject;
}

export interface ObjectStore {
  revision(): number;
  /** The oldest version a watch may resume from; anything older is answered 410 Expired. */
  floor(): number;
  get(resource: string, namespace: string, name: string): KubeObject | undefined;
  /** Current objects in key order, of one namespace or of all. */
  list(resource: string, namespace?: string): KubeObject[];
  /** The objects as they were at `revision`; undefined when the log no longer reaches back that far. */
  listAt(resource: string, namespace: string | undefined, revision: number): KubeObject[] | undefined;
  create(resource: string, object: KubeObject): KubeObject;
  update(resource: string, object: KubeObject): KubeObject;
  remove(resource: string, namespace: string, name: string): KubeObject | undefined;
  /** Changes after `revision`, oldest first; undefined when `revision` is older than the floor. */
  changesAfter(revision: number): Change[] | undefined;
  subscribe(listener: (change: Change) => void): () => void;
  /** Forgets the whole log: every version handed out so far becomes too old to watch from. */
  compact(): number;
  setRetention(changes: number): void;
}

const keyOf = (object: KubeObject) => objectKey(object.metadata.namespace ?? '', object.metadata.name ?? '');
const inNamespace = (key: string, namespace: string | undefined) =>
  namespace === undefined || key.startsWith(`${namespace}/`);

export function createObjectStore(options: { firstRevision?: number; retainedChanges?: number } = {}) {
  let revision = options.firstRevision ?? 1;
  let floor = revision;
  let retention = options.retainedChanges ?? 10_000;
  const objects = new Map<string, Map<string, KubeObject>>();
  let log: Change[] = [];
  const listeners = new Set<(change: Change) => void>();

  const table = (resource: string) => {
    let found = objects.get(resource);
    if (!found) {
      found = new Map();
      objects.set(resource, found);
    }
    return found;
  };

  const trim = () => {
    if (log.length <= retention) return;
    const dropped = log.splice(0, log.length - retention);
    floor = dropped[dropped.length - 1]!.revision;
  };

  const record = (change: Change) => {
    log.push(change);
    trim();
    for (const listener of [...listeners]) listener(clone(change));
  };

  const write = (resource: string, object: KubeObject, type: 'ADDED' | 'MODIFIED') => {
    revision += 1;
    const stored = clone(object);
    stored.metadata.resourceVersion = String(revision);
    const key = keyOf(stored);
    const previous = table(resource).get(key);
    table(resource).set(key, stored);
    record({ revision, type, resource, key, object: clone(stored), ...(previous ? { previous } : {}) });
    return clone(stored);
  };

  const sorted = (entries: Iterable<[string, KubeObject]>, namespace: string | undefined) =>
    [...entries]
      .filter(([key]) => inNamespace(key, namespace))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, object]) => clone(object));

  const store: ObjectStore = {
    revision: () => revision,
    floor: () => floor,
    get: (resource, namespace, name) => {
      const found = table(resource).get(objectKey(namespace, name));
      return found ? clone(found) : undefined;
    },
    list: (resource, namespace) => sorted(table(resource).entries(), namespace),
    listAt: (resource, namespace, at) => {
      if (at < floor) return undefined;
      const state = new Map(table(resource));
      // Undo, newest first, every change made after `at`.
      for (let index = log.length - 1; index >= 0 && log[index]!.revision > at; index -= 1) {
        const change = log[index]!;
        if (change.resource !== resource) continue;
        if (change.type === 'ADDED') state.delete(change.key);
        else state.set(change.key, change.previous!);
      }
      return sorted(state.entries(), namespace);
    },
    create: (resource, object) => write(resource, object, 'ADDED'),
    update: (resource, object) => write(resource, object, 'MODIFIED'),
    remove: (resource, namespace, name) => {
      const key = objectKey(namespace, name);
      const previous = table(resource).get(key);
      if (!previous) return undefined;
      table(resource).delete(key);
      revision += 1;
      const object = clone(previous);
      object.metadata.resourceVersion = String(revision);
      record({ revision, type: 'DELETED', resource, key, object, previous });
      return clone(object);
    },
    changesAfter: (after) => {
      if (after < floor) return undefined;
      return log.filter((change) => change.revision > after).map(clone);
    },
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    compact: () => {
      // etcd's revision moves with writes anywhere in the cluster; a bump stands in for those, so
      // even the newest version a client holds is now older than the log.
      revision += 1;
      log = [];
      floor = revision;
      return revision;
    },
    setRetention: (changes) => {
      retention = Math.max(1, changes);
      trim();
    },
  };
  return store;
}
