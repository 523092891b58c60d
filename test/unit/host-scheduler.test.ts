import { describe, expect, it } from 'vitest';
import { HostError } from '../../src/hosts/git-host.ts';
import { createHostScheduler, type HostBudget } from '../../src/hosts/host-scheduler.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function scheduler(budget: Partial<HostBudget>) {
  const metrics = createMetrics();
  const instance = createHostScheduler({
    hostId: 'github',
    budget: { concurrency: 1, minIntervalMs: 0, requestsPerMinute: 10_000, maxQueueSeconds: 30, ...budget },
    logger: createLogger('silent'),
    metrics,
  });
  return { instance, metrics };
}

/** A write that records when it started, in which order, and takes `ms`. */
function recorder() {
  const started: { name: string; at: number }[] = [];
  const write =
    (name: string, ms = 5) =>
    async () => {
      started.push({ name, at: performance.now() });
      await sleep(ms);
      return name;
    };
  return { started, write, order: () => started.map((entry) => entry.name) };
}

const issue = (caller: string) => ({ kind: 'issue' as const, caller });

describe('host scheduler', () => {
  it('keeps writes the configured interval apart and never more in flight than allowed', async () => {
    const { instance } = scheduler({ concurrency: 2, minIntervalMs: 40 });
    const { started, write } = recorder();
    let inFlight = 0;
    let most = 0;
    const tracked = (name: string) => async () => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await write(name, 100)();
      inFlight -= 1;
    };
    await Promise.all(Array.from({ length: 5 }, (_, i) => instance.schedule(issue('a'), tracked(`w${i}`))));
    const gaps = started.slice(1).map((entry, i) => entry.at - (started[i]?.at ?? 0));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(38);
    expect(most).toBe(2);
  });

  it('spreads the per-minute budget evenly, so the host never sees a burst', async () => {
    const { instance } = scheduler({ concurrency: 10, requestsPerMinute: 600 });
    const { started, write } = recorder();
    await Promise.all(Array.from({ length: 5 }, (_, i) => instance.schedule(issue('a'), write(`w${i}`, 1))));
    const gaps = started.slice(1).map((entry, i) => entry.at - (started[i]?.at ?? 0));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(98);
  });

  it('serves callers in turn, so one caller’s burst does not hold up another’s single write', async () => {
    const { instance } = scheduler({ minIntervalMs: 10 });
    const { write, order } = recorder();
    const burst = Array.from({ length: 8 }, (_, i) =>
      instance.schedule(issue('sweep'), write(`sweep${i}`, 1)),
    );
    await sleep(5);
    const single = instance.schedule(issue('other'), write('other', 1));
    await Promise.all([...burst, single]);
    expect(order().indexOf('other')).toBeLessThanOrEqual(2);
  });

  it('serves revokes before queued issues', async () => {
    const { instance } = scheduler({ minIntervalMs: 10 });
    const { write, order } = recorder();
    const issues = Array.from({ length: 5 }, (_, i) => instance.schedule(issue('a'), write(`issue${i}`, 1)));
    await sleep(5);
    const revoke = instance.schedule({ kind: 'revoke' }, write('revoke', 1));
    await Promise.all([...issues, revoke]);
    expect(order().indexOf('revoke')).toBeLessThanOrEqual(1);
  });

  it('refuses at once, with a retry time and without calling the host, a write whose turn would come too late', async () => {
    const { instance, metrics } = scheduler({ minIntervalMs: 1_000, maxQueueSeconds: 2 });
    const { write, order } = recorder();
    const admitted = [0, 1, 2].map((i) => instance.schedule(issue('a'), write(`w${i}`, 1)));
    const refused = await instance.schedule(issue('a'), write('late', 1)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(HostError);
    expect((refused as HostError).kind).toBe('rate-limited');
    expect((refused as HostError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    await Promise.all(admitted);
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
    const refusals = Array.from({ length: 6 }, () => instance.refusal(issue('a')));
    const waits = refusals.map((refused) => refused?.retryAfterSeconds ?? 0);
    expect(waits[0]).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < waits.length; i += 1) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1] ?? 0);
    // Six refusals half a second apart spread over about three seconds.
    expect((waits.at(-1) ?? 0) - (waits[0] ?? 0)).toBeGreaterThanOrEqual(2);
    await Promise.all(admitted);
  });

  it('holds every write while the host has asked to wait with retry-after', async () => {
    const { instance } = scheduler({});
    const { started, write } = recorder();
    const asked = performance.now();
    instance.observe(429, new Headers({ 'retry-after': '1' }));
    await instance.schedule(issue('a'), write('after', 1));
    expect((started[0]?.at ?? 0) - asked).toBeGreaterThanOrEqual(950);
  });

  it('holds writes until the reset time once the host says no requests remain', async () => {
    const { instance } = scheduler({});
    const { started, write } = recorder();
    const resetAt = Math.ceil(Date.now() / 1000) + 1;
    instance.observe(
      200,
      new Headers({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(resetAt) }),
    );
    await instance.schedule(issue('a'), write('after', 1));
    expect(Date.now() + 50).toBeGreaterThanOrEqual(resetAt * 1000);
    expect(started).toHaveLength(1);
  });

  it('ignores a plain 403 and answers with remaining budget', async () => {
    const { instance } = scheduler({});
    const { started, write } = recorder();
    const asked = performance.now();
    instance.observe(403, new Headers({ 'x-ratelimit-remaining': '4999' }));
    await instance.schedule(issue('a'), write('now', 1));
    expect((started[0]?.at ?? 0) - asked).toBeLessThan(200);
  });

  it('refuses queued writes the host’s wait would carry past their bound', async () => {
    const { instance } = scheduler({ minIntervalMs: 200, maxQueueSeconds: 3 });
    const { write, order } = recorder();
    const { started, write: slow } = recorder();
    const first = instance.schedule(issue('a'), slow('first', 50));
    const queued = instance.schedule(issue('a'), write('queued', 1)).catch((error: unknown) => error);
    while (started.length === 0) await sleep(1);
    instance.observe(403, new Headers({ 'retry-after': '60' }));
    const outcome = await queued;
    expect(outcome).toBeInstanceOf(HostError);
    expect((outcome as HostError).retryAfterSeconds).toBeGreaterThanOrEqual(55);
    await first;
    expect(started.map((entry) => entry.name)).toEqual(['first']);
    expect(order()).toEqual([]);
  });
});
