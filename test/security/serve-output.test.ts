// `deploykey serve` prints no secret, at any log level: not its Vault token, the Git host tokens or
// the audit signing key it was started with, nor a caller's token or a private key it handed out,
// whether a request succeeds or fails. (The sandbox's banner prints its demo tokens on purpose.)
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI_PATH } from '../support/cli.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
let env: Record<string, string>;
let child: ChildProcess | undefined;
let output = '';

beforeAll(async () => {
  harness = await startHarness({ worker: false });
  env = { ...(await harness.childEnv()), LOG_LEVEL: 'trace' };
});
afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await harness?.close();
});

it('prints no token, key or signing key while it serves, fails and stops', async () => {
  child = spawn(process.execPath, [CLI_PATH, 'serve'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const url = await eventually(async () => /"url":"(http:\/\/[^"]+)"/.exec(output)?.[1], {
    what: 'serve to log its address',
    timeoutMs: 60_000,
  });
  const call = (method: string, path: string, token: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });

  const issued = await call('POST', '/v1/keys', harness.token, {
    provider: 'github',
    repository: 'acme/models',
    jobId: 'serve-output',
    ttlSeconds: 600,
    delivery: 'response',
  });
  expect(issued.status).toBe(201);
  const { privateKey, id } = (await issued.json()) as { privateKey: string; id: string };
  const wrongToken = `dkr_${'x'.repeat(43)}`;
  expect((await call('GET', '/v1/keys', wrongToken)).status).toBe(401);
  expect((await call('DELETE', `/v1/keys/${id}`, harness.token)).status).toBe(202);
  child.kill('SIGTERM');
  await once(child, 'exit');

  expect(output).toContain('deploykey-rotator started');
  const secrets: [string, string][] = [
    ['VAULT_TOKEN', env.VAULT_TOKEN!],
    ['the GitHub token', env.DEPLOYKEY_HOST_GITHUB_TOKEN!],
    ['the GitLab token', env.DEPLOYKEY_HOST_GITLAB_TOKEN!],
    ['the Gitea token', env.DEPLOYKEY_HOST_GITEA_TOKEN!],
    ['a caller token', harness.token],
    ['a refused token', wrongToken],
    ...harness.standIns.auditSigningKey.privateKeyPem
      .split('\n')
      .filter((line) => line.length > 20 && !line.startsWith('-----'))
      .map((line): [string, string] => ['the audit signing key', line]),
    ...privateKey
      .split('\n')
      .filter((line) => line.length > 20 && !line.startsWith('-----'))
      .map((line): [string, string] => ['the private key', line]),
  ];
  for (const [what, secret] of secrets) expect(output.includes(secret), `serve printed ${what}`).toBe(false);
}, 120_000);
