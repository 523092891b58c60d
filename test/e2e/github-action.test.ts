// The GitHub Action (action/), its committed bundle run as GitHub's runner runs it: the job's OIDC
// token fetched by the action, a key written under RUNNER_TEMP, GIT_SSH_COMMAND exported, a real
// `git clone` with it, and the `post` step revoking the key, also when `main` failed.
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import { runGit } from '../support/git-client.ts';
import {
  type ActionRun,
  runAction,
  startTokenEndpoint,
  type TokenEndpoint,
} from '../support/github-runner.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

vi.setConfig({ testTimeout: 120_000 });

let harness: Harness;
let tokens: TokenEndpoint;
let work: string;

beforeAll(async () => {
  harness = await startHarness({ fileConfig: (standIns) => sandboxAuthConfig(standIns) });
  tokens = await startTokenEndpoint(harness.standIns.oidc, { repository: 'acme/models' });
  work = await mkdtemp(join(tmpdir(), 'github-action-'));
});
afterAll(async () => {
  await tokens?.close();
  await harness?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const job = (runId: string, extra: { runnerTemp?: string } = {}) => ({
  repository: 'acme/models',
  runId,
  tokens,
  ...extra,
});
const keyAsAuditor = async (id: string) =>
  (await harness.api('GET', `/v1/keys/${id}`, { token: harness.tokens.auditor! })).body;
const keysOfJob = async (jobId: string) =>
  (await harness.api('GET', `/v1/keys?jobId=${jobId}`, { token: harness.tokens.auditor! })).body.items as {
    id: string;
    status: string;
  }[];
const hostKeys = () =>
  harness.standIns.github.state.listKeys(harness.standIns.github.state.findRepository('acme/models')!.id);

/** The log as GitHub shows it: workflow commands are consumed, masked values hidden. */
function visibleLog(step: { stdout: string; stderr: string }): string {
  const lines = `${step.stdout}\n${step.stderr}`.split('\n');
  const masks = lines.filter((l) => l.startsWith('::add-mask::')).map((l) => l.slice('::add-mask::'.length));
  return lines
    .filter((l) => !l.startsWith('::add-mask::'))
    .map((l) => masks.reduce((text, mask) => text.replaceAll(mask, '***'), l))
    .join('\n');
}

describe('the GitHub Action', () => {
  it('takes a job from its OIDC token to a clone, and its post step revokes the key', async () => {
    let cloned = { code: -1, stderr: '' };
    let keyMode = 0;
    const run: ActionRun = await runAction(
      { url: harness.service.url, ttl: '30m' },
      job('8101'),
      async (main) => {
        expect(main.main.code, main.main.stdout + main.main.stderr).toBe(0);
        keyMode = (await stat(join(main.outputs['key-dir']!, 'id_ed25519'))).mode & 0o777;
        // A later step of the job: GITHUB_ENV's GIT_SSH_COMMAND in its environment, as the runner sets it.
        cloned = await runGit(['clone', main.outputs['clone-url']!, join(work, 'models')], {
          sshCommand: main.env.GIT_SSH_COMMAND!,
        });
      },
    );
    expect(tokens.audiences).toEqual(['deploykey-rotator', 'deploykey-rotator']);
    expect(keyMode).toBe(0o600);
    expect(run.outputs['key-dir']!.startsWith(`${run.runnerTemp}/`)).toBe(true);
    expect(run.env.GIT_SSH_COMMAND).toContain('-o StrictHostKeyChecking=yes');
    expect(cloned.code, cloned.stderr).toBe(0);
    expect(await readdir(join(work, 'models'))).toContain('README.md');

    const log = visibleLog(run.main) + visibleLog(run.post);
    expect(log).not.toMatch(/PRIVATE KEY|eyJ/);
    expect(run.main.stdout).toMatch(/^::add-mask::eyJ/m);

    const key = await keyAsAuditor(run.outputs['key-id']!);
    expect(key).toMatchObject({
      repository: 'acme/models',
      jobId: run.outputs['job-id'],
      delivery: 'response',
    });
    expect(run.post.code, run.post.stdout).toBe(0);
    expect(run.post.stdout).toContain(`revoking key ${key.id}`);
    await eventually(async () => (await keyAsAuditor(key.id)).status === 'revoked', { what: 'key revoked' });
    expect(hostKeys().filter((k) => k.title.includes(key.id))).toEqual([]);
    await expect(stat(run.outputs['key-dir']!)).rejects.toThrow(/ENOENT/);
  });

  it('revokes in its post step the key issued by a main step that then failed', async () => {
    // RUNNER_TEMP a file, not a directory: main gets its key, then cannot write it.
    const notADirectory = join(work, 'runner-temp-file');
    await writeFile(notADirectory, '');
    const run = await runAction({ url: harness.service.url }, job('8102', { runnerTemp: notADirectory }));
    expect(run.main.code).toBe(1);
    expect(run.main.stdout).toMatch(/^::error::deploykey: .*ENOTDIR/m);
    const [key] = await keysOfJob(run.state.jobId!);
    expect(key, 'main registered a key before failing').toBeDefined();

    expect(run.post.code, run.post.stdout).toBe(0);
    await eventually(async () => (await keyAsAuditor(key!.id)).status === 'revoked', { what: 'key revoked' });
    expect(hostKeys().filter((k) => k.title.includes(key!.id))).toEqual([]);
  });

  it("gives each use its own job, so one job finishing does not take another job's key", async () => {
    let firstKeyAfterSecondJob = '';
    const first = await runAction({ url: harness.service.url }, job('8103'), async ({ outputs }) => {
      const second = await runAction({ url: harness.service.url }, job('8103'));
      expect(second.post.code).toBe(0);
      expect(second.outputs['key-id']).not.toBe(outputs['key-id']);
      firstKeyAfterSecondJob = (await keyAsAuditor(outputs['key-id']!)).status;
    });
    expect(firstKeyAfterSecondJob).toBe('active');
    expect(first.state.jobId).toMatch(/^8103-1-train-[0-9a-f]{8}$/);
    expect(first.post.code).toBe(0);
  });

  it('refuses a missing url before asking for anything, and its post step has nothing to do', async () => {
    const before = tokens.audiences.length;
    const run = await runAction({}, job('8104'));
    expect(run.main.code).toBe(1);
    expect(run.main.stdout).toContain('::error::deploykey: input url must be the service');
    expect(run.post.code).toBe(0);
    expect(run.post.stdout).toContain('nothing to revoke');
    expect(tokens.audiences.length).toBe(before);
  });
});
