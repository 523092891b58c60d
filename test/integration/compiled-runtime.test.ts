// The image runs the compiled CLI (dist/src/cli/main.js), not the sources through tsx: built as the
// image's build stage builds it, it must find what it reads at run time (package.json, migrations/,
// the console's files) and serve like the sources do, and carry none of the sandbox, which only a
// checkout runs.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createServiceProcess } from '../chaos/processes.ts';
import { buildCompiled, CLI_PATH, COMPILED_CLI_PATH, runCli } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { ROOT } from '../support/packaging-files.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
beforeAll(async () => {
  await buildCompiled();
  harness = await startHarness({ worker: false });
}, 60_000);
afterAll(async () => {
  await harness?.close();
});

// Each case is mostly a process of its own: they run side by side.
describe.concurrent('the compiled CLI', () => {
  it('generates the same OpenAPI contract as the sources, with the package version', async ({ expect }) => {
    const result = await runCli(
      ['openapi', '--check', '--output', join(ROOT, 'openapi.yaml')],
      {},
      20_000,
      COMPILED_CLI_PATH,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('applies the migrations from migrations/', async ({ expect }) => {
    let database: TestDatabase | undefined;
    try {
      database = await createTestDatabase();
      const result = await runCli(
        ['migrate'],
        { ...(await harness.childEnv()), DATABASE_URL: database.url },
        20_000,
        COMPILED_CLI_PATH,
      );
      expect(result.code, result.stderr).toBe(0);
      const { rows } = await database.pool.query<{ name: string }>(
        'SELECT name FROM schema_migrations ORDER BY id',
      );
      expect(rows.map((row) => row.name)).toEqual(
        expect.arrayContaining(['001_initial-schema', '002_api-tokens', '003_audit-append-function']),
      );
    } finally {
      await database?.drop();
    }
  });

  it('serves the API and the console', async ({ expect }) => {
    const env = await harness.childEnv();
    const port = 30_000 + Math.floor(Math.random() * 20_000);
    const apiUrl = `http://127.0.0.1:${port}`;
    const api = createServiceProcess({
      role: 'api',
      env: { ...env, PORT: String(port) },
      logDir: harness.standIns.dataDir,
      apiUrl,
      cliPath: COMPILED_CLI_PATH,
    });
    try {
      await api.start();
      const listed = await fetch(`${apiUrl}/v1/keys`, {
        headers: { authorization: `Bearer ${harness.token}` },
      });
      expect(listed.status).toBe(200);
      const page = await fetch(`${apiUrl}/ui/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<html');
    } finally {
      await api.stop();
    }
  });

  it('holds none of the sandbox, and says where the sandbox command runs', async ({ expect }) => {
    const dist = join(ROOT, 'dist');
    expect(existsSync(join(dist, 'sandbox'))).toBe(false);
    const compiled = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.js'),
    );
    expect(compiled.length).toBeGreaterThan(50);
    for (const file of compiled) {
      expect(readFileSync(join(dist, file), 'utf8'), file).not.toMatch(/from ['"][./]*sandbox\//);
    }
    const result = await runCli(['sandbox'], {}, 20_000, COMPILED_CLI_PATH);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('run it from a checkout');
  });
});

describe.concurrent('the sandbox command from a checkout', () => {
  it('runs the sandbox from the sources, as far as reading its own options', async ({ expect }) => {
    const result = await runCli(['sandbox', '--api-port', 'none'], {}, 20_000, CLI_PATH);
    expect(result.stderr).toContain('--api-port must be a port number');
    expect(result.stderr).not.toContain('not part of this build');
    expect(result.code).toBe(2);
  });
});
