import { describe, expect, it } from 'vitest';
import type { Caller } from '../../src/keys/caller.ts';
import { ciBindingOf } from '../../src/keys/ci-binding.ts';

const caller = (kind: string, issuer: string, claims: Record<string, unknown>): Caller => ({
  id: `oidc:${issuer}:sub`,
  actor: `${issuer}:sub`,
  role: 'issuer',
  subject: { issuer, claims },
  details: { kind },
});

describe('ciBindingOf', () => {
  it('binds a GitHub Actions caller to its repository, run attempt and job', () => {
    const claims = { repository: 'Acme/Models', run_id: '501', run_attempt: '2', check_run_id: '9001' };
    expect(ciBindingOf(caller('github-actions', 'actions', claims))).toEqual({
      kind: 'github-actions',
      host: 'github',
      repository: 'acme/models',
      runId: '501',
      runAttempt: '2',
      checkRunId: '9001',
    });
  });

  it('binds a GitLab CI caller to its project, job and pipeline on the mapped host', () => {
    const claims = { project_path: 'acme/models', job_id: '77', pipeline_id: '12' };
    expect(ciBindingOf(caller('gitlab-ci', 'corp-gitlab', claims), { 'corp-gitlab': 'gitlab-eu' })).toEqual({
      kind: 'gitlab-ci',
      host: 'gitlab-eu',
      project: 'acme/models',
      jobId: '77',
      pipelineId: '12',
    });
  });

  it('binds nothing when a claim is missing or malformed, or the caller is no CI job', () => {
    expect(
      ciBindingOf(caller('github-actions', 'actions', { repository: 'acme/models', run_id: '501' })),
    ).toBe(undefined);
    expect(
      ciBindingOf(
        caller('gitlab-ci', 'gl', { project_path: 'acme/models', job_id: '7 OR 1', pipeline_id: '1' }),
      ),
    ).toBe(undefined);
    expect(ciBindingOf(caller('api-token', 'api-token', { run_id: '1' }))).toBe(undefined);
  });
});
