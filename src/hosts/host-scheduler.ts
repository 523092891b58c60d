// Every write to one Git host passes through here: it keeps under the host's configured budget
// (requests in flight, spacing, requests per minute), stops sending while the host has said to wait
// (`retry-after`, an exhausted `x-ratelimit-remaining`), serves revokes before issues and callers in
// turn, and turns a request away at once, with how long to wait, when its turn would come too late.
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Clock, Timers } from '../time.ts';
import { rateLimitWaitSeconds } from './error-mapping.ts';
import { HostError } from './git-host.ts';
import type { SharedPacing } from './shared-pacing.ts';
import { createStartReservations, pacingKeyOf, TIMER_RESOLUTION_MS } from './start-reservations.ts';
import { createWriteQueue, type HostLane, type QueuedWrite, type WriteQueue } from './write-queue.ts';

export type { HostLane } from './write-queue.ts';

export interface HostBudget {
  /** Writes in flight at once. */
  concurrency: number;
  /** Least time between starting two writes. */
  minIntervalMs: number;
  /** Most writes started in a minute, spread evenly: a host's per-second limits see no burst. */
  requestsPerMinute: number;
  /** Longest a write may wait for its turn; one that would wait longer is refused with a retry time. */
  maxQueueSeconds: number;
}

export interface HostScheduler {
  schedule<T>(lane: HostLane, call: () => Promise<T>): Promise<T>;
  /** The refusal a write in this lane would meet now, or undefined when it would be queued. */
  refusal(lane: HostLane): HostError | undefined;
  /** Learns from any answer of the host whether it asked us to stop for a while. */
  observe(status: number, headers: Headers): void;
  /** Writes waiting for their turn. */
  queued(): number;
  /** How long from now the host asked us to send nothing; 0 when it did not. */
  heldForMs(): number;
  /** How long a write in this lane would wait for its turn if scheduled now. */
  waitMs(lane: HostLane): number;
  /** Writes this budget could still take before one would be refused, across every process sharing it. */
  budgetLeft(): Promise<number>;
}

export interface HostSchedulerOptions {
  hostId: string;
  /** The credential this budget is for, when the host has several; it labels the metrics. */
  credential?: string;
  budget: HostBudget;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  timers: Timers;
  /** Shares the budget's pacing and the host's pauses with every process using the same Redis. */
  shared?: SharedPacing;
}

/** Seconds the host asked every writer to wait with this answer, or undefined when it did not. */
function waitAskedFor(status: number, headers: Headers, nowMs: number): number | undefined {
  const retryAfter = headers.get('retry-after');
  const remaining = headers.get('x-ratelimit-remaining') ?? headers.get('ratelimit-remaining');
  const limited = status === 429 || (status === 403 && (retryAfter !== null || remaining === '0'));
  if (!limited && remaining !== '0') return undefined;
  return rateLimitWaitSeconds(
    {
      'retry-after': retryAfter ?? undefined,
      'x-ratelimit-reset': headers.get('x-ratelimit-reset') ?? undefined,
      'ratelimit-reset': headers.get('ratelimit-reset') ?? undefined,
    },
    nowMs,
  );
}

/** Metric labels: the host, and the credential when the host has several. */
const labelsOf = (options: HostSchedulerOptions) =>
  options.credential === undefined
    ? { provider: options.hostId }
    : { provider: options.hostId, credential: options.credential };

/**
 * Refusals with a time to come back. Requests refused together are told to come back one budget
 * interval apart, not all at once: returning in turn, each finds room instead of a full queue again.
 */
function createRefusals(options: HostSchedulerOptions, spacingMs: () => number) {
  const { hostId, metrics } = options;
  let lastComeBackAt = 0;
  return (waitMs: number, reason: string) => {
    metrics.hostQueueRejections.inc(labelsOf(options));
    const at = options.clock().getTime();
    const comeBackAt = Math.max(at + waitMs, lastComeBackAt + spacingMs());
    lastComeBackAt = comeBackAt;
    const retryAfterSeconds = Math.max(1, Math.ceil((comeBackAt - at) / 1000));
    return new HostError(hostId, 'rate-limited', `${hostId}: ${reason}; retry after ${retryAfterSeconds} s`, {
      retryAfterSeconds,
    });
  };
}

/**
 * Until when the host asked us to send nothing. Lengthening it refuses at once the queued writes
 * whose turn can no longer come within their bound, rather than later.
 */
function createHold(
  options: HostSchedulerOptions,
  queue: WriteQueue,
  refuse: ReturnType<typeof createRefusals>,
) {
  const { metrics, logger } = options;
  const label = labelsOf(options);
  const now = () => options.clock().getTime();
  let pausedUntil = 0;
  return {
    heldForMs: () => Math.max(0, pausedUntil - now()),
    extend(untilMs: number, why: Record<string, unknown>) {
      if (untilMs <= pausedUntil) return;
      pausedUntil = untilMs;
      metrics.hostRateLimitPauses.inc(label);
      logger.warn(
        { ...why, credential: options.credential, pausedForMs: untilMs - now(), queued: queue.size() },
        'Git host asked us to slow down; holding its writes',
      );
      for (const write of queue.remove((queued) => queued.deadline < pausedUntil)) {
        write.reject(refuse(pausedUntil - now(), 'the host asked us to wait longer than the queue bound'));
      }
      metrics.hostQueueDepth.set(label, queue.size());
    },
  };
}

type Hold = ReturnType<typeof createHold>;

/**
 * The budget's slots: how many writes are in flight or have a reserved start, and how fast they
 * drain. A slot first reserves its start, then takes the write that is next at that moment, so a
 * revoke that arrives meanwhile still goes first.
 */
function createSlots(options: HostSchedulerOptions, queue: WriteQueue, hold: Hold, startIntervalMs: number) {
  const { budget, metrics, timers } = options;
  const label = labelsOf(options);
  const now = () => options.clock().getTime();
  const maxQueueMs = budget.maxQueueSeconds * 1000;
  const reservations = createStartReservations(options, startIntervalMs);
  let inFlight = 0;
  // Slots holding a reserved start that have not yet taken a write.
  let reserved = 0;
  let cancelTimer: (() => void) | undefined;
  // How long a write takes, smoothed: with the concurrency it bounds how fast the queue drains.
  let averageCallMs = 0;

  const start = (write: QueuedWrite) => {
    const startedAt = now();
    inFlight += 1;
    metrics.hostQueueWait.observe(label, (startedAt - write.enqueuedAt) / 1000);
    const finish = (settle: () => void) => {
      inFlight -= 1;
      const took = now() - startedAt;
      averageCallMs = averageCallMs === 0 ? took : averageCallMs * 0.8 + took * 0.2;
      settle();
      pump();
    };
    Promise.resolve()
      .then(write.call)
      .then(
        (value) => finish(() => write.resolve(value)),
        (error) => finish(() => write.reject(error)),
      );
  };

  const startWhenReserved = async () => {
    const delayMs = await reservations.reserve();
    // Another process met a long wait from the host: hold and refuse here as if this one had.
    if (delayMs > maxQueueMs) hold.extend(now() + delayMs, { sharedWaitMs: Math.round(delayMs) });
    if (delayMs >= TIMER_RESOLUTION_MS) await timers.sleep(delayMs);
    const heldMs = hold.heldForMs();
    if (heldMs > 0) await timers.sleep(heldMs);
    reserved -= 1;
    const write = queue.next();
    if (write) start(write);
    pump();
  };

  function pump() {
    if (cancelTimer) return;
    const heldMs = hold.heldForMs();
    if (heldMs > 0) {
      cancelTimer = timers.after(heldMs, () => {
        cancelTimer = undefined;
        pump();
      });
    } else {
      while (inFlight + reserved < budget.concurrency && queue.size() > reserved) {
        reserved += 1;
        void startWhenReserved();
      }
    }
    metrics.hostQueueDepth.set(label, queue.size());
  }

  return {
    pump,
    inFlight: () => inFlight,
    /** Writes queued that hold no reserved start yet. */
    unreserved: () => Math.max(0, queue.size() - reserved),
    backlogMs: reservations.backlogMs,
    spacingMs: () => Math.max(startIntervalMs, averageCallMs / budget.concurrency),
  };
}

export function createHostScheduler(options: HostSchedulerOptions): HostScheduler {
  const { budget } = options;
  const now = () => options.clock().getTime();
  const maxQueueMs = budget.maxQueueSeconds * 1000;
  const startIntervalMs = Math.max(budget.minIntervalMs, 60_000 / budget.requestsPerMinute);
  const queue = createWriteQueue();
  const refuse = createRefusals(options, () => slots.spacingMs());
  const hold = createHold(options, queue, refuse);
  const slots = createSlots(options, queue, hold, startIntervalMs);

  const waitMs = (lane: HostLane) =>
    hold.heldForMs() + (queue.aheadOf(lane) + slots.inFlight()) * slots.spacingMs();

  const refusal = (lane: HostLane) => {
    const wait = waitMs(lane);
    if (wait <= maxQueueMs) return undefined;
    return refuse(wait - maxQueueMs, `${queue.size()} writes are queued within its rate budget`);
  };

  return {
    refusal,
    waitMs,

    async budgetLeft() {
      const backlogMs = Math.max(await slots.backlogMs(), hold.heldForMs());
      const startsWithinBound = Math.floor((maxQueueMs - backlogMs) / startIntervalMs);
      return Math.max(0, startsWithinBound - slots.unreserved());
    },

    schedule<T>(lane: HostLane, call: () => Promise<T>): Promise<T> {
      const refused = refusal(lane);
      if (refused) return Promise.reject(refused);
      const at = now();
      return new Promise<T>((resolve, reject) => {
        const resolveAny = resolve as (value: unknown) => void;
        queue.push(lane, { call, resolve: resolveAny, reject, enqueuedAt: at, deadline: at + maxQueueMs });
        slots.pump();
      });
    },

    observe(status, headers) {
      const seconds = waitAskedFor(status, headers, now());
      if (seconds === undefined) return;
      hold.extend(now() + seconds * 1000, { status, retryAfter: headers.get('retry-after') });
      options.shared?.pause(pacingKeyOf(options), seconds * 1000).catch(() => {});
    },

    queued: queue.size,

    heldForMs: hold.heldForMs,
  };
}
