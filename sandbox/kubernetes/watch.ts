// `?watch=1`: a chunked `application/json` stream of `{"type","object"}` lines, as the API
// server's watch cache serves it — synthetic ADDED events for "now", resumption from a
// resourceVersion, 410 Expired as an ERROR event for a version older than the log, BOOKMARKs,
// `timeoutSeconds`, and `sendInitialEvents` ending with the `k8s.io/initial-events-end` bookmark.

import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { parseResourceVersion, type Query, selectorsOf } from './list.ts';
import type { KubeObject } from './objects.ts';
import type { ResourceType } from './resources.ts';
import { expired, failure, type KubeStatus, tooLargeResourceVersion } from './status.ts';
import type { Change, ObjectStore } from './store.ts';

export interface WatchConnection {
  /** Ends the stream: `close` finishes the chunked body, `reset` destroys the socket mid-stream. */
  drop(mode: 'close' | 'reset'): void;
  /**
   * Sends nothing more (no event, no bookmark) while the stream stays open: a watch stalled
   * somewhere between the API server and the client, which the client cannot tell from quiet.
   */
  stall(): void;
  stalled(): boolean;
}

/** What the sandbox reports about watches: how many were answered 410 Expired. */
export interface WatchStats {
  expired: number;
}

export interface WatchOptions {
  store: ObjectStore;
  watchStats: WatchStats;
  type: ResourceType;
  namespace: string | undefined;
  query: Query;
  bookmarkIntervalMs: () => number;
  connections: Set<WatchConnection>;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

// How long the watch cache waits for a version it has not seen yet before answering 504.
const FRESHNESS_WAIT_MS = 3_000;

export const isTrue = (value: string | undefined) =>
  value !== undefined && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);

function checkInitialEventsOptions(query: Query): void {
  if (!isTrue(query.sendInitialEvents)) return;
  const problems: string[] = [];
  if (query.resourceVersionMatch !== 'NotOlderThan') {
    problems.push(
      'resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
    );
  }
  if (!isTrue(query.allowWatchBookmarks)) {
    problems.push(
      'allowWatchBookmarks: Required value: sendInitialEvents requires setting allowWatchBookmarks to true',
    );
  }
  if (problems.length > 0) {
    const summary = problems.length === 1 ? problems[0] : `[${problems.join(', ')}]`;
    throw failure(422, 'Invalid', `ListOptions.meta.k8s.io "" is invalid: ${summary}`);
  }
}

async function waitForRevision(store: ObjectStore, wanted: number): Promise<boolean> {
  if (store.revision() >= wanted) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), FRESHNESS_WAIT_MS);
    const unsubscribe = store.subscribe(() => {
      if (store.revision() >= wanted) finish(true);
    });
    function finish(result: boolean) {
      clearTimeout(timer);
      unsubscribe();
      resolve(result);
    }
  });
}

/** Validates the request and, once it can be served, streams it onto `response` (200 and chunks). */
export async function serveWatch(options: WatchOptions, response: ServerResponse): Promise<void> {
  const { store, type, namespace, query } = options;
  const matches = selectorsOf(type, query);
  checkInitialEventsOptions(query);
  const sendInitial = isTrue(query.sendInitialEvents);
  const requested = query.resourceVersion ? parseResourceVersion(query.resourceVersion) : 0;
  if (requested > store.revision() && !(await waitForRevision(store, requested))) {
    throw tooLargeResourceVersion(requested, store.revision());
  }
  const fromNow = requested === 0 || sendInitial;

  response.writeHead(200, {
    'content-type': 'application/json',
    'cache-control': 'no-cache, private',
    'audit-id': randomUUID(),
  });
  response.flushHeaders();
  let stalled = false;
  const send = (eventType: EventType, object: KubeObject | KubeStatus) => {
    if (!stalled && !response.writableEnded)
      response.write(`${JSON.stringify({ type: eventType, object })}\n`);
  };
  const bookmark = (annotations?: Record<string, string>) =>
    send('BOOKMARK', {
      kind: type.kind,
      apiVersion: type.apiVersion,
      metadata: {
        resourceVersion: String(store.revision()),
        creationTimestamp: null,
        ...(annotations ? { annotations } : {}),
      },
      ...structuredClone(type.bookmarkBody),
    });

  const inScope = (change: Change) =>
    change.resource === type.plural &&
    (namespace === undefined || change.object.metadata.namespace === namespace);
  // A change that moves an object into or out of the selection is an ADDED or DELETED for this watch.
  const deliver = (change: Change) => {
    if (!inScope(change)) return;
    const before = change.previous !== undefined && matches(change.previous);
    const after = change.type !== 'DELETED' && matches(change.object);
    if (before && after) send('MODIFIED', change.object);
    else if (after) send('ADDED', change.object);
    else if (before) send('DELETED', change.object);
  };

  const backlog = fromNow ? [] : store.changesAfter(requested);
  if (backlog === undefined) {
    options.watchStats.expired += 1;
    send('ERROR', expired(`too old resource version: ${requested} (${store.floor()})`).status);
    response.end();
    return;
  }
  if (fromNow) {
    for (const object of store.list(type.plural, namespace).filter(matches)) send('ADDED', object);
    if (sendInitial) bookmark({ 'k8s.io/initial-events-end': 'true' });
  }
  for (const change of backlog) deliver(change);
  const unsubscribe = store.subscribe(deliver);

  const timers: NodeJS.Timeout[] = [];
  if (isTrue(query.allowWatchBookmarks))
    timers.push(setInterval(() => bookmark(), options.bookmarkIntervalMs()));
  const timeoutSeconds = Number(query.timeoutSeconds ?? 0);
  if (timeoutSeconds > 0) timers.push(setTimeout(() => response.end(), timeoutSeconds * 1000));

  const connection: WatchConnection = {
    drop: (mode) => (mode === 'reset' ? response.socket?.destroy() : response.end()),
    stall: () => {
      stalled = true;
    },
    stalled: () => stalled,
  };
  options.connections.add(connection);
  response.once('close', () => {
    unsubscribe();
    for (const timer of timers) clearTimeout(timer);
    options.connections.delete(connection);
  });
}
