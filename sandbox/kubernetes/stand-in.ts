// Local stand-in for the Kubernetes API server: batch/v1 Jobs, v1 Pods and Events and
// coordination.k8s.io/v1 Leases with list/watch, a simulated Job controller and kubelet, and
// `/_sandbox` controls. Held to the real API so that `@kubernetes/client-node` and kubectl work
// against it unchanged; see sandbox/README.md for what it covers and what it leaves out.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import { forbiddenFor, registerApiRoutes } from './api-routes.ts';
import { type Cluster, type ClusterSettings, createCluster } from './cluster.ts';
import { registerDiscovery } from './discovery.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { NODE_NAME } from './kubelet.ts';
import { kubeTime, type Pod } from './objects.ts';
import { resourceTypeOf } from './resources.ts';
import {
  dropWatches,
  type PodTokenRequest,
  registerSandboxRoutes,
  stallWatches,
  type WatchDropMode,
} from './sandbox-routes.ts';
import { badRequest, failure, faultStatus, KubeApiError, pathNotFound, unauthorized } from './status.ts';
import { createServingCertificate, TLS_SERVER_NAME } from './tls.ts';
import type { WatchConnection, WatchStats } from './watch.ts';

export interface KubernetesStandInOptions {
  /** Bearer tokens the API accepts (the controller's). */
  tokens: string[];
  /** Signs a pod's projected service account token; the sandbox uses the OIDC stand-in's Kubernetes tokens. */
  mintServiceAccountToken(
    claims: Record<string, unknown>,
    options: { audience: string; expiresInSeconds: number },
  ): Promise<string>;
  /** Where the kubeconfig is written; a temporary directory of its own when omitted. */
  kubeconfigDir?: string;
  settings?: Partial<ClusterSettings>;
  now?: () => Date;
  port?: number;
}

export interface KubernetesStandIn {
  /** `https://127.0.0.1:<port>`; its certificate is `caPem`, issued to `tlsServerName`. */
  url: string;
  caPem: string;
  tlsServerName: string;
  kubeconfigPath: string;
  faults: FaultInjector;
  cluster: Cluster;
  podToken(
    namespace: string,
    pod: string,
    request?: PodTokenRequest,
  ): Promise<{ token: string; expirationTimestamp: string }>;
  /**
   * Ends every open watch (`reset` destroys the sockets, `close` ends the streams, `expire` also
   * makes every version handed out so far too old, so the resumed watch is answered 410); returns how many.
   */
  dropWatches(mode?: WatchDropMode): number;
  /**
   * Stalls every open watch: it stays connected but delivers nothing more (no event, no bookmark)
   * until it is dropped or its `timeoutSeconds` ends it; returns how many.
   */
  stallWatches(): number;
  openWatches(): number;
  /** How many watches were answered 410 Expired (a resourceVersion older than the change log). */
  expiredWatches(): number;
  close(): Promise<void>;
}

// The audience of a pod's default projected token: the API server's own.
export const API_SERVER_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';
const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);
const BEARER = /^Bearer\s+(\S+)\s*$/i;

export async function startKubernetesStandIn(options: KubernetesStandInOptions): Promise<KubernetesStandIn> {
  const now = options.now ?? (() => new Date());
  const tokens = new Set(options.tokens);
  const cluster = createCluster({ now, ...(options.settings ? { settings: options.settings } : {}) });
  const connections = new Set<WatchConnection>();
  const watchStats: WatchStats = { expired: 0 };
  const accountUids = new Map<string, string>();
  const nodeUid = randomUUID();
  const certificate = createServingCertificate();
  const app = Fastify({
    logger: false,
    forceCloseConnections: true,
    https: { key: certificate.keyPem, cert: certificate.certPem },
  });

  const faults = registerFaults(app, faultStatus);
  app.removeAllContentTypeParsers();
  // The API reads bodies by their media type itself; the sandbox controls take JSON.
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    if (!request.url.startsWith('/_sandbox/') || body === '') return done(null, body);
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(badRequest('the body must be JSON'), undefined);
    }
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof KubeApiError) return reply.code(error.status.code ?? 500).send(error.status);
    if (error instanceof SyntaxError) return reply.code(400).send(badRequest(error.message).status);
    const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
    const body =
      status === 500
        ? failure(500, 'InternalError', 'Internal error occurred: the sandbox failed to serve the request')
        : failure(status, 'BadRequest', error.message);
    return reply.code(status).send(body.status);
  });
  // The API server labels JSON as plain `application/json`; client-go decodes Status bodies only then.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) {
      reply.header('content-type', 'application/json');
    }
    return payload;
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send(pathNotFound().status));

  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/_sandbox/')) return;
    const header = request.headers.authorization;
    if (header !== undefined) {
      const token = BEARER.exec(header)?.[1];
      if (token === undefined || !tokens.has(token)) return reply.code(401).send(unauthorized().status);
      return;
    }
    const url = new URL(request.url, 'http://localhost');
    if (PUBLIC_PATHS.has(url.pathname)) return;
    const forbidden = forbiddenFor(request.method, url, Object.fromEntries(url.searchParams));
    return reply.code(403).send(forbidden.status);
  });

  registerDiscovery(app);
  registerApiRoutes(app, {
    registry: cluster.registry,
    now,
    connections,
    watchStats,
    bookmarkIntervalMs: () => cluster.settings.bookmarkIntervalMs,
  });

  const podToken: KubernetesStandIn['podToken'] = async (namespace, name, request = {}) => {
    const pod = cluster.registry.get(resourceTypeOf('pods'), namespace, name) as Pod;
    const expiresInSeconds = request.expirationSeconds ?? 3607;
    if (expiresInSeconds < 600)
      throw badRequest(
        'spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes',
      );
    const account = pod.spec.serviceAccountName ?? 'default';
    const accountKey = `${namespace}/${account}`;
    if (!accountUids.has(accountKey)) accountUids.set(accountKey, randomUUID());
    const claims = {
      'kubernetes.io': {
        namespace,
        pod: { name, uid: pod.metadata.uid },
        serviceaccount: { name: account, uid: accountUids.get(accountKey) },
        node: { name: pod.spec.nodeName ?? NODE_NAME, uid: nodeUid },
      },
    };
    const token = await options.mintServiceAccountToken(claims, {
      audience: request.audience ?? API_SERVER_AUDIENCE,
      expiresInSeconds,
    });
    return { token, expirationTimestamp: kubeTime(new Date(now().getTime() + expiresInSeconds * 1000)) };
  };
  registerSandboxRoutes(app, { cluster, connections, watchStats, podToken });

  const url = await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const ownDir =
    options.kubeconfigDir === undefined ? await mkdtemp(join(tmpdir(), 'kube-sandbox-')) : undefined;
  const kubeconfigDir = options.kubeconfigDir ?? ownDir!;
  const kubeconfigPath = await writeKubeconfig(
    kubeconfigDir,
    url,
    options.tokens[0] ?? '',
    certificate.certPem,
  );

  return {
    url,
    caPem: certificate.certPem,
    tlsServerName: TLS_SERVER_NAME,
    kubeconfigPath,
    faults,
    cluster,
    podToken,
    dropWatches: (mode = 'reset') => dropWatches(cluster, connections, mode),
    stallWatches: () => stallWatches(connections),
    openWatches: () => connections.size,
    expiredWatches: () => watchStats.expired,
    close: async () => {
      cluster.close();
      dropWatches(cluster, connections, 'reset');
      await app.close();
      if (ownDir) await rm(ownDir, { recursive: true, force: true });
    },
  };
}
