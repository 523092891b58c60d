import { mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileSecret } from '../../src/file-secret.ts';

let dir: string;
let now: number;
const clock = () => new Date(now);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'file-secret-'));
  now = Date.UTC(2030, 0, 1);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('a credential kept in a file', () => {
  it('refuses a missing or empty file at once, so a bad path stops start-up', () => {
    expect(() => fileSecret(join(dir, 'absent'), { clock })).toThrow(/ENOENT/);
    writeFileSync(join(dir, 'empty'), '\n');
    expect(() => fileSecret(join(dir, 'empty'), { clock })).toThrow(/is empty/);
  });

  it('picks up a rewritten file on the next use after the recheck interval, and says so once', () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'first\n');
    const changes: string[] = [];
    const secret = fileSecret(path, { clock, recheckMs: 1_000 });
    secret.onChange((value) => changes.push(value));
    expect(secret.value()).toBe('first');

    writeFileSync(path, 'second-value\n');
    now += 999;
    expect(secret.value()).toBe('first');
    now += 1;
    expect(secret.value()).toBe('second-value');
    now += 5_000;
    expect(secret.value()).toBe('second-value');
    expect(changes).toEqual(['second-value']);
  });

  it('follows a Kubernetes-style symlink swap of the mounted Secret', () => {
    const mount = join(dir, 'mount');
    writeFileSync(join(dir, 'v1'), 'old-key');
    writeFileSync(join(dir, 'v2'), 'new-key');
    symlinkSync(join(dir, 'v1'), mount);
    const secret = fileSecret(mount, { clock, recheckMs: 10 });
    expect(secret.value()).toBe('old-key');

    symlinkSync(join(dir, 'v2'), join(dir, 'mount.tmp'));
    renameSync(join(dir, 'mount.tmp'), mount);
    now += 10;
    expect(secret.value()).toBe('new-key');
  });

  it('keeps the last good value while the file is gone, and reports the failure', () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'kept');
    const errors: string[] = [];
    const secret = fileSecret(path, { clock, recheckMs: 10, onError: (e) => errors.push(e.message) });
    unlinkSync(path);
    now += 10;
    expect(secret.value()).toBe('kept');
    expect(errors).toHaveLength(1);
    expect(errors[0]).not.toContain('kept');
  });
});
