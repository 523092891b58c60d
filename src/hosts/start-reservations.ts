// When each write of a host credential's budget may start: reserved in Redis when the budget is
// shared between processes (shared-pacing.ts), in this process otherwise.
import { coalesced } from '../coalesced.ts';
import type { HostSchedulerOptions } from './host-scheduler.ts';

// Timers fire no sooner than this.
export const TIMER_RESOLUTION_MS = 1;

/** The shared budget's name in Redis: one per credential, each spent by its own writes. */
export const pacingKeyOf = (options: HostSchedulerOptions) =>
  options.credential === undefined ? options.hostId : `${options.hostId}/${options.credential}`;

/**
 * Reserves when the next write may start, in ms from now: in Redis when the budget is shared
 * between processes, here otherwise, or when Redis cannot answer (the budget then holds for this
 * process alone).
 */
export function createStartReservations(options: HostSchedulerOptions, startIntervalMs: number) {
  const { logger, shared } = options;
  const pacingKey = pacingKeyOf(options);
  // When the next write may start if the budget is kept exactly; it advances by the interval from
  // where it was, not from when a late timer fired, so a busy event loop does not lower the rate.
  let nextStartAt = Number.NEGATIVE_INFINITY;
  // Timers fire no sooner than a millisecond: writes less than that apart start in small groups.
  const groupingMs = startIntervalMs < TIMER_RESOLUTION_MS ? TIMER_RESOLUTION_MS : 0;

  const reserveHere = () => {
    const at = options.clock().getTime();
    const startAt = Math.max(nextStartAt, at);
    nextStartAt = startAt + startIntervalMs;
    return startAt - at - groupingMs;
  };

  const backlogHere = () => Math.max(0, nextStartAt - options.clock().getTime());
  // Starts asked for while a reservation is under way are reserved together, one interval apart,
  // in one round trip to Redis instead of one each.
  const reserveShared =
    shared &&
    coalesced(async (asks: undefined[]) => {
      const first = await shared.reserve(pacingKey, startIntervalMs, asks.length);
      return asks.map((_, index) => first + index * startIntervalMs);
    });
  return {
    async reserve(): Promise<number> {
      if (!reserveShared) return reserveHere();
      try {
        return await reserveShared(undefined);
      } catch (error) {
        logger.warn(
          { err: (error as Error).message },
          'shared host budget unavailable; pacing this process alone',
        );
        return reserveHere();
      }
    },
    /** How far ahead starts are already reserved (or the host's pause reaches), in ms from now. */
    async backlogMs(): Promise<number> {
      if (!shared) return backlogHere();
      return shared.backlog(pacingKey).catch(backlogHere);
    },
  };
}
