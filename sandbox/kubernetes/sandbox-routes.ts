// `/_sandbox/…`: shortcuts for tests, benchmarks and demos that a real cluster offers only through
// workloads and time — start a Job, end it or one of its pods, hand a pod its service account
// token, drop or stall every watch, compact the change log, tune the simulated cluster's timings.
import type { FastifyInstance } from 'fastify';
import type { Cluster, JobOutcome, QuickJob } from './cluster.ts';
import type { PodOutcome } from './kubelet.ts';
import { isRecord } from './objects.ts';
import { badRequest } from './status.ts';
import type { WatchConnection, WatchStats } from './watch.ts';

export interface PodTokenRequest {
  audience?: string;
  expirationSeconds?: number;
}

export type WatchDropMode = 'close' | 'reset' | 'expire';
const DROP_MODES: WatchDropMode[] = ['close', 'reset', 'expire'];

export interface SandboxRouteOptions {
  cluster: Cluster;
  connections: Set<WatchConnection>;
  watchStats: WatchStats;
  podToken(
    namespace: string,
    pod: string,
    request: PodTokenRequest,
  ): Promise<{ token: string; expirationTimestamp: string }>;
}

type Params = { namespace: string; name: string };

const bodyOf = (body: unknown): Record<string, unknown> => {
  if (body === undefined || body === null || body === '') return {};
  const parsed = typeof body === 'string' ? JSON.parse(body) : body;
  if (!isRecord(parsed)) throw badRequest('the body must be a JSON object');
  return parsed;
};

/**
 * Ends every open watch. `expire` forgets the change log first and then ends the streams, so a
 * client resuming from its last resourceVersion is answered the way the API server answers a
 * version it no longer holds: an ERROR event carrying a 410 Expired Status in a 200 stream.
 */
export function dropWatches(
  cluster: Cluster,
  connections: Set<WatchConnection>,
  mode: WatchDropMode,
): number {
  if (mode === 'expire') cluster.store.compact();
  const open = [...connections];
  for (const connection of open) connection.drop(mode === 'reset' ? 'reset' : 'close');
  return open.length;
}

/** Stalls every open watch (see WatchConnection.stall); returns how many were not stalled yet. */
export function stallWatches(connections: Set<WatchConnection>): number {
  const open = [...connections].filter((connection) => !connection.stalled());
  for (const connection of open) connection.stall();
  return open.length;
}

export function registerSandboxRoutes(app: FastifyInstance, options: SandboxRouteOptions): void {
  const { cluster, connections } = options;

  app.post('/_sandbox/jobs', async (request, reply) =>
    reply.code(201).send(cluster.createJob(bodyOf(request.body) as QuickJob)),
  );

  app.post<{ Params: Params }>('/_sandbox/namespaces/:namespace/jobs/:name/end', async (request) => {
    const { outcome } = bodyOf(request.body);
    return cluster.endJob(request.params.namespace, request.params.name, String(outcome) as JobOutcome);
  });

  app.post<{ Params: Params }>('/_sandbox/namespaces/:namespace/pods/:name/end', async (request) => {
    const { outcome, exitCode } = bodyOf(request.body);
    if (exitCode !== undefined && !Number.isInteger(exitCode))
      throw badRequest('exitCode must be an integer');
    return cluster.endPod(
      request.params.namespace,
      request.params.name,
      String(outcome) as PodOutcome,
      exitCode as number | undefined,
    );
  });

  app.post<{ Params: Params }>('/_sandbox/namespaces/:namespace/pods/:name/token', async (request) => {
    const { audience, expirationSeconds } = bodyOf(request.body);
    if (audience !== undefined && typeof audience !== 'string') throw badRequest('audience must be a string');
    if (expirationSeconds !== undefined && !Number.isInteger(expirationSeconds)) {
      throw badRequest('expirationSeconds must be an integer');
    }
    return options.podToken(request.params.namespace, request.params.name, {
      ...(audience === undefined ? {} : { audience }),
      ...(expirationSeconds === undefined ? {} : { expirationSeconds: expirationSeconds as number }),
    });
  });

  app.get('/_sandbox/watches', async () => ({
    open: connections.size,
    stalled: [...connections].filter((connection) => connection.stalled()).length,
    expired: options.watchStats.expired,
  }));
  app.post('/_sandbox/watches/stall', async () => ({ stalled: stallWatches(connections) }));
  app.delete<{ Querystring: { mode?: string } }>('/_sandbox/watches', async (request) => {
    const mode = (request.query.mode ?? 'reset') as WatchDropMode;
    if (!DROP_MODES.includes(mode)) throw badRequest('mode must be "close", "reset" or "expire"');
    return { dropped: dropWatches(cluster, connections, mode) };
  });

  app.post('/_sandbox/compact', async () => ({ compactedRevision: cluster.store.compact() }));

  app.get('/_sandbox/settings', async () => cluster.settings);
  app.put('/_sandbox/settings', async (request) => cluster.updateSettings(bodyOf(request.body)));
}
