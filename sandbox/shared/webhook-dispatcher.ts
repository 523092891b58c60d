// Asynchronous, at-least-once webhook delivery shared by the GitHub and GitLab stand-ins, with the
// faults a receiver must survive: lost, duplicated, reordered and held deliveries. Neither host
// retries a failed delivery by itself (GitHub's docs say so; GitLab's WebHookService logs the failure
// and its worker does not retry), so a failure here is recorded once and left for redelivery.
import type { FastifyInstance } from 'fastify';

export interface DeliveryAttempt {
  url: string;
  requestHeaders: Record<string, string>;
  requestBody: string;
  deliveredAt: Date;
  durationMs: number;
  /** `null` when no HTTP answer came back (refused, reset, timed out, or dropped by a fault). */
  statusCode: number | null;
  responseHeaders: Record<string, string>;
  responseBody: string;
  error: string | null;
}

/** One event for one hook; `send` may run more than once (duplicates, redeliveries). */
export interface DeliveryJob {
  send(): Promise<void>;
  /** Records the delivery as failed without sending it (a `drop` fault). */
  lose(): void;
}

export interface DeliveryFaults {
  /** The next N deliveries are lost in transit and recorded as failed. */
  drop?: number;
  /** The next N deliveries are each sent twice. */
  duplicate?: number;
  /** The next N deliveries are held back and then sent newest first. */
  reverse?: number;
}

export interface WebhookDispatcher {
  enqueue(job: DeliveryJob): void;
  setFaults(faults: DeliveryFaults): void;
  clearFaults(): void;
  /** Holds every delivery until `release`. */
  hold(): void;
  release(order?: 'fifo' | 'reverse'): void;
  /** Resolves once nothing is queued or in flight (held deliveries do not count). */
  idle(): Promise<void>;
}

const RESPONSE_BODY_LIMIT = 8 * 1024;
const FAULT_NAMES = ['drop', 'duplicate', 'reverse'];

/** POSTs one webhook and reports what happened; never throws. */
export async function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<DeliveryAttempt> {
  const deliveredAt = new Date();
  const started = performance.now();
  const base = { url, requestHeaders: headers, requestBody: body, deliveredAt };
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const responseBody = (await response.text()).slice(0, RESPONSE_BODY_LIMIT);
    return {
      ...base,
      durationMs: performance.now() - started,
      statusCode: response.status,
      responseHeaders: Object.fromEntries(response.headers.entries()),
      responseBody,
      error: null,
    };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const timedOut = (error as Error).name === 'TimeoutError';
    return {
      ...base,
      durationMs: performance.now() - started,
      statusCode: null,
      responseHeaders: {},
      responseBody: '',
      error: timedOut ? 'timed out' : (cause ?? (error as Error).message),
    };
  }
}

export function createWebhookDispatcher(options: { concurrency?: number } = {}): WebhookDispatcher {
  const concurrency = options.concurrency ?? 4;
  const queue: Array<() => Promise<void>> = [];
  let held: DeliveryJob[] | null = null;
  let reversing: { remaining: number; batch: DeliveryJob[] } | null = null;
  let faults = { drop: 0, duplicate: 0 };
  let running = 0;
  let idleWaiters: Array<() => void> = [];

  const settleIfIdle = () => {
    if (running > 0 || queue.length > 0) return;
    for (const resolve of idleWaiters) resolve();
    idleWaiters = [];
  };

  const pump = () => {
    while (running < concurrency && queue.length > 0) {
      const task = queue.shift()!;
      running += 1;
      task()
        .catch(() => {})
        .finally(() => {
          running -= 1;
          pump();
          settleIfIdle();
        });
    }
    settleIfIdle();
  };

  // A batch released in one order is sent one at a time, so the receiver sees exactly that order.
  const sendInOrder = (jobs: DeliveryJob[]) => {
    queue.push(async () => {
      for (const job of jobs) await job.send();
    });
    pump();
  };

  const dispatch = (job: DeliveryJob) => {
    if (faults.drop > 0) {
      faults.drop -= 1;
      job.lose();
      return;
    }
    if (faults.duplicate > 0) {
      faults.duplicate -= 1;
      sendInOrder([job, job]);
      return;
    }
    queue.push(() => job.send());
    pump();
  };

  return {
    enqueue(job) {
      if (held) {
        held.push(job);
        return;
      }
      if (reversing) {
        reversing.batch.push(job);
        reversing.remaining -= 1;
        if (reversing.remaining <= 0) {
          const batch = reversing.batch.reverse();
          reversing = null;
          sendInOrder(batch);
        }
        return;
      }
      dispatch(job);
    },
    setFaults(next) {
      faults = { drop: next.drop ?? 0, duplicate: next.duplicate ?? 0 };
      reversing = next.reverse ? { remaining: next.reverse, batch: [] } : null;
    },
    clearFaults() {
      faults = { drop: 0, duplicate: 0 };
      const pending = reversing?.batch ?? [];
      reversing = null;
      if (pending.length > 0) sendInOrder(pending);
    },
    hold() {
      held ??= [];
    },
    release(order = 'fifo') {
      const jobs = held ?? [];
      held = null;
      if (jobs.length > 0) sendInOrder(order === 'reverse' ? jobs.reverse() : jobs);
    },
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settleIfIdle();
      }),
  };
}

/** `/_sandbox/deliveries/*`: the delivery faults, driven over HTTP like the request faults. */
export function registerDeliveryFaults(app: FastifyInstance, dispatcher: WebhookDispatcher): void {
  app.post('/_sandbox/deliveries/faults', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const unknown = Object.keys(body).filter((key) => !FAULT_NAMES.includes(key));
    const invalid = FAULT_NAMES.filter((key) => body[key] !== undefined && !Number.isSafeInteger(body[key]));
    if (unknown.length > 0 || invalid.length > 0 || FAULT_NAMES.some((key) => (body[key] as number) < 0)) {
      return reply.code(400).send({ message: `faults are counts: ${FAULT_NAMES.join(', ')}` });
    }
    dispatcher.setFaults(body as DeliveryFaults);
    return reply.code(204).send();
  });
  app.delete('/_sandbox/deliveries/faults', async (_request, reply) => {
    dispatcher.clearFaults();
    return reply.code(204).send();
  });
  app.post('/_sandbox/deliveries/hold', async (_request, reply) => {
    dispatcher.hold();
    return reply.code(204).send();
  });
  app.post('/_sandbox/deliveries/release', async (request, reply) => {
    const { order = 'fifo' } = (request.body ?? {}) as { order?: unknown };
    if (order !== 'fifo' && order !== 'reverse')
      return reply.code(400).send({ message: 'order is fifo or reverse' });
    dispatcher.release(order);
    return reply.code(204).send();
  });
  app.post('/_sandbox/deliveries/idle', async (_request, reply) => {
    await dispatcher.idle();
    return reply.code(204).send();
  });
}
