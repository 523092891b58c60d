// The webhook receiver as the service runs it: secrets from the environment, deliveries logged in
// Postgres, refusals audited, and a counter of deliveries by event and outcome on /metrics.
import { Counter, type Registry } from 'prom-client';
import type { Db } from '../db/database.ts';
import type { Clock } from '../time.ts';
import { createDeliveryLog } from './delivery-log.ts';
import type { JobEnd } from './job-end.ts';
import { createWebhookReceiver, type Platform, type WebhookReceiverDeps } from './webhook-receiver.ts';
import { webhookSecretsFromEnv } from './webhook-secrets.ts';

const CI_PLATFORMS: Platform[] = ['github', 'gitlab'];

export interface WebhookWiring {
  hosts: readonly { id: string; type: string }[];
  env: NodeJS.ProcessEnv;
  clock: Clock;
  db: Db;
  registry: Registry;
  recordEvent: WebhookReceiverDeps['recordEvent'];
  endBoundKeys: (end: JobEnd, actor: string, details: Record<string, unknown>) => Promise<number>;
}

export function createWebhooks(wiring: WebhookWiring) {
  const deliveries = new Counter({
    name: 'deploykey_webhook_deliveries_total',
    help: 'Webhook deliveries received, by platform, event and outcome',
    labelNames: ['platform', 'event', 'outcome'],
    registers: [wiring.registry],
  });
  // Gitea and Forgejo run no CI of their own that announces job ends, so only these answer.
  const ciHosts = wiring.hosts.filter((host): host is { id: string; type: Platform } =>
    CI_PLATFORMS.includes(host.type as Platform),
  );
  const types = new Map(ciHosts.map((host) => [host.id, host.type]));
  return createWebhookReceiver({
    clock: wiring.clock,
    hostType: (hostId) => types.get(hostId),
    secrets: webhookSecretsFromEnv(
      ciHosts.map((host) => host.id),
      wiring.env,
      wiring.clock,
    ),
    deliveries: createDeliveryLog(wiring.db.pool),
    endBoundKeys: wiring.endBoundKeys,
    recordEvent: wiring.recordEvent,
    countDelivery: (platform, event, outcome) => deliveries.inc({ platform, event, outcome }),
  });
}
