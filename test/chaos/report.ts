// The run's summary: what was injected, what the callers saw, and each invariant with its verdict.
import type { FaultStats } from '../../sandbox/shared/faults.ts';
import type { ChaosLog } from './chaos-agent.ts';
import type { Check } from './invariants.ts';
import type { JobChaosLog } from './kubernetes-jobs.ts';
import type { ServiceProcess } from './processes.ts';
import type { TrafficStats } from './traffic.ts';

const print = (line: string) => process.stdout.write(`${line}\n`);

function table(title: string, rows: [string, string][]): void {
  const width = Math.max(...rows.map(([left]) => left.length));
  print(`\n${title}`);
  for (const [left, right] of rows) print(`  ${left.padEnd(width)}  ${right}`);
}

const injected = (stats: FaultStats) =>
  `${stats.injected} of ${stats.total} requests; answered ${JSON.stringify(stats.byStatus)}`;

export function printSummary(run: {
  traffic: TrafficStats;
  chaosLog: ChaosLog;
  jobLog: JobChaosLog & { expiredAnswers: number };
  faultStats: Record<'github' | 'gitlab' | 'vault', FaultStats>;
  checks: Check[];
  chaosMs: number;
  totalMs: number;
  privateKeys: string[];
  processes: ServiceProcess[];
  /** Logins and renewals the Vault stand-in granted the services over the whole run. */
  vaultGranted: { logins: number; renewals: number };
}): void {
  const { traffic, chaosLog, faultStats } = run;
  const flush = chaosLog.redisFlush;
  table('Faults injected', [
    ['github (500/429/10.5s time-out, ~10%)', injected(faultStats.github)],
    ['gitlab (500/429/10.5s time-out, ~10%)', injected(faultStats.gitlab)],
    ['vault (500, 5%)', injected(faultStats.vault)],
    [
      'Vault token expired/revoked (5 s tokens, 30 s max TTL)',
      `${chaosLog.vaultAuth.vaultTokensRevoked} service tokens revoked, logins down ${(chaosLog.vaultAuth.vaultLoginDownMs / 1000).toFixed(0)}s; Vault granted ${run.vaultGranted.logins} logins / ${run.vaultGranted.renewals} renewals`,
    ],
    ['SIGKILL api only', String(chaosLog.kills.api)],
    ['SIGKILL worker only', String(chaosLog.kills.worker)],
    ['SIGKILL api + worker', String(chaosLog.kills.both)],
    ['SIGKILL controller', String(run.jobLog.controllerKills)],
    [
      'controller watches cut / expired (410 answers)',
      `${run.jobLog.watchesDropped} / ${run.jobLog.watchesExpired} (${run.jobLog.expiredAnswers})`,
    ],
    ...run.processes.map((service): [string, string] => [
      `${service.role} starts (ms until up)`,
      service.startTimesMs.join(', '),
    ]),
    [
      'Redis prefix wiped + connections dropped',
      flush
        ? `${flush.keysDeleted} keys deleted, ${flush.connectionsDropped} connections killed at ${(flush.atMs / 1000).toFixed(1)}s`
        : 'not done',
    ],
  ]);
  table('Traffic', [
    ['issue requests (incl. retries)', String(traffic.issueRequests)],
    ['keys issued / gave up', `${traffic.issued} / ${traffic.issueGaveUp}`],
    ['jobs completed / keys deleted', `${traffic.completes} / ${traffic.deletes}`],
    [
      'annotated Kubernetes Jobs started / ended',
      `${run.jobLog.started} / ${JSON.stringify(run.jobLog.ended)}`,
    ],
    ['private keys in responses', String(run.privateKeys.length)],
    ['API answers by status', JSON.stringify(traffic.byStatus)],
    ['no answer (process down)', String(traffic.networkErrors)],
    ['chaos phase / whole run', `${(run.chaosMs / 1000).toFixed(0)}s / ${(run.totalMs / 1000).toFixed(0)}s`],
  ]);
  table(
    'Invariants',
    run.checks.map((check) => [`${check.ok ? 'PASS' : 'FAIL'} ${check.name}`, check.detail]),
  );
  const failed = run.checks.filter((check) => !check.ok).length;
  print(`\n${failed === 0 ? 'all invariants hold' : `${failed} invariant(s) FAILED`}`);
}
