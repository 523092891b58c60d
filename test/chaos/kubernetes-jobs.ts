// Kubernetes Jobs under chaos: annotated Jobs start and end (complete, failed, OOM-killed, deleted)
// while the controller process is SIGKILLed and its watches are cut or answered 410 Expired. The
// keys' TTL outlives the run, so only the controller can have revoked an ended Job's keys.
import type pg from 'pg';
import type { JobOutcome } from '../../sandbox/kubernetes/cluster.ts';
import { SANDBOX_OIDC_ISSUER_ID, SANDBOX_POLICY, type StandIns } from '../../sandbox/stand-ins.ts';
import type { Check } from './invariants.ts';
import type { ServiceProcess } from './processes.ts';
import { type Random, sleep } from './random.ts';
import { PROVIDERS, REPOSITORIES } from './traffic.ts';

const NAMESPACE = 'training';
const JOB_KEY_TTL = '30m';
const OUTCOMES: JobOutcome[] = ['complete', 'failed', 'oom-killed', 'deleted'];
// Jobs end at the latest this long before the chaos phase does, so each end meets the faults.
const LAST_END_BEFORE_MS = 2_000;

export interface JobChaosLog {
  started: number;
  ended: Record<string, number>;
  controllerKills: number;
  watchesDropped: number;
  /** Watch faults "410": the log forgotten and every watch ended, so the resumed watch is answered 410. */
  watchesExpired: number;
}

export const newJobChaosLog = (): JobChaosLog => ({
  started: 0,
  ended: {},
  controllerKills: 0,
  watchesDropped: 0,
  watchesExpired: 0,
});

/** The service's config for the controller: the sandbox's rule for `training/trainer`, and the API. */
export function controllerConfig(standIns: StandIns) {
  return {
    policyRule: SANDBOX_POLICY.find((rule) => rule.name === 'kubernetes-training-jobs'),
    kubernetes: {
      kubeconfig: standIns.kubernetes.kubeconfigPath,
      namespaces: [NAMESPACE],
      oidcIssuerId: SANDBOX_OIDC_ISSUER_ID,
      sweepSeconds: 2,
      leaderRetrySeconds: 1,
    },
  };
}

/** Starts `jobs` annotated Jobs at seeded-random moments; each runs a while, then ends one of four ways. */
export async function runJobTraffic(options: {
  standIns: StandIns;
  jobs: number;
  durationMs: number;
  random: Random;
  log: JobChaosLog;
}): Promise<void> {
  const { cluster } = options.standIns.kubernetes;
  const { random, log } = options;
  const plan = Array.from({ length: options.jobs }, (_, index) => {
    // Most Jobs run long enough to get their keys first, also from a controller that was just restarted.
    const runsMs = random.int(1_000, 15_000);
    const wanted = new Set([`${random.pick(PROVIDERS)}:${random.pick(REPOSITORIES)}`]);
    if (random.next() < 0.3) wanted.add(`${random.pick(PROVIDERS)}:${random.pick(REPOSITORIES)}`);
    return {
      name: `chaos-job-${index}`,
      at: random.int(0, options.durationMs - LAST_END_BEFORE_MS - runsMs),
      runsMs,
      outcome: random.pick(OUTCOMES),
      keys: [...wanted].join(', '),
    };
  });
  await Promise.all(
    plan.map(async (job) => {
      await sleep(job.at);
      cluster.createJob({
        namespace: NAMESPACE,
        name: job.name,
        serviceAccountName: 'trainer',
        annotations: { 'deploykey.dev/keys': job.keys, 'deploykey.dev/ttl': JOB_KEY_TTL },
        ...(job.outcome === 'oom-killed' ? { backoffLimit: 0 } : {}),
      });
      log.started += 1;
      await sleep(job.runsMs);
      await cluster.endJob(NAMESPACE, job.name, job.outcome);
      log.ended[job.outcome] = (log.ended[job.outcome] ?? 0) + 1;
    }),
  );
}

/** SIGKILLs the controller `kills` times (restarting it after a pause) and cuts its watches. */
export async function runControllerFaults(options: {
  controller: ServiceProcess;
  standIns: StandIns;
  kills: number;
  watchFaults: number;
  durationMs: number;
  random: Random;
  log: JobChaosLog;
}): Promise<void> {
  const { controller, random, log } = options;
  const at = () => random.int(2_000, options.durationMs - 2_000);
  const kills = Array.from({ length: options.kills }, () => ({ at: at(), pauseMs: random.int(300, 4_000) }));
  const watchFaults = Array.from({ length: options.watchFaults }, (_, index) => ({
    at: at(),
    mode: index % 2 === 0 ? ('reset' as const) : ('expire' as const),
  }));
  await Promise.all([
    ...kills.map(async ({ at, pauseMs }) => {
      await sleep(at);
      const generation = await controller.kill();
      log.controllerKills += 1;
      await sleep(pauseMs);
      await controller.start(generation);
    }),
    ...watchFaults.map(async ({ at, mode }) => {
      await sleep(at);
      // A controller down or still starting has no watch to cut; the fault waits for one.
      const giveUpAt = Date.now() + options.durationMs;
      while (options.standIns.kubernetes.openWatches() === 0 && Date.now() < giveUpAt) await sleep(100);
      if (options.standIns.kubernetes.dropWatches(mode) === 0) return;
      if (mode === 'reset') log.watchesDropped += 1;
      else log.watchesExpired += 1;
    }),
  ]);
}

const isEnded = (job: { status?: { conditions?: { type: string; status: string }[] } }) =>
  (job.status?.conditions ?? []).some(
    (condition) => condition.status === 'True' && ['Complete', 'Failed'].includes(condition.type),
  );

/** Every key bound to a Job that ended or is gone was revoked for that reason (or never issued). */
export async function checkEndedJobsRevoked(pool: pg.Pool, standIns: StandIns): Promise<Check> {
  const { rows } = await pool.query<{
    id: string;
    status: string;
    revoke_reason: string | null;
    binding: { uid: string; name: string };
  }>(`SELECT id, status, revoke_reason, binding FROM deploy_keys WHERE binding->>'kind' = 'kubernetes-job'`);
  const jobs = standIns.kubernetes.cluster.store.list('jobs', NAMESPACE);
  const running = new Set(jobs.filter((job) => !isEnded(job as never)).map((job) => job.metadata.uid));
  const counts: Record<string, number> = {};
  const bad: string[] = [];
  for (const row of rows) {
    const outcome = row.status === 'revoked' ? `revoked ${row.revoke_reason}` : row.status;
    counts[outcome] = (counts[outcome] ?? 0) + 1;
    if (running.has(row.binding.uid)) continue;
    const revokedForTheEnd =
      row.status === 'revoked' && ['job-ended', 'job-deleted'].includes(row.revoke_reason ?? '');
    if (!revokedForTheEnd && row.status !== 'failed')
      bad.push(`${row.binding.name} key ${row.id} ${outcome}`);
  }
  return {
    name: "every ended or deleted Job's keys revoked by the controller",
    ok: bad.length === 0 && rows.length > 0,
    detail: bad.length
      ? `${bad.length}: ${bad.slice(0, 5).join('; ')}`
      : `${rows.length} Job keys: ${JSON.stringify(counts)}; ${running.size} Jobs still running`,
  };
}
