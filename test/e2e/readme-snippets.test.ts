// The README's CI snippets, run as written against the sandbox with the environment each CI
// platform gives a job: the curl calls, the lean client in a shell, the GitHub Actions steps (the
// action run as GitHub's runner runs it) and the GitLab CI job (the component included).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { SANDBOX_POLICY, sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import { ROOT } from '../../scripts/bundles.ts';
import { type ClientTarball, installClient, packClient } from '../support/client-package.ts';
import { runAction, startTokenEndpoint, type TokenEndpoint } from '../support/github-runner.ts';
import { loadInclude, type Pipeline, resolveJob, runGitlabJob } from '../support/gitlab-runner.ts';
import { runProcess } from '../support/process.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

vi.setConfig({ testTimeout: 180_000 });

const README = await readFile(join(ROOT, 'README.md'), 'utf8');
/** The fenced block of `language` whose first line starts with `firstLine`. */
function snippet(language: string, firstLine: string): string {
  const blocks = [...README.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map(
    (m) => m[1]!,
  );
  const found = blocks.find((block) => block.startsWith(firstLine));
  if (!found) throw new Error(`README has no ${language} block starting "${firstLine}"`);
  return found;
}

let harness: Harness;
let tarball: ClientTarball;
let clientFolder: string;
let work: string;

beforeAll(async () => {
  [harness, tarball] = await Promise.all([
    startHarness({
      fileConfig: (standIns) => ({
        ...sandboxAuthConfig(standIns),
        policy: [
          ...SANDBOX_POLICY,
          {
            name: 'scripts',
            match: { issuer: 'api-token', token: 'ci' },
            allow: { providers: ['*'], repositories: ['acme/*'], deliveries: ['response'] },
          },
        ],
      }),
    }),
    packClient(),
  ]);
  clientFolder = await installClient(tarball.path);
  work = await mkdtemp(join(tmpdir(), 'readme-'));
}, 180_000);
afterAll(async () => {
  await harness?.close();
  for (const dir of [clientFolder, work, tarball && join(tarball.path, '..')]) {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
});

/** A CI job's shell (`bash -eo pipefail`, as GitHub's `run:` and GitLab's runner use) with the client on PATH. */
async function bash(script: string, env: Record<string, string>) {
  const cwd = await mkdtemp(join(work, 'job-'));
  return runProcess('bash', ['-eo', 'pipefail', '-c', script], {
    cwd,
    env: {
      PATH: `${join(clientFolder, 'node_modules/.bin')}:${process.env.PATH}`,
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      ...env,
    },
  });
}

const keysOfJob = async (jobId: string) =>
  (await harness.api('GET', `/v1/keys?jobId=${jobId}`, { token: harness.tokens.auditor! })).body.items as {
    id: string;
    status: string;
  }[];
async function expectJobRevoked(jobId: string) {
  expect((await keysOfJob(jobId)).length).toBe(1);
  await eventually(async () => (await keysOfJob(jobId)).every((k) => k.status === 'revoked'), {
    what: `job ${jobId} revoked`,
  });
}

describe('README snippets', () => {
  it('the curl calls issue a key, clone with it once, and complete the job', async () => {
    const run = await bash(snippet('sh', '# Issue a key for one job'), {
      DEPLOYKEY_URL: harness.service.url,
      TOKEN: harness.token,
      CI_JOB_ID: '5501',
    });
    expect(run.code, run.output).toBe(0);
    await expectJobRevoked('5501');
  });

  it('the lean client in a shell clones once and completes the job', async () => {
    const run = await bash(snippet('sh', '# A CI job with the client installed'), {
      DEPLOYKEY_URL: harness.service.url,
      DEPLOYKEY_TOKEN: harness.token,
      CI_JOB_ID: '5502',
    });
    expect(run.code, run.output).toBe(0);
    expect(run.output).not.toContain('already exists');
    await expectJobRevoked('5502');
  });

  it('the GitHub Actions steps clone with the action and its post step revokes the key', async () => {
    const tokens: TokenEndpoint = await startTokenEndpoint(harness.standIns.oidc, {
      repository: 'acme/models',
    });
    try {
      const workflow = parse(snippet('yaml', '# GitHub Actions')) as {
        permissions: Record<string, string>;
        steps: { uses?: string; id?: string; with?: Record<string, string>; run?: string }[];
      };
      expect(workflow.permissions['id-token']).toBe('write');
      const [action, ...runs] = workflow.steps;
      expect(action!.uses).toMatch(/\/action@v1$/);
      const vars = { DEPLOYKEY_URL: harness.service.url };
      const evaluate = (text: string, outputs: Record<string, string> = {}) =>
        text.replace(/\$\{\{ ([^}]+) \}\}/g, (_m, expression: string) => {
          const [, scope, name] = /^(vars|steps\.\w+\.outputs)\.([\w-]+)$/.exec(expression.trim()) ?? [];
          const value = scope === 'vars' ? vars[name as keyof typeof vars] : outputs[name ?? ''];
          if (value === undefined) throw new Error(`cannot evaluate ${expression}`);
          return value;
        });
      const stepResults: { code: number | null; output: string }[] = [];
      const job = await runAction(
        Object.fromEntries(Object.entries(action!.with ?? {}).map(([k, v]) => [k, evaluate(String(v))])),
        { repository: 'acme/models', runId: '5503', tokens },
        async ({ main, env, outputs, runnerTemp }) => {
          expect(main.code, main.stdout).toBe(0);
          for (const step of runs)
            stepResults.push(await bash(evaluate(step.run!, outputs), { ...env, RUNNER_TEMP: runnerTemp }));
        },
      );
      expect(
        stepResults.map((r) => r.code),
        stepResults.map((r) => r.output).join('\n'),
      ).toEqual(runs.map(() => 0));
      expect(job.post.code, job.post.stdout).toBe(0);
      await expectJobRevoked(job.state.jobId!);
    } finally {
      await tokens.close();
    }
  });

  it('the GitLab CI job clones with the component and its after_script revokes the key', async () => {
    const pipeline = parse(snippet('yaml', '# GitLab CI')) as Pipeline & {
      include: { component: string; inputs: Record<string, string> }[];
    };
    const [include] = pipeline.include;
    expect(include!.component).toMatch(/\/deploykey-rotator\/deploykey@1$/);
    // The one substitution: the service's address in place of the example's.
    const inputs = { ...include!.inputs, url: harness.service.url };
    const { include: _, ...jobs } = pipeline;
    const merged = {
      ...(await loadInclude(join(ROOT, 'templates/deploykey.yml'), inputs)),
      ...jobs,
    } as Pipeline;
    const run = await runGitlabJob(resolveJob(merged, 'train'), {
      oidc: harness.standIns.oidc,
      projectPath: 'acme/models',
      env: { PATH: `${join(clientFolder, 'node_modules/.bin')}:${process.env.PATH}` },
    });
    expect(run.script.code, run.script.output).toBe(0);
    expect(run.afterScript.code, run.afterScript.output).toBe(0);
    await expectJobRevoked(run.jobId);
  });
});
