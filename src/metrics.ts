import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  keysIssued: Counter<'provider'>;
  keysRevoked: Counter<'reason'>;
  revokeLatency: Histogram<'reason'>;
  hostRequests: Counter<'provider' | 'status'>;
  revokeFailures: Counter<'provider'>;
  hostQueueDepth: Gauge<'provider' | 'credential'>;
  hostQueueWait: Histogram<'provider' | 'credential'>;
  hostQueueRejections: Counter<'provider' | 'credential'>;
  hostRateLimitPauses: Counter<'provider' | 'credential'>;
  auditChainBroken: Gauge<'check'>;
  auditBadEvents: Gauge<'check'>;
}

/** The life of keys: issued, revoked and how long revokes took, and the HTTP requests that asked for them. */
function keyMetrics(registry: Registry) {
  return {
    httpRequests: new Counter({
      name: 'deploykey_http_requests_total',
      help: 'HTTP requests served, by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    keysIssued: new Counter({
      name: 'deploykey_keys_issued_total',
      help: 'Deploy keys issued',
      labelNames: ['provider'],
      registers: [registry],
    }),
    keysRevoked: new Counter({
      name: 'deploykey_keys_revoked_total',
      help: 'Deploy keys revoked, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    revokeLatency: new Histogram({
      name: 'deploykey_revoke_latency_seconds',
      help: 'Seconds from the revoke trigger (expiry or request) to the key being revoked',
      labelNames: ['reason'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    revokeFailures: new Counter({
      name: 'deploykey_revoke_failures_total',
      help: 'Revoke attempts that failed and will be retried',
      labelNames: ['provider'],
      registers: [registry],
    }),
  };
}

/** What the Git hosts were asked and how their write budgets hold up. */
function hostMetrics(registry: Registry) {
  return {
    hostRequests: new Counter({
      name: 'deploykey_host_requests_total',
      help: 'Requests to Git host APIs, by provider and status',
      labelNames: ['provider', 'status'],
      registers: [registry],
    }),
    hostQueueDepth: new Gauge({
      name: 'deploykey_host_queue_depth',
      help: 'Writes waiting for their turn within a Git host budget',
      labelNames: ['provider', 'credential'],
      registers: [registry],
    }),
    hostQueueWait: new Histogram({
      name: 'deploykey_host_queue_wait_seconds',
      help: 'Seconds a write waited for its turn within a Git host budget',
      labelNames: ['provider', 'credential'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    }),
    hostQueueRejections: new Counter({
      name: 'deploykey_host_queue_rejections_total',
      help: 'Writes refused with a retry time because their turn would come too late',
      labelNames: ['provider', 'credential'],
      registers: [registry],
    }),
    hostRateLimitPauses: new Counter({
      name: 'deploykey_host_rate_limit_pauses_total',
      help: 'Times a Git host asked us to wait (retry-after or an exhausted rate limit)',
      labelNames: ['provider', 'credential'],
      registers: [registry],
    }),
  };
}

/** The audit chain's last verdicts, for alerts. */
function auditMetrics(registry: Registry) {
  return {
    auditChainBroken: new Gauge({
      name: 'deploykey_audit_chain_broken',
      help:
        'Whether the last check of the audit chain in this process found it broken (1) or intact (0): ' +
        'check="full" is a whole verification, check="tail" the checkpointer\'s, since the last checkpoint',
      labelNames: ['check'],
      registers: [registry],
    }),
    auditBadEvents: new Gauge({
      name: 'deploykey_audit_chain_bad_events',
      help: 'Bad events the last check of the audit chain in this process found',
      labelNames: ['check'],
      registers: [registry],
    }),
  };
}

/** A registry per container, so tests and several services in one process never share counters. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'deploykey_' });
  return { registry, ...keyMetrics(registry), ...hostMetrics(registry), ...auditMetrics(registry) };
}

/**
 * Records a check's verdict on the audit chain, so a broken chain raises an alert. The two checks
 * cover different spans, so neither clears the other's verdict.
 */
export function recordChainVerdict(metrics: Metrics, check: 'full' | 'tail', badEventCount: number): void {
  metrics.auditChainBroken.set({ check }, badEventCount > 0 ? 1 : 0);
  metrics.auditBadEvents.set({ check }, badEventCount);
}

/** The key and revoke-queue gauges, read from Postgres and Redis at scrape time. */
export function registerKeyGauges(
  metrics: Metrics,
  sources: {
    keys: { countActive(): Promise<number>; countOverdue(now: Date): Promise<number> };
    revokeQueue: { depth(): Promise<Record<string, number>> };
    clock: () => Date;
  },
): void {
  const { keys, revokeQueue, clock } = sources;
  registerCollectedGauge(metrics, 'deploykey_keys_active', 'Keys currently active', () => keys.countActive());
  registerCollectedGauge(metrics, 'deploykey_keys_overdue', 'Keys past expiry and not yet revoked', () =>
    keys.countOverdue(clock()),
  );
  registerCollectedGauge(
    metrics,
    'deploykey_revoke_queue_depth',
    'Revoke jobs waiting, delayed or failed',
    async () => {
      const counts = await revokeQueue.depth().catch(() => ({}));
      return Object.values(counts).reduce((sum, n) => sum + n, 0);
    },
  );
}

/** A gauge whose value is read from the source of truth at scrape time. */
export function registerCollectedGauge(
  metrics: Metrics,
  name: string,
  help: string,
  read: () => Promise<number>,
): Gauge {
  return new Gauge({
    name,
    help,
    registers: [metrics.registry],
    async collect() {
      // A store that cannot answer keeps the last value: one failing gauge must not fail the scrape.
      try {
        this.set(await read());
      } catch {}
    },
  });
}

type BudgetReader = { labels: { provider: string; credential: string }; read: () => Promise<number> };
const budgetReaders = new WeakMap<Registry, Map<string, BudgetReader>>();

/**
 * Shows the writes left in one host credential's budget (`deploykey_host_budget_left`), read from
 * its scheduler at scrape time. The label is the credential's configured name, never its secret.
 */
export function watchHostBudget(
  metrics: Metrics,
  labels: BudgetReader['labels'],
  read: () => Promise<number>,
) {
  let readers = budgetReaders.get(metrics.registry);
  if (!readers) {
    const all = new Map<string, BudgetReader>();
    readers = all;
    budgetReaders.set(metrics.registry, all);
    new Gauge({
      name: 'deploykey_host_budget_left',
      help: 'Writes a host credential can still take before one is refused, in every process sharing its budget',
      labelNames: ['provider', 'credential'],
      registers: [metrics.registry],
      async collect() {
        for (const reader of all.values()) {
          // A budget Redis cannot answer for keeps its last value: one must not fail the scrape.
          try {
            this.set(reader.labels, await reader.read());
          } catch {}
        }
      },
    });
  }
  readers.set(`${labels.provider}\u0000${labels.credential}`, { labels, read });
}
