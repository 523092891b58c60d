import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

const VAULT = { VAULT_ADDR: 'http://127.0.0.1:1', VAULT_TOKEN: 'root' };

// Each run loads the whole service, which takes long on a loaded machine: bounds here are generous
// where they are about load, and exact where they are about what the command does.
const LOADED = 60_000;

describe('deploykey serve start-up', { timeout: 150_000 }, () => {
  it('exits 1 at once with one line naming DATABASE_URL when Postgres is unreachable', async () => {
    // `openapi` loads the same modules and builds the same container without touching Postgres: what
    // it takes on this machine right now is the start-up cost, so the bound below is about giving up
    // on Postgres at once (within its 5 s connect timeout), not about how loaded the machine is.
    const startup = await runCli(
      ['openapi', '--output', join(tmpdir(), `openapi-${process.pid}.yaml`)],
      {},
      LOADED,
    );
    expect(startup.code).toBe(0);
    const result = await runCli(
      ['serve'],
      {
        ...VAULT,
        DATABASE_URL: 'postgres://postgres@127.0.0.1:9/nowhere',
      },
      LOADED,
    );
    expect(result.code).toBe(1);
    expect(result.elapsedMs).toBeLessThan(startup.elapsedMs + 7_000);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('DATABASE_URL');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  // The refusals below are each a process start-up and nothing else: they run side by side, after
  // the measured start-up above.
  it.concurrent('exits 1 naming DATABASE_URL when it is malformed', async ({ expect }) => {
    const result = await runCli(['serve'], { ...VAULT, DATABASE_URL: 'not a url' }, LOADED);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('DATABASE_URL');
  });

  it.concurrent('names every missing required setting in one line', async ({ expect }) => {
    const result = await runCli(['serve'], {}, LOADED);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    for (const name of ['DATABASE_URL', 'VAULT_ADDR', 'VAULT_TOKEN']) expect(result.stderr).toContain(name);
  });

  it.concurrent('rejects an unknown flag with a one-line error and the usage', async ({ expect }) => {
    const result = await runCli(['serve', '--colour'], {}, LOADED);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toContain("'--colour'");
    expect(result.stderr).toContain('usage: deploykey');
  });
});
