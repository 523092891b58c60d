// The webhook receiver as the service runs it: secrets from the environment, deliveries logged in
// Postgres, refusals audited, and a counter of deliveries by event and outcome on /metrics.
import { Counter, type Registry } from 'prom-client';
import type { Db } from '../db/database.ts';
import type { Clock } from '../time.ts';
import { createDeliveryLog } from './delivery-log.ts';
import type { JobEnd } from './job-end.ts';
import { createWebhookReceiver, type Platform, type WebhookReceiverDeps } from './webhook-receiver.ts';
import { webhookSecretsFromEnv } from './webhook-secrets.ts';

export interface WebhookWiring {
  hosts: readonly { id: string; type: Platform }[];
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
  const types = new Map(wiring.hosts.map((host) => [host.id, host.type]));
  return createWebhookReceiver({
    clock: wiring.clock,
    hostType: (hostId) => types.get(hostId),
    secrets: webhookSecretsFromEnv(
      wiring.hosts.map((host) => host.id),
      wiring.env,
      wiring.clock,
    ),
    deliveries: createDeliveryLog(wiring.db.pool),
    endBoundKeys: wiring.endBoundKeys,
    recordEvent: wiring.recordEvent,
    countDelivery: (platform, event, outcome) => deliveries.inc({ platform, event, outcome }),
  });
}
