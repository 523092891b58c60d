// The service's host adapter as the host tests build it: quiet, quick to retry, on real time.
import { expect } from 'vitest';
import type { HostConfig } from '../../src/config.ts';
import { HostError } from '../../src/hosts/git-host.ts';
import type { HostAdapterDeps } from '../../src/hosts/host-http.ts';
import { createHost } from '../../src/hosts/host-registry.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { systemClock, systemTimers } from '../../src/time.ts';

export function testHostDeps(deps: Partial<HostAdapterDeps> = {}): HostAdapterDeps {
  return {
    metrics: createMetrics(),
    logger: createLogger('silent'),
    clock: systemClock,
    timers: systemTimers,
    retry: { maxRetries: 2, backoffBaseMs: 50 },
    ...deps,
  };
}

/** An adapter for `config` and the metrics it counts its requests in. */
export function testAdapter(config: HostConfig, deps: Partial<HostAdapterDeps> = {}) {
  const resolved = testHostDeps(deps);
  return { host: createHost(config, resolved), metrics: resolved.metrics };
}

/** The HostError `promise` rejects with; fails the test if it resolves or rejects otherwise. */
export async function hostError(promise: Promise<unknown>): Promise<HostError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(HostError);
  return error as HostError;
}

/** The host's answers by status (`200`, `429`, `network`, `timeout`…), as the adapter counted them. */
export async function answersByStatus(metrics: Metrics): Promise<Record<string, number>> {
  const { values } = await metrics.hostRequests.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.status), v.value]));
}
