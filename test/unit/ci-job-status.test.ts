// Only a final state ends a CI job's keys: anything still running, or a state a platform adds
// later, keeps them until the job says it is over.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { githubJobStatus, gitlabJobStatus } from '../../src/hosts/ci-job-status.ts';

describe('a CI job read as running or ended', () => {
  it('ends a GitHub run attempt or job only when completed, with its conclusion', () => {
    for (const status of ['queued', 'waiting', 'requested', 'pending', 'in_progress']) {
      expect(githubJobStatus({ status, conclusion: null })).toEqual({ state: 'running' });
    }
    expect(githubJobStatus({ status: 'completed', conclusion: 'cancelled' })).toEqual({
      state: 'ended',
      conclusion: 'cancelled',
    });
    expect(githubJobStatus({ status: 'completed', conclusion: null })).toEqual({
      state: 'ended',
      conclusion: 'unknown',
    });
  });

  it('ends a GitLab job in success, failed, canceled or skipped; a timeout carries its failure reason', () => {
    for (const status of ['created', 'pending', 'running', 'manual', 'scheduled', 'canceling', 'preparing']) {
      expect(gitlabJobStatus({ status })).toEqual({ state: 'running' });
    }
    for (const status of ['success', 'canceled', 'skipped']) {
      expect(gitlabJobStatus({ status })).toEqual({ state: 'ended', conclusion: status });
    }
    expect(gitlabJobStatus({ status: 'failed', failure_reason: 'job_execution_timeout' })).toEqual({
      state: 'ended',
      conclusion: 'failed',
      failureReason: 'job_execution_timeout',
    });
  });

  it('sweeps after a minute’s grace and at most 20 jobs per host a pass unless configured', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/deploykey',
      VAULT_ADDR: 'http://127.0.0.1:8200',
      VAULT_TOKEN: 'root-token',
    });
    expect(config.reconciler).toMatchObject({ sweepGraceSeconds: 60, sweepJobsPerHost: 20 });
  });
});
