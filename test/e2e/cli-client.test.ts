// The `deploykey` client commands run as a GitHub Actions job would run them: the credential is the
// job's OIDC token fetched from a stand-in for ACTIONS_ID_TOKEN_REQUEST_URL, the key clones with real
// git under StrictHostKeyChecking=yes, and completing the job takes the key away again.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SANDBOX_OIDC_ISSUER_ID, SANDBOX_POLICY } from '../../sandbox/stand-ins.ts';
import { runCli } from '../support/cli.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

const REQUEST_TOKEN = `ghs_${randomBytes(16).toString('hex')}`;
// Each test starts the real command a few times, and a start is slow on a loaded 2-core machine.
vi.setConfig({ testTimeout: 180_000 });

let harness: Harness;
let tokenServer: Server;
let requestUrl: string;
let root: string;
let dirs = 0;
const tokenRequests: { authorization: string | undefined; audience: string | null }[] = [];

// Answers like GitHub's token endpoint: the request token as bearer, `audience` in the query, `{ value }`.
async function startTokenServer(): Promise<void> {
  tokenServer = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const audience = url.searchParams.get('audience');
    tokenRequests.push({ authorization: request.headers.authorization, audience });
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (request.headers.authorization !== `Bearer ${REQUEST_TOKEN}`)
      return send(401, { message: 'Unauthorized' });
    if (url.pathname !== '/idtoken' || url.searchParams.get('api-version') !== '2.0' || !audience) {
      return send(400, { message: 'Bad request' });
    }
    harness.standIns.oidc.mint('github-actions', { repository: 'acme/models' }, { audience }).then(
      (value) => send(200, { value }),
      (error: Error) => send(500, { message: error.message }),
    );
  });
  await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', resolve));
  requestUrl = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/idtoken?api-version=2.0`;
}

beforeAll(async () => {
  harness = await startHarness({
    fileConfig: (standIns) => ({
      auth: { oidcIssuers: [{ id: SANDBOX_OIDC_ISSUER_ID, issuer: standIns.oidc.issuer }] },
      policy: SANDBOX_POLICY,
    }),
  });
  await startTokenServer();
  root = await mkdtemp(join(tmpdir(), 'cli-client-'));
});
afterAll(async () => {
  await new Promise((resolve) => tokenServer?.close(resolve));
  await harness?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const githubJob = (runId: string, extra: Record<string, string> = {}) => ({
  DEPLOYKEY_URL: harness.service.url,
  ACTIONS_ID_TOKEN_REQUEST_URL: requestUrl,
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN,
  GITHUB_RUN_ID: runId,
  GITHUB_RUN_ATTEMPT: '1',
  ...extra,
});
const issue = (repo: string, ...more: string[]) => ['issue', '--provider', 'github', '--repo', repo, ...more];
const cli = (args: string[], env: Record<string, string>) => runCli(args, env, 60_000);
const newDir = () => join(root, `d${++dirs}`);
const keyAsAuditor = async (id: string) =>
  (await harness.api('GET', `/v1/keys/${id}`, { token: harness.tokens.auditor! })).body;
const hostKeys = () =>
  harness.standIns.github.state.listKeys(harness.standIns.github.state.findRepository('acme/models')!.id);

/** Runs what `issue` printed the way `eval "$(deploykey issue …)"` would, with no user git/ssh config. */
function runPrinted(script: string, cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

it('a GitHub Actions job gets a key, clones with it, and completing the job revokes it', async () => {
  const out = newDir();
  const issued = await cli(issue('acme/models', '--out', out), githubJob('7001'));
  expect(issued.code, issued.stderr).toBe(0);
  expect(tokenRequests.at(-1)).toMatchObject({
    authorization: `Bearer ${REQUEST_TOKEN}`,
    audience: 'deploykey-rotator',
  });

  const [exportLine, cloneLine, ...rest] = issued.stdout.trimEnd().split('\n');
  expect(rest).toEqual([]);
  expect(exportLine).toBe(
    `export GIT_SSH_COMMAND='ssh -i ${out}/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=${out}/known_hosts -o StrictHostKeyChecking=yes'`,
  );
  const cloneUrl = harness.standIns.github.ssh.cloneUrl('acme/models');
  expect(cloneLine).toBe(`git clone ${cloneUrl}`);
  expect(issued.stdout).not.toContain('PRIVATE KEY');
  expect(issued.stderr).toMatch(/issued key [0-9a-f-]{36} for github acme\/models \(job 7001-1,/);

  expect((await stat(out)).mode & 0o777).toBe(0o700);
  expect((await stat(join(out, 'id_ed25519'))).mode & 0o777).toBe(0o600);
  expect(await readFile(join(out, 'id_ed25519'), 'utf8')).toContain('BEGIN OPENSSH PRIVATE KEY');
  expect((await readFile(join(out, 'known_hosts'), 'utf8')).trim().split('\n')).toEqual(
    harness.standIns.github.ssh.knownHostsLines,
  );
  const sshConfig = await readFile(join(out, 'ssh_config'), 'utf8');
  expect(sshConfig).toContain(
    `Host 127.0.0.1\n  HostName 127.0.0.1\n  Port ${harness.standIns.github.ssh.port}\n  User git\n`,
  );
  expect(sshConfig).toContain(`IdentityFile "${out}/id_ed25519"`);

  const work = newDir();
  await mkdir(work);
  const clone = await runPrinted(issued.stdout, work);
  expect(clone.code, clone.stderr).toBe(0);
  expect(await readFile(join(work, 'models', 'README.md'), 'utf8')).toContain('acme/models');

  const done = await cli(['complete', '--job', '7001-1'], githubJob('7001'));
  expect(done.code, done.stderr).toBe(0);
  expect(done.stdout).toMatch(/^[0-9a-f-]{36}\t(revoking|revoked)\tgithub\tacme\/models\t7001-1\t/);
  expect(done.stderr).toContain('job 7001-1 complete; 1 key(s) being revoked');
  const keyId = done.stdout.split('\t')[0]!;
  await eventually(async () => (await keyAsAuditor(keyId)).status === 'revoked', { what: 'key revoked' });
  expect(hostKeys().filter((key) => key.title.includes(keyId))).toEqual([]);

  const again = await runPrinted(`${exportLine}\ngit clone ${cloneUrl} second`, work);
  expect(again.code).not.toBe(0);
  expect(again.stderr).toMatch(/Permission denied \(publickey\)/);
});

describe('the same job again, --json, list and revoke', () => {
  const env = () => githubJob('7002');
  const out = () => join(root, 'json');
  let keyId: string;

  it('prints one JSON object without the key, and a re-run in the same job gets the same key', async () => {
    const first = await cli(issue('acme/models', '--out', out(), '--json'), env());
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim().split('\n')).toHaveLength(1);
    expect(first.stdout).not.toContain('PRIVATE KEY');
    const issued = JSON.parse(first.stdout);
    expect(Object.keys(issued).sort().join(' ')).toBe(
      'cloneUrl delivery expiresAt gitSshCommand jobId keyId paths provider replayed repository',
    );
    expect(issued).toMatchObject({
      keyId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      jobId: '7002-1',
      delivery: 'response',
      cloneUrl: harness.standIns.github.ssh.cloneUrl('acme/models'),
      gitSshCommand: `ssh -i ${out()}/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=${out()}/known_hosts -o StrictHostKeyChecking=yes`,
      paths: {
        dir: out(),
        privateKey: join(out(), 'id_ed25519'),
        knownHosts: join(out(), 'known_hosts'),
        sshConfig: join(out(), 'ssh_config'),
      },
      replayed: false,
    });
    expect(Date.parse(issued.expiresAt)).toBeGreaterThan(Date.now());
    const privateKey = await readFile(join(out(), 'id_ed25519'), 'utf8');

    const second = await cli(issue('acme/models', '--out', out(), '--json'), env());
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ keyId: issued.keyId, replayed: true });
    expect(second.stderr).toContain(`reusing key ${issued.keyId}`);
    expect(await readFile(join(out(), 'id_ed25519'), 'utf8')).toBe(privateKey);
    expect(hostKeys().filter((key) => key.title.includes(issued.keyId))).toHaveLength(1);
    keyId = issued.keyId;
  });

  it('lists the key, revokes it by id, and says so when a key is not there', async () => {
    const [listed, missing] = await Promise.all([
      cli(['list', '--job', '7002-1', '--json'], env()),
      cli(['revoke', '00000000-0000-4000-8000-000000000000'], env()),
    ]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ id: keyId, status: 'active', repository: 'acme/models', jobId: '7002-1' }),
    ]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toBe(
      'deploykey: 404 key-not-found: no key 00000000-0000-4000-8000-000000000000\n',
    );

    const revoked = await cli(['revoke', keyId], env());
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(
      new RegExp(`^${keyId}\\t(revoking|revoked)\\tgithub\\tacme/models\\t7002-1\\t`),
    );
    await eventually(async () => (await keyAsAuditor(keyId)).status === 'revoked', { what: 'key revoked' });
  });
});

it('a retried step starts afresh after a failed first attempt, and later retries land on that key', async () => {
  const args = issue('acme/models', '--out', newDir(), '--json');
  const fault = { status: 422, count: 1, method: 'POST', pathPrefix: '/repos/acme/models/keys' };
  harness.standIns.github.api.faults.add(fault);
  const failed = await cli(args, githubJob('7004'));
  expect(failed.code, failed.stderr + failed.stdout).toBe(1);
  expect(failed.stderr).toBe('deploykey: 502 host-failed: github failed to register the deploy key\n');
  expect(failed.stdout).toBe('');

  const retried = await cli(args, githubJob('7004'));
  expect(retried.code, retried.stderr).toBe(0);
  expect(retried.stderr).toContain('an earlier attempt for job 7004-1 failed');
  const again = await cli(args, githubJob('7004'));
  expect(again.code, again.stderr).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({
    keyId: JSON.parse(retried.stdout).keyId,
    replayed: true,
  });
  expect(hostKeys().filter((key) => key.title.endsWith(' job=7004-1'))).toHaveLength(1);
});

it('a Kubernetes job uses its projected token file and, with --delivery vault, learns the Vault path', async () => {
  const tokenFile = join(root, 'k8s-token');
  const token = await harness.standIns.oidc.mint('kubernetes', {
    namespace: 'training',
    serviceaccount: 'trainer',
  });
  await writeFile(tokenFile, `${token}\n`);
  const out = newDir();
  const issued = await cli(
    [
      ...['issue', '--provider', 'gitlab', '--repo', 'acme/datasets', '--delivery', 'vault'],
      ...['--k8s-token-file', tokenFile, '--out', out, '--json'],
    ],
    {
      DEPLOYKEY_URL: harness.service.url,
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      HOSTNAME: 'train-7005-x2k9p',
    },
  );
  expect(issued.code, issued.stderr).toBe(0);
  const answer = JSON.parse(issued.stdout);
  // <prefix>/<owner scope>/<job>/<provider>/<repository>
  const path: string = answer.vault.path;
  expect(path).toMatch(/^deploy-keys\/o-[0-9a-f]{24}\/train-7005-x2k9p\/gitlab\/acme\/datasets$/);
  expect(answer).toMatchObject({
    jobId: 'train-7005-x2k9p',
    delivery: 'vault',
    vault: { mount: 'secret', path },
    paths: { privateKey: null, knownHosts: join(out, 'known_hosts') },
  });
  await expect(stat(join(out, 'id_ed25519'))).rejects.toThrow(/ENOENT/);
  expect(issued.stderr).toContain(`vault kv get -mount=secret -field=ssh-privatekey ${path}`);
});

describe('refusals and mistakes', () => {
  it('explains each in one line, with the exit code scripts can tell apart', async () => {
    const out = newDir();
    // Pods take their keys through Vault; the sandbox policy refuses them the key in the response.
    const podTokenFile = join(root, 'pod-token');
    await writeFile(
      podTokenFile,
      await harness.standIns.oidc.mint('kubernetes', { namespace: 'training', serviceaccount: 'trainer' }),
    );
    const url = harness.service.url;
    const [unknownFlag, refused, noCredential, badRequestToken, noJob, noResponse] = await Promise.all([
      cli(issue('acme/models', '--bogus'), githubJob('7003')),
      cli(issue('acme/datasets', '--out', out), githubJob('7003')),
      cli(issue('acme/models', '--k8s-token-file', join(root, 'no-such-token')), {
        DEPLOYKEY_URL: url,
        GITHUB_RUN_ID: '7003',
      }),
      cli(
        issue('acme/models'),
        githubJob('7003', { ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'not-the-request-token' }),
      ),
      cli(issue('acme/models'), { DEPLOYKEY_URL: url }),
      cli(issue('acme/models', '--k8s-token-file', podTokenFile, '--out', newDir()), {
        DEPLOYKEY_URL: url,
        CI_JOB_ID: '7003',
      }),
    ]);

    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr.split('\n').slice(0, 3)).toEqual([
      "deploykey: Unknown option '--bogus'",
      '',
      'usage: deploykey issue --provider P --repo R [--job J] [--ttl 2h] [--out DIR]',
    ]);
    expect(unknownFlag.stdout).toBe('');

    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^deploykey: 403 forbidden-by-policy: .*acme\/datasets.*\n$/);
    await expect(stat(out)).rejects.toThrow(/ENOENT/);

    expect(noCredential.code).toBe(3);
    expect(noCredential.stderr.trim().split('\n')).toHaveLength(1);
    for (const place of [
      'DEPLOYKEY_TOKEN',
      'ACTIONS_ID_TOKEN_REQUEST_URL',
      'DEPLOYKEY_ID_TOKEN',
      'no-such-',
    ]) {
      expect(noCredential.stderr).toContain(place);
    }

    expect(badRequestToken.code).toBe(3);
    expect(badRequestToken.stderr).toContain('GitHub Actions refused the OIDC token request (HTTP 401)');

    expect(noJob.code).toBe(2);
    expect(noJob.stderr.split('\n')[0]).toBe(
      'deploykey: --job is needed here (no GITHUB_RUN_ID, CI_JOB_ID or a Kubernetes pod HOSTNAME found)',
    );

    expect(noResponse.code).toBe(3);
    expect(noResponse.stderr).toMatch(
      /^deploykey: 403 forbidden-by-policy: delivery-not-allowed: .*kubernetes-training-jobs.*: use --delivery vault or wrapped\n$/,
    );
    expect(hostKeys().filter((key) => key.title.endsWith(' job=7003-1'))).toEqual([]);
  });

  it('a provider the service does not know is a usage error: exit 2, naming the configured ones', async () => {
    const typo = await cli(
      ['issue', '--provider', 'githb', '--repo', 'acme/models', '--out', newDir()],
      githubJob('7005'),
    );
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(
      /^deploykey: 400 unknown-provider: provider "githb" is not configured; .*github, gitlab, gitea\n$/,
    );
    expect(typo.stdout).toBe('');
  });
});
