// Fault injection shared by every HTTP stand-in, driven through `/_sandbox/faults` so tests and
// benchmarks can make a host or Vault slow, failing or unreachable for a while.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface FaultRule {
  /** Answer with this status instead of serving the request. */
  status?: number;
  /** Body for `status`; defaults to the stand-in's own error shape via `errorBody`. */
  body?: unknown;
  /** Extra response headers for `status` (e.g. `retry-after`). */
  headers?: Record<string, string>;
  /** Delay before handling (or failing) the request. */
  latencyMs?: number;
  /** Destroy the socket without answering. */
  drop?: boolean;
  /** Only requests whose method matches (e.g. `POST`). */
  method?: string;
  /** Only requests whose path starts with this. */
  pathPrefix?: string;
  /** How many matching requests this applies to; omitted = until cleared. */
  count?: number;
  /** Fraction of matching requests affected (0..1); default 1. */
  probability?: number;
}

export interface FaultStats {
  /** Requests served normally or failed, by status code (faults included). */
  byStatus: Record<string, number>;
  injected: number;
  total: number;
}

export interface FaultInjector {
  add(rule: FaultRule): void;
  clear(): void;
  stats(): FaultStats;
}

const ADMIN_PREFIX = '/_sandbox/';

export function registerFaults(app: FastifyInstance, errorBody: (status: number) => unknown): FaultInjector {
  let rules: FaultRule[] = [];
  let stats: FaultStats = { byStatus: {}, injected: 0, total: 0 };

  const matches = (rule: FaultRule, request: FastifyRequest) =>
    (!rule.method || rule.method.toUpperCase() === request.method) &&
    (!rule.pathPrefix || request.url.startsWith(rule.pathPrefix)) &&
    (rule.probability === undefined || Math.random() < rule.probability);

  const take = (request: FastifyRequest): FaultRule | undefined => {
    const rule = rules.find((candidate) => matches(candidate, request));
    if (rule?.count !== undefined) {
      rule.count -= 1;
      if (rule.count <= 0) rules = rules.filter((candidate) => candidate !== rule);
    }
    return rule;
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.url.startsWith(ADMIN_PREFIX)) return;
    stats.total += 1;
    const rule = take(request);
    if (!rule) return;
    stats.injected += 1;
    if (rule.latencyMs) await new Promise((resolve) => setTimeout(resolve, rule.latencyMs));
    if (rule.drop) {
      request.raw.socket.destroy();
      return reply.hijack();
    }
    if (rule.status) {
      return reply
        .code(rule.status)
        .headers(rule.headers ?? {})
        .send(rule.body ?? errorBody(rule.status));
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    if (request.url.startsWith(ADMIN_PREFIX)) return;
    const key = String(reply.statusCode);
    stats.byStatus[key] = (stats.byStatus[key] ?? 0) + 1;
  });

  const injector: FaultInjector = {
    add: (rule) => {
      rules.push({ ...rule });
    },
    clear: () => {
      rules = [];
    },
    stats: () => structuredClone(stats),
  };

  app.post(`${ADMIN_PREFIX}faults`, async (request, reply) => {
    const body = (request.body ?? {}) as FaultRule | FaultRule[];
    for (const rule of Array.isArray(body) ? body : [body]) injector.add(rule);
    return reply.code(204).send();
  });
  app.delete(`${ADMIN_PREFIX}faults`, async (_request, reply) => {
    injector.clear();
    return reply.code(204).send();
  });
  app.get(`${ADMIN_PREFIX}stats`, async () => injector.stats());
  app.delete(`${ADMIN_PREFIX}stats`, async (_request, reply) => {
    stats = { byStatus: {}, injected: 0, total: 0 };
    return reply.code(204).send();
  });

  return injector;
}
