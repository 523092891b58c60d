// The service under test as real processes: an API, a worker and a Kubernetes controller, each
// killable with SIGKILL and restartable on the same port and stores, their output appended to
// files for the log scan.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './random.ts';

const CLI_PATH = fileURLToPath(new URL('../../bin/deploykey.js', import.meta.url));
// Generous: start-up is reported (startTimesMs), not judged, and a loaded machine starts slowly.
const START_TIMEOUT_MS = 120_000;

export type ServiceRole = 'api' | 'worker' | 'controller';

const ARGS: Record<ServiceRole, string[]> = {
  api: ['serve', '--role', 'api'],
  worker: ['serve', '--role', 'worker', '--no-migrate'],
  controller: ['serve', '--role', 'controller', '--no-migrate'],
};
// The line a process logs once it does its work: the API is up when it answers instead.
const READY_LINE: Record<Exclude<ServiceRole, 'api'>, string> = {
  worker: 'deploykey-rotator started',
  // The replica holds the leader lock and starts listing Jobs.
  controller: 'Kubernetes controller leading',
};

export interface ServiceProcess {
  readonly role: ServiceRole;
  readonly logPath: string;
  pid(): number | undefined;
  running(): boolean;
  /** Running and past its start-up (API answering, worker reported started, controller leading). */
  up(): boolean;
  /** How long each start took until the process answered (API) or reported started (worker). */
  readonly startTimesMs: number[];
  /** Starts the process unless `generation` is given and a later kill has superseded it. */
  start(generation?: number): Promise<void>;
  /** SIGKILL, also in the middle of a start; returns the generation a restart should name. */
  kill(): Promise<number>;
  /** SIGTERM, then SIGKILL if it does not stop in time; closes the log file. */
  stop(): Promise<void>;
}

export function createServiceProcess(options: {
  role: ServiceRole;
  env: Record<string, string>;
  logDir: string;
  apiUrl: string;
  /** The CLI to run; bin/deploykey.js (the sources through tsx) unless given. */
  cliPath?: string;
  /** Flags for node itself (e.g. `--cpu-prof`, which NODE_OPTIONS does not accept). */
  nodeArgs?: string[];
}): ServiceProcess {
  const logPath = join(options.logDir, `${options.role}.log`);
  const log: WriteStream = createWriteStream(logPath, { flags: 'a' });
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const startTimesMs: number[] = [];
  let generation = 0;
  let upChild: ChildProcess | undefined;

  const args = ARGS[options.role];

  async function waitUntilUp(started: ChildProcess, output: () => string) {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (started.signalCode === 'SIGKILL') return;
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`${options.role} exited during start-up:\n${output().slice(-2_000)}`);
      }
      if (options.role === 'api') {
        const up = await fetch(`${options.apiUrl}/healthz`).then(
          (response) => response.ok,
          () => false,
        );
        if (up) return;
      } else if (output().includes(READY_LINE[options.role])) {
        return;
      }
      await sleep(100);
    }
    throw new Error(
      `${options.role} did not start within ${START_TIMEOUT_MS} ms:\n${output().slice(-2_000)}`,
    );
  }

  return {
    role: options.role,
    logPath,
    pid: () => child?.pid,
    startTimesMs,
    up: () =>
      upChild !== undefined && upChild === child && child.exitCode === null && child.signalCode === null,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    async start(expected?: number) {
      if (expected !== undefined && expected !== generation) return;
      const started = spawn(
        process.execPath,
        [...(options.nodeArgs ?? []), options.cliPath ?? CLI_PATH, ...args],
        {
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...options.env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child = started;
      let recent = '';
      const capture = (chunk: Buffer) => {
        log.write(chunk);
        recent = (recent + chunk.toString()).slice(-20_000);
      };
      started.stdout?.on('data', capture);
      started.stderr?.on('data', capture);
      exited = new Promise((resolve) => started.once('exit', () => resolve()));
      const begun = Date.now();
      await waitUntilUp(started, () => recent);
      if (started.signalCode === null) {
        startTimesMs.push(Date.now() - begun);
        upChild = started;
      }
    },
    async kill() {
      generation += 1;
      const current = generation;
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      return current;
    },
    async stop() {
      if (child && child.exitCode === null && child.signalCode === null) {
        const current = child;
        current.kill('SIGTERM');
        const timer = setTimeout(() => current.kill('SIGKILL'), 12_000);
        await exited;
        clearTimeout(timer);
      }
      await new Promise<void>((resolve) => log.end(resolve));
    },
  };
}
