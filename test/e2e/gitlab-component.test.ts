// The GitLab CI/CD component (templates/deploykey.yml) and the plain include template
// (gitlab/deploykey.gitlab-ci.yml), run as GitLab runs a job that extends them: the client
// installed from its tarball, the key issued with the job's id token, the repository cloned in
// before_script, and after_script revoking the key, also when the job's script failed; with no
// client in the image and none named, the job stops and says so instead of guessing an npm name.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import { ROOT } from '../../scripts/bundles.ts';
import { type ClientTarball, packClient } from '../support/client-package.ts';
import {
  type GitlabJobRun,
  loadInclude,
  type Pipeline,
  resolveJob,
  runGitlabJob,
} from '../support/gitlab-runner.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

vi.setConfig({ testTimeout: 180_000 });

let harness: Harness;
let tarball: ClientTarball;
let npmPrefix: string;

beforeAll(async () => {
  [harness, tarball] = await Promise.all([
    startHarness({ fileConfig: (standIns) => sandboxAuthConfig(standIns) }),
    packClient(),
  ]);
  npmPrefix = await mkdtemp(join(tmpdir(), 'gitlab-npm-prefix-'));
}, 180_000);
afterAll(async () => {
  await harness?.close();
  if (npmPrefix) await rm(npmPrefix, { recursive: true, force: true });
  if (tarball) await rm(join(tarball.path, '..'), { recursive: true, force: true });
});

// The runner's global npm prefix, so `npm install --global` stays out of this machine's own.
const runnerEnv = () => ({ NPM_CONFIG_PREFIX: npmPrefix, PATH: `${npmPrefix}/bin:${process.env.PATH}` });

async function keysOfJob(jobId: string) {
  const answer = await harness.api('GET', `/v1/keys?jobId=${jobId}`, { token: harness.tokens.auditor! });
  return answer.body.items as { id: string; status: string; repository: string; caller: string }[];
}
const hostKeys = () =>
  harness.standIns.gitlab.state.listKeys(harness.standIns.gitlab.state.findRepository('acme/models')!.id);

async function expectRevoked(run: GitlabJobRun) {
  const [key, ...more] = await keysOfJob(run.jobId);
  expect(more).toEqual([]);
  expect(key).toMatchObject({ repository: 'acme/models' });
  expect(key!.caller).toMatch(/^oidc:/);
  await eventually(async () => (await keysOfJob(run.jobId))[0]!.status === 'revoked', {
    what: 'key revoked',
  });
  expect(hostKeys().filter((k) => k.title.includes(key!.id))).toEqual([]);
}

const withJob = (included: Pipeline, script: string[]): Pipeline => ({
  ...included,
  train: { extends: '.deploykey', script },
});

describe('the GitLab CI/CD component', () => {
  const component = () =>
    loadInclude(join(ROOT, 'templates/deploykey.yml'), { url: harness.service.url, client: tarball.path });

  it('takes a job from its id token to a clone, and after_script revokes the key', async () => {
    const pipeline = withJob(await component(), [
      'test -f models/README.md',
      'git -C models log --oneline -1',
    ]);
    const run = await runGitlabJob(resolveJob(pipeline, 'train'), {
      oidc: harness.standIns.oidc,
      projectPath: 'acme/models',
      env: runnerEnv(),
    });
    expect(run.script.code, run.script.output).toBe(0);
    expect(run.script.output).not.toContain('PRIVATE KEY');
    expect(run.afterScript.code, run.afterScript.output).toBe(0);
    await expectRevoked(run);
  });

  it('revokes the key in after_script when the job failed', async () => {
    const pipeline = withJob(await component(), ['echo training fails', 'exit 3']);
    const run = await runGitlabJob(resolveJob(pipeline, 'train'), {
      oidc: harness.standIns.oidc,
      projectPath: 'acme/models',
      env: runnerEnv(),
    });
    expect(run.script.code).toBe(3);
    expect(run.afterScript.code, run.afterScript.output).toBe(0);
    await expectRevoked(run);
  });

  it('in an image without the client and with no client input, installs nothing and says what to do', async () => {
    // An npm name as default would install whatever has that name on the public registry; the job
    // stops before npm runs, and before it asks for a key.
    const emptyPrefix = await mkdtemp(join(tmpdir(), 'gitlab-npm-empty-'));
    try {
      const included = await loadInclude(join(ROOT, 'templates/deploykey.yml'), { url: harness.service.url });
      const run = await runGitlabJob(resolveJob(withJob(included, ['echo never here']), 'train'), {
        oidc: harness.standIns.oidc,
        projectPath: 'acme/models',
        env: { NPM_CONFIG_PREFIX: emptyPrefix, PATH: `${emptyPrefix}/bin:${process.env.PATH}` },
      });
      expect(run.script.code).toBe(1);
      expect(run.script.output).toContain(
        "deploykey: the image has no deploykey command; install the client in the image, or set the component's client input",
      );
      expect(run.script.output).not.toContain('never here');
      expect(await readdir(emptyPrefix)).toEqual([]);
      expect(await keysOfJob(run.jobId)).toEqual([]);
    } finally {
      await rm(emptyPrefix, { recursive: true, force: true });
    }
  });

  it('refuses to run without its required url input', async () => {
    await expect(loadInclude(join(ROOT, 'templates/deploykey.yml'), {})).rejects.toThrow(
      /input url is required/,
    );
  });
});

describe('the plain include template', () => {
  it('does the same with CI/CD variables', async () => {
    const pipeline = withJob(await loadInclude(join(ROOT, 'gitlab/deploykey.gitlab-ci.yml')), [
      'test -f models/README.md',
    ]);
    const run = await runGitlabJob(resolveJob(pipeline, 'train'), {
      oidc: harness.standIns.oidc,
      projectPath: 'acme/models',
      env: { ...runnerEnv(), DEPLOYKEY_URL: harness.service.url, DEPLOYKEY_CLIENT: tarball.path },
    });
    expect(run.script.code, run.script.output).toBe(0);
    expect(run.afterScript.code, run.afterScript.output).toBe(0);
    await expectRevoked(run);
  });

  it('without DEPLOYKEY_CLIENT in an image without the client, installs nothing and says what to do', async () => {
    const emptyPrefix = await mkdtemp(join(tmpdir(), 'gitlab-npm-empty-'));
    try {
      const pipeline = withJob(await loadInclude(join(ROOT, 'gitlab/deploykey.gitlab-ci.yml')), [
        'echo never here',
      ]);
      const run = await runGitlabJob(resolveJob(pipeline, 'train'), {
        oidc: harness.standIns.oidc,
        projectPath: 'acme/models',
        env: {
          NPM_CONFIG_PREFIX: emptyPrefix,
          PATH: `${emptyPrefix}/bin:${process.env.PATH}`,
          DEPLOYKEY_URL: harness.service.url,
        },
      });
      expect(run.script.code).toBe(1);
      expect(run.script.output).toContain(
        'deploykey: the image has no deploykey command; install the client in the image, or set DEPLOYKEY_CLIENT',
      );
      expect(await readdir(emptyPrefix)).toEqual([]);
      expect(await keysOfJob(run.jobId)).toEqual([]);
    } finally {
      await rm(emptyPrefix, { recursive: true, force: true });
    }
  });
});
