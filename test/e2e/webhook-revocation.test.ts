// A CI job's key dies with its job even when the job never calls `complete`: the platform's own
// job-end webhook (signed, delivered by the stand-in to the hook a user configured) revokes it,
// and within 2 s the host and Vault no longer hold it and the real `git` client is refused.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import {
  endGitlabJob,
  GITHUB_WEBHOOK_SECRET,
  GITLAB_WEBHOOK_TOKEN,
  githubApi,
  type StartedJob,
  startGithubRun,
  startGitlabPipeline,
  WEBHOOK_SECRETS_ENV,
} from '../support/ci-webhooks.ts';
import { gitSshCommand, runGit, writeClientKey, writeKnownHosts } from '../support/git-client.ts';
import { runProcess } from '../support/process.ts';
import {
  auditDetails,
  hostHasKey,
  type IssuedKey,
  type Provider,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

vi.setConfig({ testTimeout: 60_000 });

const REVOKED_WITHIN_MS = 2_000;
const EXAMPLES = fileURLToPath(new URL('../../examples/webhooks/', import.meta.url));
let harness: Harness;
let root: string;

beforeAll(async () => {
  harness = await startHarness({
    fileConfig: (standIns) => sandboxAuthConfig(standIns),
    overrides: { env: WEBHOOK_SECRETS_ENV },
  });
  root = await mkdtemp(join(tmpdir(), 'webhook-e2e-'));
  // As the README says: examples/webhooks/ makes the organisation's and the group's hooks.
  const { github, gitlab } = harness.standIns;
  const common = { PATH: process.env.PATH ?? '', DEPLOYKEY_URL: harness.service.url };
  const made = await Promise.all([
    runProcess('sh', [join(EXAMPLES, 'github-webhook.sh'), 'acme'], {
      env: {
        ...common,
        GITHUB_API_URL: github.api.url,
        GITHUB_TOKEN: github.token,
        DEPLOYKEY_WEBHOOK_SECRET: GITHUB_WEBHOOK_SECRET,
      },
    }),
    runProcess('sh', [join(EXAMPLES, 'gitlab-webhook.sh'), 'group', 'acme'], {
      env: {
        ...common,
        GITLAB_URL: new URL(gitlab.api.url).origin,
        GITLAB_TOKEN: gitlab.token,
        DEPLOYKEY_WEBHOOK_SECRET: GITLAB_WEBHOOK_TOKEN,
      },
    }),
  ]);
  for (const script of made) expect(script.code, script.output).toBe(0);
});
afterAll(async () => {
  await harness?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

interface CiKey {
  key: IssuedKey & { binding: Record<string, string> };
  sshCommand: string;
}

/** What the job's first step does: ask with its OIDC token, write the key, clone strictly. */
async function issueAndClone(provider: Provider, job: StartedJob): Promise<CiKey> {
  const answer = await harness.api('POST', '/v1/keys', {
    token: job.idToken,
    body: {
      provider,
      repository: 'acme/models',
      jobId: `ci-${provider}-${job.jobId}`,
      ttlSeconds: 1_800,
      delivery: 'response',
    },
  });
  expect(answer.status, answer.text).toBe(201);
  const key = answer.body as CiKey['key'];
  const keyPath = await writeClientKey(root, key.privateKey!);
  const sshCommand = gitSshCommand(keyPath, await writeKnownHosts(root, key.knownHosts));
  expect(sshCommand).toContain('StrictHostKeyChecking=yes');
  const dir = join(root, `clone-${key.id}`);
  const clone = await runGit(['clone', key.cloneUrl, dir], { sshCommand });
  expect(clone.code, clone.stderr).toBe(0);
  expect(await readdir(dir)).toContain('README.md');
  return { key, sshCommand };
}

/** Polls (no sleeping past the moment) until the host and Vault have both let go of the key. */
async function msUntilGone(key: IssuedKey, since: number): Promise<number> {
  await eventually(
    async () => !hostHasKey(harness, key) && (await vaultMetadataStatus(harness, key)) === 404,
    { timeoutMs: 10_000, intervalMs: 20, what: `key ${key.id} gone from host and Vault` },
  );
  return performance.now() - since;
}

/** The job's clone is refused by the host, and that refusal came within 2 s of the job's end. */
async function expectCloneRefused({ key, sshCommand }: CiKey, since: number) {
  const refused = await runGit(['clone', key.cloneUrl, join(root, `refused-${key.id}`)], { sshCommand });
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain('Permission denied (publickey)');
  expect(performance.now() - since).toBeLessThanOrEqual(REVOKED_WITHIN_MS);
}

async function expectEndedByWebhook(key: IssuedKey, conclusion: string) {
  const view = (await harness.api('GET', `/v1/keys/${key.id}`, { token: harness.tokens.auditor! })).body;
  expect(view).toMatchObject({ status: 'revoked', revokeReason: 'job-ended' });
  // One revoke request, the webhook's: a `complete` call would have asked first, as `job-completed`.
  const [requested, ...again] = await auditDetails(harness, key.id, 'key.revoke_requested');
  expect(again).toEqual([]);
  expect(requested).toMatchObject({ reason: 'job-ended', conclusion, deliveryId: expect.any(String) });
}

describe('revocation without complete, end to end', () => {
  it('a GitHub Actions run cancelled through the REST API takes its key with it', async () => {
    const [job] = await startGithubRun(harness.standIns, 'acme/models');
    const [otherRun] = await startGithubRun(harness.standIns, 'acme/models');
    const ci = await issueAndClone('github', job!);
    const bystander = await issueAndClone('github', otherRun!);
    expect(ci.key.binding).toMatchObject({
      kind: 'github-actions',
      repository: 'acme/models',
      runId: String(job!.runId),
      runAttempt: '1',
      checkRunId: String(job!.jobId),
    });

    const since = performance.now();
    const cancelled = await githubApi(harness.standIns).rest.actions.cancelWorkflowRun({
      owner: 'acme',
      repo: 'models',
      run_id: job!.runId,
    });
    expect(cancelled.status).toBe(202);
    expect(await msUntilGone(ci.key, since)).toBeLessThanOrEqual(REVOKED_WITHIN_MS);
    await expectCloneRefused(ci, since);
    await expectEndedByWebhook(ci.key, 'cancelled');
    // Another run of the same workflow and repository goes on, and so does its key.
    expect(hostHasKey(harness, bystander.key)).toBe(true);
    expect(await vaultMetadataStatus(harness, bystander.key)).toBe(200);
  });

  for (const how of ['failed', 'time-out'] as const) {
    it(`a GitLab CI job that ${how === 'failed' ? 'fails' : 'times out'} takes its key with it`, async () => {
      const [job, sibling] = await startGitlabPipeline(harness.standIns, 'acme/models', ['train', 'lint']);
      const ci = await issueAndClone('gitlab', job!);
      const bystander = await issueAndClone('gitlab', sibling!);
      expect(ci.key.binding).toMatchObject({
        kind: 'gitlab-ci',
        project: 'acme/models',
        jobId: String(job!.jobId),
        pipelineId: String(job!.runId),
      });

      const since = performance.now();
      await endGitlabJob(harness.standIns, job!.jobId, how);
      expect(await msUntilGone(ci.key, since)).toBeLessThanOrEqual(REVOKED_WITHIN_MS);
      await expectCloneRefused(ci, since);
      await expectEndedByWebhook(ci.key, 'failed');
      // The pipeline goes on with its other job, whose key still clones.
      expect(hostHasKey(harness, bystander.key)).toBe(true);
      const still = await runGit(['clone', bystander.key.cloneUrl, join(root, `still-${how}`)], bystander);
      expect(still.code, still.stderr).toBe(0);
    });
  }
});
