import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

const VAULT = { VAULT_ADDR: 'http://127.0.0.1:1', VAULT_TOKEN: 'root' };

describe('deploykey serve start-up', () => {
  it('exits 1 within 10 s with one line naming DATABASE_URL when Postgres is unreachable', async () => {
    const result = await runCli(['serve'], {
      ...VAULT,
      DATABASE_URL: 'postgres://postgres@127.0.0.1:9/nowhere',
    });
    expect(result.code).toBe(1);
    expect(result.elapsedMs).toBeLessThan(10_000);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('DATABASE_URL');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 1 naming DATABASE_URL when it is malformed', async () => {
    const result = await runCli(['serve'], { ...VAULT, DATABASE_URL: 'not a url' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('DATABASE_URL');
  });

  it('names every missing required setting in one line', async () => {
    const result = await runCli(['serve'], {});
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    for (const name of ['DATABASE_URL', 'VAULT_ADDR', 'VAULT_TOKEN']) expect(result.stderr).toContain(name);
  });

  it('rejects an unknown flag with a one-line error and the usage', async () => {
    const result = await runCli(['serve', '--colour'], {});
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toContain("'--colour'");
    expect(result.stderr).toContain('usage: deploykey');
  });
});
