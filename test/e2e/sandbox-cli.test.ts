// `deploykey sandbox` as the README has a newcomer run it: `--json` piped to jq gets exactly one
// JSON line on stdout, and the human summary on stderr names every stand-in's token and says why a
// demo prints them, with the service's log lines kept out of it (in the file it names).
import { execFileSync, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from '../../scripts/bundles.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createTestRedisPrefix, TEST_REDIS_URL } from '../support/redis.ts';
import { eventually } from '../support/service-harness.ts';

let database: TestDatabase;
let redis: ReturnType<typeof createTestRedisPrefix>;
beforeAll(async () => {
  database = await createTestDatabase();
  redis = createTestRedisPrefix();
});
afterAll(async () => {
  await redis?.cleanup();
  await database?.drop();
});

/** The processes started under `root`, by id, leaving out those named `except`. */
function descendants(root: number, except: string): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((row) => row.trim().split(/\s+/))
    .map(([pid, ppid, comm]) => ({ pid: Number(pid), ppid: Number(ppid), comm }));
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const row of table.filter((r) => r.ppid === parent)) {
      if (row.comm !== except) found.push(row.pid);
      walk(row.pid);
    }
  };
  walk(root);
  return found;
}

const readme = await readFile(join(ROOT, 'README.md'), 'utf8');

/**
 * Runs `command` in bash from the project root until the sandbox says it is running, runs
 * `whileRunning` (which can read what it has printed on stdout), then stops it with Ctrl-C.
 */
async function runSandboxUntilReady(
  command: string,
  whileRunning?: (stdout: () => string) => Promise<void>,
): Promise<{ stdout: string; stderr: string }> {
  const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: redis.prefix,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  const ready = new Promise<void>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      if (stderr.includes('# revoke it')) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await Promise.race([ready, exited]);
  try {
    await whileRunning?.(() => stdout);
  } finally {
    // Ctrl-C for the sandbox alone: jq then reads the end of its input and prints what it has.
    for (const pid of descendants(child.pid!, 'jq')) process.kill(pid, 'SIGINT');
    await exited;
  }
  return { stdout, stderr };
}

it("the README's `sandbox --json | jq` line gets the JSON, and stderr a summary with every token and no log lines", async () => {
  const line = /^(npm run --silent sandbox -- --json[^\n]*\| jq[^\n]*)$/m.exec(readme)?.[1];
  expect(line, 'the README shows the --json command piped to jq').toBeDefined();
  const { stdout, stderr } = await runSandboxUntilReady(line!);

  expect(stderr).toContain('deploykey sandbox is running');
  expect(stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\n$/);
  expect(stderr).not.toMatch(/jq: error|parse error/);
  expect(stderr).toContain('printed because this is a local demo');
  expect(stderr).toContain('"deploykey serve" never prints any');
  expect(stderr).toMatch(/GitHub API +http:\S+ +token: ghp_\S+/);
  expect(stderr).toMatch(/GitLab API +http:\S+ +token: glpat-\S+/);
  expect(stderr).toMatch(/Vault +http:\S+ +token: hvs\.\S+/);
  expect(stderr).not.toMatch(/^\{"level"/m);
  const logFile = /^ {2}logs +(\/\S+\.log)$/m.exec(stderr)?.[1];
  expect(logFile, 'the summary names the log file').toBeDefined();
  expect(await readFile(logFile!, 'utf8')).toMatch(/^\{"level":\d+/m);
  await rm(logFile!, { force: true });
}, 120_000);

/** The status of an HTTPS GET trusting `ca`, or the TLS error's code when the certificate is refused. */
function httpsStatus(url: string, ca?: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { ...(ca ? { ca } : {}) }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

it('`sandbox --json --tls` prints every stand-in, Gitea included, and the CA its HTTPS listeners are signed by', async () => {
  let health: { trusted: number | string; untrusted: number | string } | undefined;
  let caFileText: string | undefined;
  const { stdout } = await runSandboxUntilReady(
    'npm run --silent sandbox -- --json --tls --api-port 0',
    async (printed) => {
      const json = await eventually(async () => printed().includes('\n') && printed(), {
        what: 'the JSON line',
      });
      const { tls } = JSON.parse(json.split('\n')[0]!);
      caFileText = await readFile(tls.caFile, 'utf8');
      health = {
        trusted: await httpsStatus(`${tls.vault}/v1/sys/health`, tls.caCert),
        untrusted: await httpsStatus(`${tls.vault}/v1/sys/health`),
      };
    },
  );
  const line = JSON.parse(stdout.trim().split('\n')[0]!);
  expect(line.gitea).toMatchObject({
    api: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+/),
    token: expect.any(String),
    knownHosts: expect.stringContaining('ssh-'),
  });
  expect(line.tls).toMatchObject({
    github: expect.stringMatching(/^https:/),
    gitlab: expect.stringMatching(/^https:/),
    vault: expect.stringMatching(/^https:/),
  });
  expect(caFileText).toBe(line.tls.caCert);
  expect(health).toEqual({ trusted: 200, untrusted: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
}, 120_000);
