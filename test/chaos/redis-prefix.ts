// Redis is shared with other work on this machine: everything here is confined to the run's own
// key prefix and to the connections of the processes this run started.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';

export const REDIS_URL = 'redis://127.0.0.1:6379';
const REDIS_PORT = 6379;

export async function keysUnderPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

/** Deletes every key under the prefix: what the service sees when Redis comes back empty. */
export async function deletePrefix(redis: Redis, prefix: string): Promise<number> {
  const keys = await keysUnderPrefix(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  return keys.length;
}

/**
 * Drops the Redis connections of the given processes (found with `ss` by owning pid), as a Redis
 * restart would, without touching anyone else's clients.
 */
export async function dropConnectionsOf(redis: Redis, pids: number[]): Promise<number> {
  const { stdout } = await promisify(execFile)('ss', [
    '-tnpH',
    'state',
    'established',
    `dport = :${REDIS_PORT}`,
  ]);
  const addresses = stdout
    .split('\n')
    .filter((line) => pids.some((pid) => line.includes(`pid=${pid},`)))
    .map((line) => line.trim().split(/\s+/)[2])
    .filter((address): address is string => Boolean(address));
  let dropped = 0;
  for (const address of addresses) {
    dropped += Number(
      await redis.client('KILL', 'ADDR', address).then(
        () => 1,
        () => 0,
      ),
    );
  }
  return dropped;
}

/** Every key under the prefix with its value, read the way its type is read. */
export async function dumpPrefix(redis: Redis, prefix: string): Promise<{ text: string; keys: number }> {
  const parts: string[] = [];
  const keys = await keysUnderPrefix(redis, prefix);
  for (const key of keys) {
    const type = await redis.type(key);
    let value: unknown;
    if (type === 'string') value = await redis.get(key);
    else if (type === 'hash') value = await redis.hgetall(key);
    else if (type === 'list') value = await redis.lrange(key, 0, -1);
    else if (type === 'set') value = await redis.smembers(key);
    else if (type === 'zset') value = await redis.call('ZRANGE', key, '0', '-1', 'WITHSCORES');
    else if (type === 'stream') value = await redis.xrange(key, '-', '+');
    parts.push(key, JSON.stringify(value));
  }
  return { text: parts.join('\n'), keys: keys.length };
}
