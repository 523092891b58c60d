// The host scheduler on fake time: every wait is exact, so the budget's spacing and the host's
// pauses are checked to the millisecond, however busy the machine is.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HostError } from '../../src/hosts/git-host.ts';
import { createHostScheduler, type HostBudget } from '../../src/hosts/host-scheduler.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { systemClock, systemTimers } from '../../src/time.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00.000Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

function scheduler(budget: Partial<HostBudget>) {
  const metrics = createMetrics();
  const instance = createHostScheduler({
    hostId: 'github',
    budget: { concurrency: 1, minIntervalMs: 0, requestsPerMinute: 10_000, maxQueueSeconds: 30, ...budget },
    logger: createLogger('silent'),
    metrics,
    clock: systemClock,
    timers: systemTimers,
  });
  return { instance, metrics };
}

/** A write that records when (fake ms) and in which order it started, and takes `ms`. */
function recorder() {
  const started: { name: string; at: number }[] = [];
  const write =
    (name: string, ms = 5) =>
    async () => {
      started.push({ name, at: Date.now() });
      await systemTimers.sleep(ms);
      return name;
    };
  const gaps = () => started.slice(1).map((entry, i) => entry.at - (started[i]?.at ?? 0));
  return { started, write, gaps, order: () => started.map((entry) => entry.name) };
}

/** Lets fake time run until every timer has fired, then returns what `promise` settled to. */
async function settle<T>(promise: Promise<T>): Promise<T> {
  await vi.runAllTimersAsync();
  return promise;
}

const issue = (caller: string) => ({ kind: 'issue' as const, caller });

describe('host scheduler', () => {
  it('keeps writes the configured interval apart and never more in flight than allowed', async () => {
    const { instance } = scheduler({ concurrency: 2, minIntervalMs: 40 });
    const { write, gaps } = recorder();
    let inFlight = 0;
    let most = 0;
    const tracked = (name: string) => async () => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await write(name, 100)();
      inFlight -= 1;
    };
    await settle(
      Promise.all(Array.from({ length: 5 }, (_, i) => instance.schedule(issue('a'), tracked(`w${i}`)))),
    );
    for (const gap of gaps()) expect(gap).toBeGreaterThanOrEqual(40);
    expect(most).toBe(2);
  });

  it('spreads the per-minute budget evenly, so the host never sees a burst', async () => {
    const { instance } = scheduler({ concurrency: 10, requestsPerMinute: 600 });
    const { write, gaps } = recorder();
    await settle(
      Promise.all(Array.from({ length: 5 }, (_, i) => instance.schedule(issue('a'), write(`w${i}`, 1)))),
    );
    expect(gaps()).toEqual([100, 100, 100, 100]);
  });

  it('serves callers in turn, so one caller’s burst does not hold up another’s single write', async () => {
    const { instance } = scheduler({ minIntervalMs: 10 });
    const { write, order } = recorder();
    const burst = Array.from({ length: 8 }, (_, i) =>
      instance.schedule(issue('sweep'), write(`sweep${i}`, 1)),
    );
    await vi.advanceTimersByTimeAsync(5);
    const single = instance.schedule(issue('other'), write('other', 1));
    await settle(Promise.all([...burst, single]));
    expect(order().indexOf('other')).toBeLessThanOrEqual(2);
  });

  it('serves revokes before queued issues', async () => {
    const { instance } = scheduler({ minIntervalMs: 10 });
    const { write, order } = recorder();
    const issues = Array.from({ length: 5 }, (_, i) => instance.schedule(issue('a'), write(`issue${i}`, 1)));
    await vi.advanceTimersByTimeAsync(5);
    const revoke = instance.schedule({ kind: 'revoke' }, write('revoke', 1));
    await settle(Promise.all([...issues, revoke]));
    expect(order().indexOf('revoke')).toBeLessThanOrEqual(1);
  });

  it('refuses at once, with a retry time and without calling the host, a write whose turn would come too late', async () => {
    const { instance, metrics } = scheduler({ minIntervalMs: 1_000, maxQueueSeconds: 2 });
    const { write, order } = recorder();
    const admitted = [0, 1, 2].map((i) => instance.schedule(issue('a'), write(`w${i}`, 1)));
    const refused = await instance.schedule(issue('a'), write('late', 1)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(HostError);
    expect(refused).toMatchObject({ kind: 'rate-limited', code: 'host-rate-limited' });
    expect((refused as HostError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    await settle(Promise.all(admitted));
    expect(order()).toEqual(['w0', 'w1', 'w2']);
    const rejections = await metrics.registry.getSingleMetricAsString(
      'deploykey_host_queue_rejections_total',
    );
    expect(rejections).toContain('deploykey_host_queue_rejections_total{provider="github"} 1');
  });

  it('tells requests refused together to come back one interval apart, not all at once', async () => {
    const { instance } = scheduler({ minIntervalMs: 500, maxQueueSeconds: 1 });
    const { write } = recorder();
    const admitted = [0, 1, 2].map((i) => instance.schedule(issue('a'), write(`w${i}`, 1)));
    const waits = Array.from({ length: 6 }, () => instance.refusal(issue('a'))?.retryAfterSeconds ?? 0);
    expect(waits[0]).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < waits.length; i += 1) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1] ?? 0);
    // Six refusals half a second apart spread over about three seconds.
    expect((waits.at(-1) ?? 0) - (waits[0] ?? 0)).toBeGreaterThanOrEqual(2);
    await settle(Promise.all(admitted));
  });

  it('holds every write while the host has asked to wait with retry-after, and says for how long', async () => {
    const { instance } = scheduler({});
    const { started, write } = recorder();
    const asked = Date.now();
    instance.observe(429, new Headers({ 'retry-after': '2' }));
    expect(instance.heldForMs()).toBe(2_000);
    const after = instance.schedule(issue('a'), write('after', 1));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(started).toEqual([]);
    expect(instance.heldForMs()).toBe(1);
    await settle(after);
    expect(started).toEqual([{ name: 'after', at: asked + 2_000 }]);
    expect(instance.heldForMs()).toBe(0);
  });

  it('holds writes until the reset time once the host says no requests remain', async () => {
    const { instance } = scheduler({});
    const { started, write } = recorder();
    const resetAt = Math.ceil(Date.now() / 1000) + 1;
    instance.observe(
      200,
      new Headers({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(resetAt) }),
    );
    await settle(instance.schedule(issue('a'), write('after', 1)));
    expect(started).toEqual([{ name: 'after', at: resetAt * 1000 }]);
  });

  it('ignores a plain 403 and answers with remaining budget', async () => {
    const { instance } = scheduler({});
    const { started, write } = recorder();
    const asked = Date.now();
    instance.observe(403, new Headers({ 'x-ratelimit-remaining': '4999' }));
    await settle(instance.schedule(issue('a'), write('now', 1)));
    expect(started).toEqual([{ name: 'now', at: asked }]);
    expect(instance.heldForMs()).toBe(0);
  });

  it('refuses queued writes the host’s wait would carry past their bound', async () => {
    const { instance } = scheduler({ minIntervalMs: 200, maxQueueSeconds: 3 });
    const { write, order } = recorder();
    const { started, write: slow } = recorder();
    const first = instance.schedule(issue('a'), slow('first', 50));
    const queued = instance.schedule(issue('a'), write('queued', 1)).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(0);
    expect(started.map((entry) => entry.name)).toEqual(['first']);
    instance.observe(403, new Headers({ 'retry-after': '60' }));
    const outcome = await queued;
    expect(outcome).toBeInstanceOf(HostError);
    expect((outcome as HostError).retryAfterSeconds).toBeGreaterThanOrEqual(55);
    await settle(first);
    expect(started.map((entry) => entry.name)).toEqual(['first']);
    expect(order()).toEqual([]);
  });
});
