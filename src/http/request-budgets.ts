// What one client may cost the API: a request budget per caller (and a smaller one on expensive
// routes), counted in Redis so every replica shares it, and a throttle on failed authentication per
// source address, so guessing tokens is slow and cannot keep the database busy.
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Authenticator } from '../auth/authenticator.ts';
import { DomainError } from '../errors.ts';
import { AppError } from './errors.ts';

export interface RequestBudgets {
  redis: Redis;
  prefix: string;
  /** Requests per caller per window, on every authenticated route. */
  max: number;
  timeWindowSeconds: number;
  /** Requests per caller per window to each expensive route. */
  expensiveMax: number;
  /** Failed authentications per source address per window before it is throttled. */
  failedAuthMax: number;
}

const retryAfter = (milliseconds: number) => String(Math.max(1, Math.ceil(milliseconds / 1000)));

/**
 * Counts every request of the routes registered after it in this plugin, per caller, after
 * authentication. A Redis outage must not lock callers out, so it then counts nothing.
 */
export async function registerCallerBudget(app: FastifyInstance, budgets: RequestBudgets): Promise<void> {
  await app.register(rateLimit, {
    redis: budgets.redis,
    nameSpace: `${budgets.prefix}:ratelimit:`,
    max: budgets.max,
    timeWindow: budgets.timeWindowSeconds * 1000,
    hook: 'preHandler',
    keyGenerator: (request) => request.caller?.id ?? request.ip,
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new AppError('rate-limited', 429, `too many requests from this caller; retry in ${context.after}`, {
        headers: { 'retry-after': retryAfter(context.ttl) },
      }),
  });
}

/** Route config giving an expensive route (a full audit walk, an export) a budget of its own. */
export const expensiveRoute = (budgets: RequestBudgets) => ({
  rateLimit: { max: budgets.expensiveMax, timeWindow: budgets.timeWindowSeconds * 1000 },
});

// Counts one failure and starts the window with the first.
const COUNT_FAILURE = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

/**
 * Refuses every request from a source address with 429 and Retry-After once it has failed
 * authentication `failedAuthMax` times in the window, before its credential is even looked at.
 * Behind a proxy the address is the proxy's unless fastify is told to trust it.
 */
export function throttleFailedAuthentication(
  authenticate: Authenticator,
  budgets: RequestBudgets,
): Authenticator {
  const windowMs = budgets.timeWindowSeconds * 1000;
  const keyOf = (address: string) => `${budgets.prefix}:auth-failures:${address}`;

  // One GET per request; the window's remaining time is asked for only once the address is over
  // its budget. (A MULTI here cost more CPU than the rest of the check: ioredis copies every script
  // defined on the shared connection, BullMQ's included, into each transaction it builds.)
  async function blockedFor(address: string): Promise<number> {
    try {
      const count = await budgets.redis.get(keyOf(address));
      if (Number(count ?? 0) < budgets.failedAuthMax) return 0;
      const ttl = await budgets.redis.pttl(keyOf(address));
      // -2: the window ended between the two reads.
      return ttl === -2 ? 0 : Math.max(ttl, 1);
    } catch {
      return 0;
    }
  }

  return async (request) => {
    const blocked = await blockedFor(request.ip);
    if (blocked > 0) {
      throw new AppError(
        'authentication-throttled',
        429,
        'too many failed authentications from this address; retry later',
        { headers: { 'retry-after': retryAfter(blocked) } },
      );
    }
    try {
      return await authenticate(request);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'unauthorized') {
        await budgets.redis.eval(COUNT_FAILURE, 1, keyOf(request.ip), windowMs).catch(() => undefined);
      }
      throw error;
    }
  };
}
