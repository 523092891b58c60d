// A worker process killed while a revoke is in flight: another worker finishes the revoke, and
// the audit log records it exactly once.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI_PATH } from '../support/cli.ts';
import {
  auditCount,
  hostHasKey,
  issueKey,
  keyStatus,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<NodeJS.Signals | number | null>;
}

const LOCK_SECONDS = 2;
const STALLED_CHECK_SECONDS = 1;

let harness: Harness;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  // Short claims, so a crashed worker's job is taken over within seconds rather than a minute.
  harness = await startHarness({
    worker: false,
    fileConfig: { worker: { lockSeconds: LOCK_SECONDS, stalledCheckSeconds: STALLED_CHECK_SECONDS } },
  });
});
afterAll(async () => {
  for (const worker of workers) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    await worker.exited;
  }
  await harness?.close();
});

async function startWorkerProcess(): Promise<WorkerProcess> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    ...(await harness.childEnv()),
    LOG_LEVEL: 'debug',
  };
  const child = spawn(process.execPath, [CLI_PATH, 'serve', '--role', 'worker', '--no-migrate'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => {
    child.on('exit', (code, signal) => resolve(signal ?? code));
  });
  const worker = { child, output: () => output, exited };
  workers.push(worker);
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`worker exited early:\n${output}`);
      return output.includes('deploykey-rotator started');
    },
    { timeoutMs: 45_000, what: 'the worker process to start' },
  );
  return worker;
}

it('finishes a revoke whose worker was SIGKILLed mid-flight, auditing it once', async () => {
  const first = await startWorkerProcess();
  const key = await issueKey(harness, {
    provider: 'github',
    repository: 'acme/models',
    jobId: 'worker-crash',
    ttlSeconds: 3_600,
  });
  const github = harness.standIns.github.api.faults;
  github.add({ latencyMs: 5_000, method: 'DELETE', count: 1 });

  const requested = await harness.api('DELETE', `/v1/keys/${key.id}`);
  expect(requested.status).toBe(202);
  await eventually(async () => github.stats().injected >= 1, {
    timeoutMs: 30_000,
    what: 'the host to receive the DELETE',
  });
  first.child.kill('SIGKILL');
  expect(await first.exited).toBe('SIGKILL');
  github.clear();
  expect(await keyStatus(harness, key.id)).toBe('revoking');

  const second = await startWorkerProcess();
  const startedAt = Date.now();
  const view = await revokedView(harness, key.id, 30_000);
  // The new worker takes the job over once the dead worker's claim lapses and a stalled check
  // sees it: one lock period plus at most two check periods, with slack for a busy machine.
  expect(Date.now() - startedAt).toBeLessThan((LOCK_SECONDS + 2 * STALLED_CHECK_SECONDS + 10) * 1000);
  expect(view.revokeReason).toBe('manual');
  expect(hostHasKey(harness, key)).toBe(false);
  expect(await vaultMetadataStatus(harness, key)).toBe(404);
  expect(await auditCount(harness, key.id, 'key.revoke_requested')).toBe(1);
  expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);
  expect(second.output()).toContain(key.id);
}, 120_000);
