// How the GitLab stand-in executes a webhook, following GitLab's WebHookService: the JSON body, the
// `X-Gitlab-*` headers, the secret token in `X-Gitlab-Token`, one hook log per request, and
// auto-disabling after four failures in a row. `Idempotency-Key` stays the same for every attempt
// at one event (a duplicate or a resend), while `X-Gitlab-Event-UUID` and `X-Gitlab-Webhook-UUID`
// are drawn again for each request, as WebHookService and its recursion detection do.
import { randomUUID } from 'node:crypto';
import { type DeliveryAttempt, postWebhook, type WebhookDispatcher } from '../shared/webhook-dispatcher.ts';

export const GITLAB_VERSION = '18.2.1';
const TIMEOUT_MS = 10_000;
const FAILURES_BEFORE_DISABLING = 4;
const FAILURES_BEFORE_PERMANENT = 40;
const MAX_BACKOFF_MS = 24 * 60 * 60 * 1000;

export interface GitlabHook {
  id: number;
  scope: { kind: 'project'; projectId: number } | { kind: 'group'; groupId: number; path: string };
  url: string;
  name: string;
  description: string;
  token: string | null;
  events: Record<string, boolean>;
  enableSslVerification: boolean;
  createdAt: Date;
  failures: number;
  disabledUntil: Date | null;
}

export interface HookLog {
  id: number;
  hookId: number;
  trigger: string;
  eventHeader: string;
  idempotencyKey: string;
  requestData: Record<string, unknown>;
  attempt: DeliveryAttempt | null;
}

export type AlertStatus = 'executable' | 'temporarily_disabled' | 'disabled';

export function alertStatus(hook: GitlabHook, now = new Date()): AlertStatus {
  if (hook.failures >= FAILURES_BEFORE_PERMANENT) return 'disabled';
  if (hook.disabledUntil && hook.disabledUntil.getTime() > now.getTime()) return 'temporarily_disabled';
  return 'executable';
}

// GitLab counts a 2xx or 3xx answer as success; anything else (or no answer) is a failure.
const succeeded = (attempt: DeliveryAttempt | null) =>
  attempt?.statusCode !== null && attempt?.statusCode !== undefined && attempt.statusCode < 400;

function recordOutcome(hook: GitlabHook, attempt: DeliveryAttempt | null) {
  if (succeeded(attempt)) {
    hook.failures = 0;
    hook.disabledUntil = null;
    return;
  }
  hook.failures += 1;
  if (hook.failures >= FAILURES_BEFORE_DISABLING) {
    // Disabled for a minute after the fourth failure, twice as long after each further one.
    const backoff = Math.min(60_000 * 2 ** (hook.failures - FAILURES_BEFORE_DISABLING), MAX_BACKOFF_MS);
    hook.disabledUntil = new Date(Date.now() + backoff);
  }
}

export function requestHeaders(origin: string, hook: GitlabHook, log: HookLog): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'User-Agent': `GitLab/${GITLAB_VERSION}`,
    'Idempotency-Key': log.idempotencyKey,
    'X-Gitlab-Event': log.eventHeader,
    'X-Gitlab-Webhook-UUID': randomUUID(),
    'X-Gitlab-Instance': origin,
    'X-Gitlab-Event-UUID': randomUUID(),
    ...(hook.token ? { 'X-Gitlab-Token': hook.token } : {}),
  };
}

export interface GitlabDeliverer {
  deliver(hook: GitlabHook, trigger: string, eventHeader: string, data: Record<string, unknown>): void;
  /** `POST …/hooks/:hook_id/events/:hook_event_id/resend`: sends the logged request again, now. */
  resend(hook: GitlabHook, log: HookLog): Promise<HookLog>;
  logs(hookId: number): HookLog[];
  log(hookId: number, logId: number): HookLog | undefined;
}

export function createGitlabDeliverer(dispatcher: WebhookDispatcher, origin: () => string): GitlabDeliverer {
  const logs: HookLog[] = [];
  let nextId = 1;

  const attempt = async (hook: GitlabHook, template: Omit<HookLog, 'id' | 'attempt'>) => {
    const log: HookLog = { ...template, id: nextId++, attempt: null };
    const body = JSON.stringify(log.requestData);
    log.attempt = await postWebhook(hook.url, requestHeaders(origin(), hook, log), body, TIMEOUT_MS);
    logs.push(log);
    recordOutcome(hook, log.attempt);
    return log;
  };

  return {
    deliver(hook, trigger, eventHeader, data) {
      const template = {
        hookId: hook.id,
        trigger,
        eventHeader,
        idempotencyKey: randomUUID(),
        requestData: data,
      };
      dispatcher.enqueue({
        // Like WebHookService#execute, a disabled hook is skipped when its turn comes, unlogged.
        send: async () => {
          if (alertStatus(hook) === 'executable') await attempt(hook, template);
        },
        lose() {
          const lost: HookLog = { ...template, id: nextId++, attempt: null };
          logs.push(lost);
          recordOutcome(hook, null);
        },
      });
    },
    resend: (hook, log) => {
      const { id: _id, attempt: _attempt, ...template } = log;
      return attempt(hook, template);
    },
    logs: (hookId) => logs.filter((log) => log.hookId === hookId).reverse(),
    log: (hookId, logId) => logs.find((log) => log.hookId === hookId && log.id === logId),
  };
}

/** A hook log as `GET /projects/:id/hooks/:hook_id/events` lists it (the token redacted). */
export function hookLogBody(hook: GitlabHook, log: HookLog) {
  const headers = log.attempt?.requestHeaders ?? {};
  return {
    id: log.id,
    url: hook.url,
    trigger: log.trigger,
    request_headers: headers['X-Gitlab-Token'] ? { ...headers, 'X-Gitlab-Token': '[REDACTED]' } : headers,
    request_data: log.requestData,
    response_headers: log.attempt?.responseHeaders ?? {},
    response_body: log.attempt?.responseBody ?? '',
    execution_duration: (log.attempt?.durationMs ?? 0) / 1000,
    // GitLab stores the status as text, and "internal error" when no HTTP answer came back.
    response_status: log.attempt?.statusCode ? String(log.attempt.statusCode) : 'internal error',
  };
}
