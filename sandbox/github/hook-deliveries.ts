// How the GitHub stand-in delivers one event to one hook, as GitHub does: the JSON (or form) body,
// the X-GitHub-* headers, X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the hook's secret)
// and X-Hub-Signature (SHA-1, still sent when a secret is set), one recorded delivery per attempt,
// and redelivery with the same GUID.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { type DeliveryAttempt, postWebhook, type WebhookDispatcher } from '../shared/webhook-dispatcher.ts';
import { githubTime } from './responses.ts';

export interface GithubHook {
  id: number;
  scope:
    | { kind: 'repository'; repositoryId: number; path: string }
    | { kind: 'organization'; login: string; id: number };
  active: boolean;
  events: string[];
  config: { url: string; content_type: 'json' | 'form'; secret?: string; insecure_ssl: string };
  createdAt: Date;
  updatedAt: Date;
  lastResponse: { code: number | null; status: string | null; message: string | null };
}

export interface DeliveryRecord {
  id: number;
  guid: string;
  hookId: number;
  event: string;
  action: string | null;
  repositoryId: number | null;
  redelivery: boolean;
  payload: Record<string, unknown>;
  deliveredAt: Date;
  attempt: DeliveryAttempt | null;
}

// GitHub gives up on a receiver after 10 seconds and records the delivery as failed.
const TIMEOUT_MS = 10_000;
const USER_AGENT = `GitHub-Hookshot/${randomBytes(4).toString('hex').slice(0, 7)}`;

const sign = (algorithm: 'sha1' | 'sha256', secret: string, body: string) =>
  `${algorithm}=${createHmac(algorithm, secret).update(body).digest('hex')}`;

function encode(hook: GithubHook, payload: unknown): { body: string; contentType: string } {
  const json = JSON.stringify(payload);
  if (hook.config.content_type === 'json') return { body: json, contentType: 'application/json' };
  return { body: `payload=${encodeURIComponent(json)}`, contentType: 'application/x-www-form-urlencoded' };
}

function headersFor(hook: GithubHook, record: DeliveryRecord, body: string, contentType: string) {
  const target =
    hook.scope.kind === 'repository'
      ? { type: 'repository', id: hook.scope.repositoryId }
      : { type: 'organization', id: hook.scope.id };
  const headers: Record<string, string> = {
    Accept: '*/*',
    'Content-Type': contentType,
    'User-Agent': USER_AGENT,
    'X-GitHub-Delivery': record.guid,
    'X-GitHub-Event': record.event,
    'X-GitHub-Hook-ID': String(hook.id),
    'X-GitHub-Hook-Installation-Target-ID': String(target.id),
    'X-GitHub-Hook-Installation-Target-Type': target.type,
  };
  if (hook.config.secret) {
    headers['X-Hub-Signature'] = sign('sha1', hook.config.secret, body);
    headers['X-Hub-Signature-256'] = sign('sha256', hook.config.secret, body);
  }
  return headers;
}

/** GitHub's words for an attempt's outcome in the deliveries API and the hook's `last_response`. */
export function outcomeOf(attempt: DeliveryAttempt | null): { code: number; status: string } {
  if (attempt === null) return { code: 0, status: 'failed to connect to host' };
  if (attempt.statusCode === null) {
    return { code: 0, status: attempt.error === 'timed out' ? 'timed out' : 'failed to connect to host' };
  }
  const ok = attempt.statusCode >= 200 && attempt.statusCode < 300;
  return { code: attempt.statusCode, status: ok ? 'OK' : `Invalid HTTP Response: ${attempt.statusCode}` };
}

export interface GithubDeliverer {
  deliver(
    hook: GithubHook,
    event: string,
    payload: Record<string, unknown>,
    repositoryId: number | null,
  ): void;
  redeliver(hook: GithubHook, original: DeliveryRecord): void;
  list(hookId: number): DeliveryRecord[];
  get(hookId: number, deliveryId: number): DeliveryRecord | undefined;
}

export function createGithubDeliverer(dispatcher: WebhookDispatcher): GithubDeliverer {
  const records: DeliveryRecord[] = [];
  let nextId = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);

  const enqueue = (hook: GithubHook, template: Omit<DeliveryRecord, 'id' | 'attempt' | 'deliveredAt'>) => {
    const { body, contentType } = encode(hook, template.payload);
    const newRecord = () => {
      const record: DeliveryRecord = { ...template, id: nextId++, deliveredAt: new Date(), attempt: null };
      records.push(record);
      return record;
    };
    const remember = (attempt: DeliveryAttempt | null) => {
      const { code, status } = outcomeOf(attempt);
      hook.lastResponse = { code, status: 'active', message: status };
    };
    dispatcher.enqueue({
      async send() {
        const record = newRecord();
        record.attempt = await postWebhook(
          hook.config.url,
          headersFor(hook, record, body, contentType),
          body,
          TIMEOUT_MS,
        );
        remember(record.attempt);
      },
      lose() {
        remember(null);
        newRecord();
      },
    });
  };

  return {
    deliver(hook, event, payload, repositoryId) {
      const action = typeof payload.action === 'string' ? payload.action : null;
      enqueue(hook, {
        guid: randomUUID(),
        hookId: hook.id,
        event,
        action,
        repositoryId,
        redelivery: false,
        payload,
      });
    },
    redeliver(hook, original) {
      const { id: _id, attempt: _attempt, deliveredAt: _at, ...template } = original;
      enqueue(hook, { ...template, redelivery: true });
    },
    list: (hookId) => records.filter((record) => record.hookId === hookId).reverse(),
    get: (hookId, deliveryId) =>
      records.find((record) => record.hookId === hookId && record.id === deliveryId),
  };
}

/** A delivery as `GET …/hooks/{id}/deliveries` lists it. */
export function deliveryItemBody(record: DeliveryRecord) {
  const { code, status } = outcomeOf(record.attempt);
  return {
    id: record.id,
    guid: record.guid,
    delivered_at: githubTime(record.deliveredAt),
    redelivery: record.redelivery,
    duration: (record.attempt?.durationMs ?? 0) / 1000,
    status,
    status_code: code,
    event: record.event,
    action: record.action,
    installation_id: null,
    repository_id: record.repositoryId,
    throttled_at: null,
  };
}

/** One delivery with its request and response, as `GET …/deliveries/{delivery_id}` shows it. */
export function deliveryBody(record: DeliveryRecord) {
  const attempt = record.attempt;
  return {
    ...deliveryItemBody(record),
    url: attempt?.url ?? '',
    request: { headers: attempt?.requestHeaders ?? null, payload: record.payload },
    response: { headers: attempt?.responseHeaders ?? null, payload: attempt?.responseBody ?? null },
  };
}
