// The one retry behaviour for every host type. Each attempt is a single request; between attempts
// nothing holds a scheduler slot: a write leaves the host's queue when its attempt fails and joins
// it again, where it waits with every other write until the host's pause is over.
import type { Logger } from '../log.ts';
import type { Timers } from '../time.ts';
import { HostError } from './git-host.ts';
import { backoffMs, type RetryPolicy, withinRetryBound } from './host-http.ts';

export interface RetryDeps {
  policy: RetryPolicy;
  logger: Logger;
  timers: Timers;
}

type NextStep = { retry: false } | { retry: true; afterPause: boolean };

function nextStep(deps: RetryDeps, error: unknown, retryCount: number): NextStep {
  if (!(error instanceof HostError)) return { retry: false };
  // A refusal by our own scheduler has no status: the host was not asked, and asking again now
  // would meet the same full queue.
  if (error.kind === 'rate-limited' && error.status !== undefined) {
    const wait = error.retryAfterSeconds ?? 60;
    const retrying = withinRetryBound(deps.policy, retryCount, wait);
    deps.logger.warn(
      { status: error.status, retryAfter: wait, retryCount, retrying },
      retrying ? 'Git host rate limit, waiting before retrying' : 'Git host rate limit beyond our wait bound',
    );
    return retrying ? { retry: true, afterPause: true } : { retry: false };
  }
  const failedToAnswer = error.kind === 'unavailable' && (error.status ?? 500) >= 500;
  return failedToAnswer && retryCount < deps.policy.maxRetries
    ? { retry: true, afterPause: false }
    : { retry: false };
}

/**
 * Runs `attempt` until it succeeds or fails for good: a rate limit whose wait is within our bound
 * is retried once `waitOutPause` resolves, a 5xx or connection failure after a short backoff.
 */
export async function retryingHostCalls<T>(
  deps: RetryDeps,
  attempt: () => Promise<T>,
  waitOutPause: () => Promise<void>,
): Promise<T> {
  for (let retryCount = 0; ; retryCount += 1) {
    try {
      return await attempt();
    } catch (error) {
      const next = nextStep(deps, error, retryCount);
      if (!next.retry) throw error;
      if (next.afterPause) await waitOutPause();
      else await deps.timers.sleep(backoffMs(deps.policy, retryCount));
    }
  }
}
