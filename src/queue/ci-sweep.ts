// The reconciler's step for CI job ends nobody announced: a webhook lost while the service was down,
// dropped on the way, or never configured. Keys bound to a GitHub Actions or GitLab CI job, once
// past a grace for the webhook to arrive, are grouped by job; each pass asks the host about a capped
// number of jobs per host (one request each, least recently asked first) and revokes the keys of
// the jobs that ended, exactly as the webhook would have.
import { Counter, type Registry } from 'prom-client';
import type { DeployKeyRow } from '../db/schema.ts';
import { type CiJobQuery, type CiJobStatus, HostError } from '../hosts/git-host.ts';
import { bindingRef } from '../keys/binding.ts';
import { SYSTEM_ACTOR } from '../keys/caller.ts';
import type { CiBinding } from '../keys/ci-binding.ts';
import type { KeyService } from '../keys/key.service.ts';
import type { KeyServiceDeps } from '../keys/key-service-deps.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

// Bound keys read per pass and kind; beyond it the oldest wait for a later pass.
const KEY_BATCH = 5_000;
const CI_KINDS = ['github-actions', 'gitlab-ci'] as const;
// Failures that say the host, not this one job, cannot answer now: its other jobs wait too.
const HOST_WIDE = new Set(['rate-limited', 'unavailable', 'timeout', 'unauthorized']);

export interface CiSweepSettings {
  sweepGraceSeconds: number;
  sweepJobsPerHost: number;
}

export interface CiSweepReport {
  jobsChecked: number;
  jobEndRevokes: number;
  errors: number;
}

export interface CiSweepDeps {
  keys: Pick<KeyServiceDeps['keys'], 'liveBound'>;
  hosts: KeyServiceDeps['hosts'];
  keyService: Pick<KeyService, 'revokeBound'>;
  clock: () => Date;
  logger: Logger;
  metrics: Pick<Metrics, 'registry'>;
}

/** One platform job that live keys are bound to: the host to ask, what to ask, the ref its keys carry. */
interface BoundJob {
  hostId: string;
  ref: string;
  query: CiJobQuery;
}

/** The most precise job a binding names: a GitHub job (check run) or run attempt, a GitLab job. */
export function boundJobOf(binding: CiBinding): BoundJob {
  if (binding.kind === 'gitlab-ci') {
    const { host, project, jobId } = binding;
    return {
      hostId: host,
      ref: bindingRef.gitlabJob(host, project, jobId),
      query: { kind: 'gitlab-job', repository: project, jobId },
    };
  }
  const { host, repository, runId, runAttempt, checkRunId } = binding;
  if (checkRunId) {
    return {
      hostId: host,
      ref: bindingRef.githubJob(host, repository, checkRunId),
      query: { kind: 'github-job', repository, checkRunId },
    };
  }
  return {
    hostId: host,
    ref: bindingRef.githubRun(host, repository, runId, runAttempt),
    query: { kind: 'github-run-attempt', repository, runId, runAttempt },
  };
}

function counter(registry: Registry, name: string, help: string, labelNames: string[]) {
  return (
    (registry.getSingleMetric(name) as Counter | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] })
  );
}

function sweepMetrics(registry: Registry) {
  return {
    checked: counter(
      registry,
      'deploykey_sweep_jobs_checked_total',
      'CI jobs the reconciler asked their host about, by host and answer (running, ended, unknown, failed)',
      ['provider', 'outcome'],
    ),
    deferred: counter(
      registry,
      'deploykey_sweep_jobs_deferred_total',
      'CI jobs left for a later pass: over the per-pass cap, or their host asked us to wait',
      ['provider'],
    ),
    revoked: counter(
      registry,
      'deploykey_sweep_keys_revoked_total',
      'Keys the sweep found bound to an ended CI job and revoked',
      ['provider'],
    ),
  };
}

export function createCiSweep(deps: CiSweepDeps, settings: CiSweepSettings) {
  const { hosts, clock, logger } = deps;
  const metrics = sweepMetrics(deps.metrics.registry);
  // When each job was last asked about, so a capped pass starts with the ones asked longest ago.
  let lastAsked = new Map<string, number>();

  async function boundJobs(): Promise<Map<string, BoundJob[]>> {
    const before = new Date(clock().getTime() - settings.sweepGraceSeconds * 1000);
    const rows: DeployKeyRow[] = [];
    for (const kind of CI_KINDS) rows.push(...(await deps.keys.liveBound(kind, before, KEY_BATCH)));
    const jobs = new Map<string, BoundJob>();
    for (const row of rows) {
      const job = boundJobOf(row.binding as unknown as CiBinding);
      jobs.set(job.ref, job);
    }
    lastAsked = new Map([...lastAsked].filter(([ref]) => jobs.has(ref)));
    const byHost = new Map<string, BoundJob[]>();
    for (const job of jobs.values()) byHost.set(job.hostId, [...(byHost.get(job.hostId) ?? []), job]);
    for (const list of byHost.values())
      list.sort((a, b) => (lastAsked.get(a.ref) ?? 0) - (lastAsked.get(b.ref) ?? 0));
    return byHost;
  }

  async function ended(
    job: BoundJob,
    status: Extract<CiJobStatus, { state: 'ended' }>,
    report: CiSweepReport,
  ) {
    const { state: _, ...conclusion } = status;
    const details = { source: 'sweep', host: job.hostId, ...conclusion };
    const revoked = await deps.keyService.revokeBound(job.ref, 'job-ended', SYSTEM_ACTOR, details);
    report.jobEndRevokes += revoked.length;
    metrics.revoked.inc({ provider: job.hostId }, revoked.length);
  }

  /** Asks one host about its jobs in turn; stops at the cap or at the first host-wide failure. */
  async function sweepHost(hostId: string, jobs: BoundJob[], report: CiSweepReport) {
    const host = hosts.get(hostId);
    let index = 0;
    for (; host && index < Math.min(jobs.length, settings.sweepJobsPerHost); index += 1) {
      const job = jobs[index] as BoundJob;
      lastAsked.set(job.ref, clock().getTime());
      try {
        const status = await host.ciJobStatus(job.query);
        metrics.checked.inc({ provider: hostId, outcome: status.state });
        report.jobsChecked += 1;
        if (status.state === 'ended') await ended(job, status, report);
      } catch (error) {
        report.errors += 1;
        metrics.checked.inc({ provider: hostId, outcome: 'failed' });
        logger.warn(
          { host: hostId, job: job.ref, err: (error as Error).message },
          'sweep could not ask about a CI job',
        );
        if (error instanceof HostError && HOST_WIDE.has(error.kind)) {
          index += 1;
          break;
        }
      }
    }
    if (jobs.length > index) metrics.deferred.inc({ provider: hostId }, jobs.length - index);
  }

  return {
    /** Adds what it checked, revoked and failed at to `report`. */
    async pass(report: CiSweepReport): Promise<void> {
      if (settings.sweepJobsPerHost === 0) return;
      const byHost = await boundJobs();
      await Promise.all([...byHost].map(([hostId, jobs]) => sweepHost(hostId, jobs, report)));
    },
  };
}

export type CiSweep = ReturnType<typeof createCiSweep>;
