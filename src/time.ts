// Time as a dependency: every part that reads the time or waits takes these, so tests can run on
// fake time instead of sleeping and measuring the wall clock.

export type Clock = () => Date;

export interface Timers {
  /** Resolves after `ms`. */
  sleep(ms: number): Promise<void>;
  /** Calls `callback` after `ms` without keeping the process alive for it; the result cancels it. */
  after(ms: number, callback: () => void): () => void;
}

export const systemClock: Clock = () => new Date();

// The globals are looked up on each call, so a test's fake timers (vi.useFakeTimers) apply here too.
export const systemTimers: Timers = {
  sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
  after(ms, callback) {
    const timer = setTimeout(callback, ms);
    timer.unref?.();
    return () => clearTimeout(timer);
  },
};
