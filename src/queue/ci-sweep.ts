// The reconciler's step for CI job ends nobody announced: a webhook lost while the service was down,
// dropped on the way, or never configured. Keys bound to a GitHub Actions or GitLab CI job, once
// past a grace for the webhook to arrive, are grouped by job; each pass asks the host about a capped
// number of jobs per host (one request each, least recently asked first) and revokes the keys of
// the jobs that ended, exactly as the webhook would have.
import { Counter, type Registry } from 'prom-client';
import type { DeployKeyRow } from '../db/schema.ts';
import { type CiJobQuery, type CiJobStatus, type GitHost, HostError } from '../hosts/git-host.ts';
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
const GITHUB_FIELDS = ['host', 'repository', 'runId', 'runAttempt'];
const GITLAB_FIELDS = ['host', 'project', 'jobId'];
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
  hosts: Pick<KeyServiceDeps['hosts'], 'get'>;
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
function boundJobOf(binding: CiBinding): BoundJob {
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

// Stored bindings were checked when the key was issued; one that lacks a field names no job to ask.
function ciBindingOfRow(row: DeployKeyRow): CiBinding | undefined {
  const binding = row.binding;
  const fields = binding?.kind === 'gitlab-ci' ? GITLAB_FIELDS : GITHUB_FIELDS;
  return binding && fields.every((field) => typeof binding[field] === 'string')
    ? (binding as unknown as CiBinding)
    : undefined;
}

/** The jobs of these keys, each once, by host; per host those asked longest ago (or never) first. */
function jobsByHost(rows: DeployKeyRow[], lastAsked: Map<string, number>): Map<string, BoundJob[]> {
  const jobs = new Map<string, BoundJob>();
  for (const row of rows) {
    const binding = ciBindingOfRow(row);
    const job = binding && boundJobOf(binding);
    if (job) jobs.set(job.ref, job);
  }
  const byHost = new Map<string, BoundJob[]>();
  for (const job of jobs.values()) byHost.set(job.hostId, [...(byHost.get(job.hostId) ?? []), job]);
  const askedAt = (job: BoundJob) => lastAsked.get(job.ref) ?? 0;
  for (const list of byHost.values()) list.sort((a, b) => askedAt(a) - askedAt(b));
  return byHost;
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
    const byHost = jobsByHost(rows, lastAsked);
    const current = new Set([...byHost.values()].flat().map((job) => job.ref));
    lastAsked = new Map([...lastAsked].filter(([ref]) => current.has(ref)));
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

  /** Asks about one job and revokes its keys if it ended; false when the host cannot answer now. */
  async function askAbout(host: GitHost, job: BoundJob, report: CiSweepReport): Promise<boolean> {
    lastAsked.set(job.ref, clock().getTime());
    let status: CiJobStatus;
    try {
      status = await host.ciJobStatus(job.query);
    } catch (error) {
      report.errors += 1;
      metrics.checked.inc({ provider: host.id, outcome: 'failed' });
      logger.warn(
        { host: host.id, job: job.ref, err: (error as Error).message },
        'sweep could not ask about a CI job',
      );
      return !(error instanceof HostError && HOST_WIDE.has(error.kind));
    }
    report.jobsChecked += 1;
    metrics.checked.inc({ provider: host.id, outcome: status.state });
    if (status.state !== 'ended') return true;
    try {
      await ended(job, status, report);
    } catch (error) {
      report.errors += 1;
      logger.warn(
        { job: job.ref, err: (error as Error).message },
        'sweep could not revoke the keys of an ended CI job',
      );
    }
    return true;
  }

  /** One host's turn: its jobs asked longest ago, up to the cap, until it cannot answer. */
  async function sweepHost(hostId: string, jobs: BoundJob[], report: CiSweepReport) {
    const host = hosts.get(hostId);
    let asked = 0;
    for (const job of jobs.slice(0, host ? settings.sweepJobsPerHost : 0)) {
      asked += 1;
      if (host && !(await askAbout(host, job, report))) break;
    }
    if (jobs.length > asked) metrics.deferred.inc({ provider: hostId }, jobs.length - asked);
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
