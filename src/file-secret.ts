// A credential kept in a file (an App private key, a host token, an AppRole secret id, a webhook
// secret). Kubernetes rotates a mounted Secret in place by swapping a symlink, which file watchers
// miss, so the file is looked at again on use: a stat at most once per `recheckMs`, a read only when
// the stat changed. The value itself is never logged.
import { readFileSync, statSync } from 'node:fs';
import type { Clock } from './time.ts';

export interface FileSecret {
  readonly path: string;
  /** The file's current content, trimmed; the last good value while the file cannot be read. */
  value(): string;
  /** Called with the new value after the file changed (not on the first read). */
  onChange(listener: (value: string) => void): void;
}

export interface FileSecretOptions {
  clock: Clock;
  recheckMs?: number;
  /** Told when a re-read fails; the last good value stays in use. */
  onError?: (error: Error) => void;
}

const stamp = (path: string) => {
  const stat = statSync(path);
  return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
};

function readValue(path: string): string {
  const value = readFileSync(path, 'utf8').trim();
  if (value === '') throw new Error(`${path} is empty`);
  return value;
}

/** Reads the file now (throwing if it is missing or empty, so start-up fails on a bad path). */
export function fileSecret(path: string, options: FileSecretOptions): FileSecret {
  const recheckMs = options.recheckMs ?? 1_000;
  const listeners: ((value: string) => void)[] = [];
  let current = readValue(path);
  let seen = stamp(path);
  let checkedAt = options.clock().getTime();

  const recheck = () => {
    const now = options.clock().getTime();
    if (now - checkedAt < recheckMs) return;
    checkedAt = now;
    try {
      const latest = stamp(path);
      if (latest === seen) return;
      const value = readValue(path);
      seen = latest;
      if (value === current) return;
      current = value;
      for (const listener of listeners) listener(value);
    } catch (error) {
      options.onError?.(error as Error);
    }
  };

  return {
    path,
    value() {
      recheck();
      return current;
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };
}
