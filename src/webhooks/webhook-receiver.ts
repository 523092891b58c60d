// One webhook delivery from start to end: the host must be known and have a secret, the signature
// or token must match, the delivery id must be new, and only then may the named job's keys be
// ended. Every refusal is audited; nothing here can issue a key or touch another repository's.
import { timingSafeEqual } from 'node:crypto';
import { Webhooks } from '@octokit/webhooks';
import type { Clock } from '../time.ts';
import type { DeliveryLog } from './delivery-log.ts';
import { type EndedEvent, githubJobEnd, gitlabJobEnd, type JobEnd, type NotEnded } from './job-end.ts';
import type { WebhookSecrets } from './webhook-secrets.ts';

export type Platform = 'github' | 'gitlab';
export type DeliveryOutcome =
  | 'ended'
  | 'no-keys'
  | 'duplicate'
  | 'ignored'
  | 'malformed'
  | 'rejected'
  | 'unknown-host';

export interface Delivery {
  platform: Platform;
  hostId: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody: string;
}

export interface DeliveryAnswer {
  status: 200 | 204 | 400 | 401 | 404;
  outcome: DeliveryOutcome;
  event: string;
  revoked?: number;
  detail?: string;
}

export interface WebhookReceiverDeps {
  clock: Clock;
  /** Configured host id → its platform; undefined for hosts not configured. */
  hostType: (hostId: string) => Platform | undefined;
  secrets: WebhookSecrets;
  deliveries: DeliveryLog;
  /** Requests revocation of every live key bound to `end`; returns how many there were. */
  endBoundKeys: (end: JobEnd, actor: string, details: Record<string, unknown>) => Promise<number>;
  recordEvent: (event: {
    actor: string;
    action: string;
    provider?: string;
    details: Record<string, unknown>;
  }) => Promise<void>;
  countDelivery: (platform: Platform, event: string, outcome: DeliveryOutcome) => void;
}

const header = (headers: Delivery['headers'], name: string): string | undefined => {
  const value = headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && text.length > 0 && text.length <= 256 ? text : undefined;
};
const EVENT_NAME = /^[A-Za-z _-]{1,64}$/;
const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;

async function githubSignatureMatches(secrets: string[], body: string, signature: string | undefined) {
  if (!signature) return false;
  for (const secret of secrets) {
    if (await new Webhooks({ secret }).verify(body, signature).catch(() => false)) return true;
  }
  return false;
}

function gitlabTokenMatches(secrets: string[], token: string | undefined) {
  if (!token) return false;
  const given = Buffer.from(token);
  // Every secret is compared, so the time taken says nothing about which one (if any) matched.
  return secrets
    .map((secret) => Buffer.from(secret))
    .map((expected) => expected.length === given.length && timingSafeEqual(expected, given))
    .some(Boolean);
}

function parseJson(rawBody: string): unknown {
  try {
    return JSON.parse(rawBody);
  } catch {
    return undefined;
  }
}

/** The event's name, its delivery id, and what its payload says ended (or why it says nothing). */
function readEvent(delivery: Delivery): {
  event: string;
  /** Undefined when the delivery carries no id of the expected shape. */
  deliveryId: string | undefined;
  parsed: EndedEvent | NotEnded;
} {
  const name = header(delivery.headers, delivery.platform === 'github' ? 'x-github-event' : 'x-gitlab-event');
  const event = name && EVENT_NAME.test(name) ? name : 'unknown';
  const id =
    delivery.platform === 'github'
      ? header(delivery.headers, 'x-github-delivery')
      : (header(delivery.headers, 'idempotency-key') ?? header(delivery.headers, 'x-gitlab-event-uuid'));
  const deliveryId = id && DELIVERY_ID.test(id) ? id : undefined;
  const body = parseJson(delivery.rawBody);
  const parsed =
    body === undefined
      ? { malformed: 'the body is not JSON' }
      : delivery.platform === 'github'
        ? githubJobEnd(delivery.hostId, event, body)
        : gitlabJobEnd(delivery.hostId, body);
  return { event, deliveryId, parsed };
}

export function createWebhookReceiver(deps: WebhookReceiverDeps) {
  const actorOf = (delivery: Delivery) => `webhook:${delivery.hostId}`;

  async function refuse(delivery: Delivery, event: string, reason: string): Promise<DeliveryAnswer> {
    await deps.recordEvent({
      actor: actorOf(delivery),
      action: 'webhook.rejected',
      provider: delivery.hostId,
      details: { reason, event, platform: delivery.platform },
    });
    return { status: 401, outcome: 'rejected', event, detail: reason };
  }

  async function authenticate(delivery: Delivery, event: string): Promise<DeliveryAnswer | undefined> {
    const secrets = deps.secrets(delivery.hostId);
    if (secrets.length === 0) return refuse(delivery, event, 'no webhook secret is configured for this host');
    const valid =
      delivery.platform === 'github'
        ? await githubSignatureMatches(
            secrets,
            delivery.rawBody,
            header(delivery.headers, 'x-hub-signature-256'),
          )
        : gitlabTokenMatches(secrets, header(delivery.headers, 'x-gitlab-token'));
    return valid ? undefined : refuse(delivery, event, 'the signature does not match');
  }

  async function act(delivery: Delivery, event: string, deliveryId: string, ended: EndedEvent) {
    const claimed = await deps.deliveries.claim(delivery.hostId, deliveryId, event, deps.clock());
    if (!claimed) return { status: 200, outcome: 'duplicate', event } as const;
    try {
      const { end, ...facts } = ended;
      const revoked = await deps.endBoundKeys(end, actorOf(delivery), { ...facts, deliveryId, event });
      const outcome = revoked > 0 ? 'ended' : 'no-keys';
      await deps.deliveries.settle(delivery.hostId, deliveryId, outcome);
      return { status: 200, outcome, event, revoked } as const;
    } catch (error) {
      // Not acted on: the platform's retry (or a redelivery) must be able to try again.
      await deps.deliveries.release(delivery.hostId, deliveryId);
      throw error;
    }
  }

  async function handle(delivery: Delivery): Promise<DeliveryAnswer> {
    if (deps.hostType(delivery.hostId) !== delivery.platform) {
      return { status: 404, outcome: 'unknown-host', event: 'unknown' };
    }
    const { event, deliveryId, parsed } = readEvent(delivery);
    const refused = await authenticate(delivery, event);
    if (refused) return refused;
    if ('ignored' in parsed) return { status: 204, outcome: 'ignored', event };
    if ('malformed' in parsed) return { status: 400, outcome: 'malformed', event, detail: parsed.malformed };
    if (!deliveryId)
      return { status: 400, outcome: 'malformed', event, detail: 'the delivery id header is missing' };
    return act(delivery, event, deliveryId, parsed);
  }

  return {
    async receive(delivery: Delivery): Promise<DeliveryAnswer> {
      const answer = await handle(delivery);
      deps.countDelivery(delivery.platform, answer.event, answer.outcome);
      return answer;
    },
  };
}

export type WebhookReceiver = ReturnType<typeof createWebhookReceiver>;
