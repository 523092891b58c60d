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

/** Revokes (and the clean-up of a failed issue) go first; issues are served one caller at a time. */
export type HostLane = { kind: 'revoke' } | { kind: 'issue'; caller: string };

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
}

interface Task {
  call: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  enqueuedAt: number;
  deadline: number;
}

const TIMER_RESOLUTION_MS = 1;

export interface HostSchedulerOptions {
  hostId: string;
  budget: HostBudget;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  timers: Timers;
  /** Shares the budget's pacing and the host's pauses with every process using the same Redis. */
  shared?: SharedPacing;
}

export function createHostScheduler(options: HostSchedulerOptions): HostScheduler {
  const { hostId, budget, logger, metrics, timers } = options;
  const now = () => options.clock().getTime();
  const maxQueueMs = budget.maxQueueSeconds * 1000;
  const label = { provider: hostId };

  const revokes: Task[] = [];
  // Insertion order is the round-robin order: a served caller with more work moves to the back.
  const issuesByCaller = new Map<string, Task[]>();
  let inFlight = 0;
  const startIntervalMs = Math.max(budget.minIntervalMs, 60_000 / budget.requestsPerMinute);
  // When the next write may start if the budget is kept exactly; it advances by the interval from
  // where it was, not from when a late timer fired, so a busy event loop does not lower the rate.
  let nextStartAt = Number.NEGATIVE_INFINITY;
  // Slots holding a reserved start that have not yet taken a write.
  let reserved = 0;
  // Timers fire no sooner than a millisecond: writes less than that apart start in small groups.
  const groupingMs = startIntervalMs < TIMER_RESOLUTION_MS ? TIMER_RESOLUTION_MS : 0;
  let pausedUntil = 0;
  let timer: (() => void) | undefined;
  // How long a write takes, smoothed: with the concurrency it bounds how fast the queue drains.
  let averageCallMs = 0;

  const queued = () => {
    let count = revokes.length;
    for (const tasks of issuesByCaller.values()) count += tasks.length;
    return count;
  };
  const setDepth = () => metrics.hostQueueDepth.set(label, queued());

  const spacingMs = () => Math.max(startIntervalMs, averageCallMs / budget.concurrency);

  /** Writes that would start before a new one in this lane, given revokes first and callers in turn. */
  const aheadOf = (lane: HostLane) => {
    if (lane.kind === 'revoke') return revokes.length + inFlight;
    const own = issuesByCaller.get(lane.caller)?.length ?? 0;
    let others = 0;
    for (const [caller, tasks] of issuesByCaller) {
      if (caller !== lane.caller) others += Math.min(tasks.length, own + 1);
    }
    return revokes.length + inFlight + own + others;
  };

  const nextTask = (): Task | undefined => {
    const revoke = revokes.shift();
    if (revoke) return revoke;
    for (const [caller, tasks] of issuesByCaller) {
      const task = tasks.shift();
      issuesByCaller.delete(caller);
      if (tasks.length > 0) issuesByCaller.set(caller, tasks);
      return task;
    }
    return undefined;
  };

  const localReserve = () => {
    const at = now();
    const startAt = Math.max(nextStartAt, at);
    nextStartAt = startAt + startIntervalMs;
    return startAt - at - groupingMs;
  };

  // Reserves when the next write may start: in Redis when the budget is shared between processes,
  // here otherwise, or when Redis cannot answer (the budget then holds for this process alone).
  const reserve = async (): Promise<number> => {
    if (!options.shared) return localReserve();
    try {
      return await options.shared.reserve(hostId, startIntervalMs);
    } catch (error) {
      logger.warn(
        { err: (error as Error).message },
        'shared host budget unavailable; pacing this process alone',
      );
      return localReserve();
    }
  };

  const start = (task: Task) => {
    const at = now();
    inFlight += 1;
    metrics.hostQueueWait.observe(label, (at - task.enqueuedAt) / 1000);
    let running: Promise<unknown>;
    try {
      running = task.call();
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      (value) => finish(at, () => task.resolve(value)),
      (error) => finish(at, () => task.reject(error)),
    );
  };

  const finish = (startedAt: number, settle: () => void) => {
    inFlight -= 1;
    const took = now() - startedAt;
    averageCallMs = averageCallMs === 0 ? took : averageCallMs * 0.8 + took * 0.2;
    settle();
    pump();
  };

  // A slot first reserves its start, then takes the write that is next at that moment, so a revoke
  // that arrives meanwhile still goes first.
  const startWhenReserved = async () => {
    const delayMs = await reserve();
    // Another process met a long wait from the host: hold and refuse here as if this one had.
    if (delayMs > maxQueueMs) pause(now() + delayMs, { sharedWaitMs: Math.round(delayMs) });
    if (delayMs >= TIMER_RESOLUTION_MS) await timers.sleep(delayMs);
    const heldMs = pausedUntil - now();
    if (heldMs > 0) await timers.sleep(heldMs);
    reserved -= 1;
    const task = nextTask();
    if (task) start(task);
    pump();
  };

  function pump() {
    if (timer) return;
    const at = now();
    if (pausedUntil > at) {
      timer = timers.after(pausedUntil - at, () => {
        timer = undefined;
        pump();
      });
    } else {
      while (inFlight + reserved < budget.concurrency && queued() > reserved) {
        reserved += 1;
        void startWhenReserved();
      }
    }
    setDepth();
  }

  // Requests refused together are told to come back one budget interval apart, not all at once:
  // returning in turn, each finds room instead of meeting a full queue again.
  let lastComeBackAt = 0;
  const refuse = (waitMs: number, reason: string) => {
    metrics.hostQueueRejections.inc(label);
    const at = now();
    const comeBackAt = Math.max(at + waitMs, lastComeBackAt + spacingMs());
    lastComeBackAt = comeBackAt;
    const retryAfterSeconds = Math.max(1, Math.ceil((comeBackAt - at) / 1000));
    return new HostError(hostId, 'rate-limited', `${hostId}: ${reason}; retry after ${retryAfterSeconds} s`, {
      retryAfterSeconds,
    });
  };

  const refusal = (lane: HostLane) => {
    const waitMs = Math.max(0, pausedUntil - now()) + aheadOf(lane) * spacingMs();
    if (waitMs <= maxQueueMs) return undefined;
    return refuse(waitMs - maxQueueMs, `${queued()} writes are queued within its rate budget`);
  };

  // Queued writes whose turn can no longer come within their bound give up now rather than later.
  const refuseOverdue = () => {
    const lanes = [revokes, ...issuesByCaller.values()];
    for (const tasks of lanes) {
      for (let index = tasks.length - 1; index >= 0; index -= 1) {
        const task = tasks[index];
        if (!task || task.deadline >= pausedUntil) continue;
        tasks.splice(index, 1);
        task.reject(refuse(pausedUntil - now(), 'the host asked us to wait longer than the queue bound'));
      }
    }
    for (const [caller, tasks] of issuesByCaller) if (tasks.length === 0) issuesByCaller.delete(caller);
    setDepth();
  };

  function pause(untilMs: number, why: Record<string, unknown>) {
    if (untilMs <= pausedUntil) return;
    pausedUntil = untilMs;
    metrics.hostRateLimitPauses.inc(label);
    logger.warn(
      { ...why, pausedForMs: untilMs - now(), queued: queued() },
      'Git host asked us to slow down; holding its writes',
    );
    refuseOverdue();
  }

  return {
    refusal,

    schedule<T>(lane: HostLane, call: () => Promise<T>): Promise<T> {
      const refused = refusal(lane);
      if (refused) return Promise.reject(refused);
      const at = now();
      return new Promise<T>((resolve, reject) => {
        const task: Task = {
          call,
          resolve: resolve as (value: unknown) => void,
          reject,
          enqueuedAt: at,
          deadline: at + maxQueueMs,
        };
        if (lane.kind === 'revoke') revokes.push(task);
        else {
          const tasks = issuesByCaller.get(lane.caller);
          if (tasks) tasks.push(task);
          else issuesByCaller.set(lane.caller, [task]);
        }
        pump();
      });
    },

    observe(status, headers) {
      const retryAfter = headers.get('retry-after');
      const remaining = headers.get('x-ratelimit-remaining') ?? headers.get('ratelimit-remaining');
      const limited = status === 429 || (status === 403 && (retryAfter !== null || remaining === '0'));
      if (!limited && remaining !== '0') return;
      const seconds = rateLimitWaitSeconds(
        {
          'retry-after': retryAfter ?? undefined,
          'x-ratelimit-reset': headers.get('x-ratelimit-reset') ?? undefined,
          'ratelimit-reset': headers.get('ratelimit-reset') ?? undefined,
        },
        now(),
      );
      pause(now() + seconds * 1000, { status, retryAfter, remaining });
      options.shared?.pause(hostId, seconds * 1000).catch(() => {});
    },

    queued,

    heldForMs: () => Math.max(0, pausedUntil - now()),
  };
}
