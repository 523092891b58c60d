// Callers under chaos: keys issued across both hosts and repositories with short TTLs, some jobs
// completed and some keys deleted early; errors are expected and retried the way a CI job would.
import { randomUUID } from 'node:crypto';
import { type Random, sleep } from './random.ts';

export const PROVIDERS = ['github', 'gitlab'] as const;
export const REPOSITORIES = ['acme/models', 'acme/datasets'] as const;
const DELIVERIES = ['vault', 'response', 'wrapped'] as const;
const RETRY_FOR_MS = 30_000;

export interface TrafficStats {
  issueRequests: number;
  issued: number;
  issueGaveUp: number;
  completes: number;
  deletes: number;
  byStatus: Record<string, number>;
  networkErrors: number;
}

export interface TrafficOptions {
  apiUrl: string;
  token: string;
  keys: number;
  durationMs: number;
  concurrency: number;
  random: Random;
  /** Private keys handed out in responses, for the scans. */
  privateKeys: string[];
  /** Every error body received (the first few thousand), for the scans. */
  errorBodies: string[];
}

const MAX_ERROR_BODIES = 5_000;

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field
  body: any;
}

export async function runTraffic(options: TrafficOptions): Promise<TrafficStats> {
  const { random } = options;
  const stats: TrafficStats = {
    issueRequests: 0,
    issued: 0,
    issueGaveUp: 0,
    completes: 0,
    deletes: 0,
    byStatus: {},
    networkErrors: 0,
  };
  const followUps: Promise<void>[] = [];

  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    try {
      const response = await fetch(`${options.apiUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      stats.byStatus[response.status] = (stats.byStatus[response.status] ?? 0) + 1;
      if (response.status >= 400 && options.errorBodies.length < MAX_ERROR_BODIES)
        options.errorBodies.push(text);
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      return { status: response.status, body: parsed } as Answer;
    } catch {
      stats.networkErrors += 1;
      return { status: 0, body: undefined } as Answer;
    }
  }

  // Retries what a careful client retries: no answer (the API is restarting), 5xx, 429 and
  // "still in progress", for as long as a CI job would wait.
  async function withRetries(send: () => Promise<Answer>): Promise<Answer> {
    const deadline = Date.now() + RETRY_FOR_MS;
    let answer: Answer = { status: 0, body: undefined };
    for (let attempt = 1; ; attempt += 1) {
      answer = await send();
      const retryable =
        answer.status === 0 ||
        answer.status >= 500 ||
        answer.status === 429 ||
        (answer.status === 409 && answer.body?.type?.endsWith?.('request-in-progress'));
      if (!retryable || Date.now() > deadline) return answer;
      await sleep(Math.min(2_000, 250 * attempt) + random.int(0, 250));
    }
  }

  async function issueOne(index: number) {
    const jobId = `chaos-${index}-${randomUUID().slice(0, 8)}`;
    const provider = random.pick(PROVIDERS);
    const repository = random.pick(REPOSITORIES);
    const ttlSeconds = random.int(2, 20);
    const delivery = random.pick(DELIVERIES);
    const afterwards = random.next();
    const waitMs = random.int(200, 3_000);
    const idempotencyKey = randomUUID();
    const answer = await withRetries(() => {
      stats.issueRequests += 1;
      return call(
        'POST',
        '/v1/keys',
        { provider, repository, jobId, ttlSeconds, delivery },
        { 'idempotency-key': idempotencyKey },
      );
    });
    if (answer.status !== 201 && answer.status !== 200) {
      stats.issueGaveUp += 1;
      return;
    }
    stats.issued += 1;
    if (typeof answer.body?.privateKey === 'string') options.privateKeys.push(answer.body.privateKey);
    const keyId: string | undefined = answer.body?.id;
    if (afterwards < 0.3) {
      followUps.push(
        sleep(waitMs).then(async () => {
          stats.completes += 1;
          await withRetries(() => call('POST', `/v1/jobs/${encodeURIComponent(jobId)}/complete`));
        }),
      );
    } else if (afterwards < 0.5 && keyId) {
      followUps.push(
        sleep(waitMs).then(async () => {
          stats.deletes += 1;
          await withRetries(() => call('DELETE', `/v1/keys/${keyId}`));
        }),
      );
    }
  }

  const started = Date.now();
  const gapMs = (options.durationMs * options.concurrency) / options.keys;
  let nextIndex = 0;
  const lanes = Array.from({ length: options.concurrency }, async () => {
    while (nextIndex < options.keys && Date.now() - started < options.durationMs * 2) {
      const index = nextIndex;
      nextIndex += 1;
      await issueOne(index);
      await sleep(random.int(0, Math.round(gapMs)));
    }
  });
  await Promise.all(lanes);
  await Promise.all(followUps);
  return stats;
}
