// The part of a host's budget that must hold across processes: when the next write may start, and
// until when the host asked us to wait. It lives in Redis, so API replicas and the worker share one
// budget per host instead of each spending all of it. Redis's own clock times it, so the processes'
// clocks need not agree.
import type { Redis } from 'ioredis';

export interface SharedPacing {
  /**
   * Reserves the next `count` starts (default one), an interval apart, for writes to the host;
   * resolves to how many ms from now the first of them is.
   */
  reserve(hostId: string, intervalMs: number, count?: number): Promise<number>;
  /** Records that the host asked every writer to wait `waitMs` from now. */
  pause(hostId: string, waitMs: number): Promise<void>;
  /** How far from now starts are already reserved, or the host's pause reaches; 0 when neither. */
  backlog(hostId: string): Promise<number>;
}

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000`;

// KEYS: next start, paused until. ARGV: interval ms, starts. Returns ms from now until the first
// reserved start.
const RESERVE = `${NOW_MS}
local startAt = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0'))
local nextAt = startAt + tonumber(ARGV[1]) * tonumber(ARGV[2] or '1')
redis.call('SET', KEYS[1], tostring(nextAt), 'PX', math.ceil(nextAt - now) + 1000)
return tostring(startAt - now)`;

// KEYS: paused until. ARGV: wait ms. A pause is only ever lengthened.
const PAUSE = `${NOW_MS}
local untilAt = now + tonumber(ARGV[1])
if untilAt > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(untilAt), 'PX', math.ceil(untilAt - now) + 1000)
end
return 1`;

// KEYS: next start, paused until. Reads only.
const BACKLOG = `${NOW_MS}
local untilAt = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0'))
return tostring(math.max(0, untilAt - now))`;

interface PacingCommands {
  hostBudgetReserve(nextKey: string, pausedKey: string, intervalMs: string, count: string): Promise<string>;
  hostBudgetPause(pausedKey: string, waitMs: string): Promise<number>;
  hostBudgetBacklog(nextKey: string, pausedKey: string): Promise<string>;
}

export function createRedisPacing(redis: Redis, prefix: string): SharedPacing {
  // Defined once, run by SHA: the scripts are not sent again with every write.
  redis.defineCommand('hostBudgetReserve', { numberOfKeys: 2, lua: RESERVE });
  redis.defineCommand('hostBudgetPause', { numberOfKeys: 1, lua: PAUSE });
  redis.defineCommand('hostBudgetBacklog', { numberOfKeys: 2, lua: BACKLOG });
  const commands = redis as unknown as PacingCommands;
  const key = (hostId: string, part: 'next' | 'paused') => `${prefix}:host-budget:${hostId}:${part}`;
  return {
    async reserve(hostId, intervalMs, count = 1) {
      return Number(
        await commands.hostBudgetReserve(
          key(hostId, 'next'),
          key(hostId, 'paused'),
          String(intervalMs),
          String(count),
        ),
      );
    },
    async pause(hostId, waitMs) {
      await commands.hostBudgetPause(key(hostId, 'paused'), String(waitMs));
    },
    async backlog(hostId) {
      return Number(await commands.hostBudgetBacklog(key(hostId, 'next'), key(hostId, 'paused')));
    },
  };
}
