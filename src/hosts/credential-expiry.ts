// Watches when the service's own token on each host stops working (GitLab personal, project or
// group access tokens carry an `expires_at`): at start and every period it reads the expiry, sets
// a gauge of the seconds left, and warns in the log within the configured days. A token the host
// refuses (expired or revoked: 401) makes the host not ready, with the host's reason in the log.
// The token itself is never logged: only the host id and the date.
import { Gauge } from 'prom-client';
import type { HostConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Clock, Timers } from '../time.ts';
import { type GitHost, HostError } from './git-host.ts';
import { expiryWarningDays } from './host-auth-config.ts';

const DAY_SECONDS = 86_400;
// Start-up waits this long at most for the first answers, so /readyz is right from the first probe.
const FIRST_CHECK_WAIT_MS = 3_000;
export const EXPIRY_CHECK_PERIOD_MS = 3_600_000;
// After a refusal or an outage, look again soon: the pod should not stay unready an hour for a blip.
export const EXPIRY_RETRY_MS = 60_000;
// A host that cannot tell (an older GitLab without /self, a token without read_api) is not retried sooner.
const CANNOT_TELL = new Set(['forbidden', 'not-found', 'invalid']);

export interface CredentialExpiryWatch {
  /**
   * Checks every watched host now, then on its own schedule; resolves once the first checks are
   * done, or after a few seconds when a host is slow (they go on in the background).
   */
  start(): Promise<void>;
  stop(): void;
  /** Checks every watched host once; resolves when all answered or failed. */
  checkAll(): Promise<void>;
  /** `host-token:<id>` per watched host: throws while the host refuses the service's token. */
  readiness: Record<string, () => Promise<void>>;
}

export interface CredentialExpiryOptions {
  hostConfigs: HostConfig[];
  hosts: { get(id: string): GitHost | undefined };
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  timers: Timers;
  periodMs?: number;
  retryMs?: number;
}

interface Watched {
  host: GitHost & { credentialExpiry(): Promise<Date | null> };
  warningDays: number;
  /** Why the host refuses the token, while it does. */
  refused?: string | undefined;
}

function watchedHosts(options: CredentialExpiryOptions): Watched[] {
  return options.hostConfigs.flatMap((config) => {
    const host = options.hosts.get(config.id);
    if (!host?.credentialExpiry || config.credential?.type === 'app') return [];
    return [{ host: host as Watched['host'], warningDays: expiryWarningDays(config) }];
  });
}

function expiryGauges(metrics: Metrics) {
  return {
    secondsLeft: new Gauge({
      name: 'deploykey_host_credential_expiry_seconds',
      help: "Seconds until the service's token on the host expires (0: expired or refused); absent when it never expires",
      labelNames: ['host'],
      registers: [metrics.registry],
    }),
    expiring: new Gauge({
      name: 'deploykey_host_credential_expiring',
      help: "1 when the service's token on the host expires within its warning days or is refused, else 0",
      labelNames: ['host'],
      registers: [metrics.registry],
    }),
  };
}

/** One check of one host: gauges set, warning or refusal logged; resolves with the wait until the next. */
function expiryChecker(options: CredentialExpiryOptions) {
  const { logger, clock } = options;
  const periodMs = options.periodMs ?? EXPIRY_CHECK_PERIOD_MS;
  const retryMs = options.retryMs ?? EXPIRY_RETRY_MS;
  const gauges = expiryGauges(options.metrics);

  const record = (entry: Watched, expiresAt: Date | null) => {
    const labels = { host: entry.host.id };
    entry.refused = undefined;
    if (expiresAt === null) {
      gauges.secondsLeft.remove(labels);
      gauges.expiring.set(labels, 0);
      return;
    }
    const secondsLeft = Math.max(0, Math.floor((expiresAt.getTime() - clock().getTime()) / 1000));
    const warn = secondsLeft <= entry.warningDays * DAY_SECONDS;
    gauges.secondsLeft.set(labels, secondsLeft);
    gauges.expiring.set(labels, warn ? 1 : 0);
    if (!warn) return;
    const daysLeft = Math.floor(secondsLeft / DAY_SECONDS);
    logger.warn(
      { host: entry.host.id, expiresAt: expiresAt.toISOString(), daysLeft },
      `the service's ${entry.host.type} token on host ${entry.host.id} expires in ${daysLeft} days; replace it before then`,
    );
  };

  return async (entry: Watched): Promise<number> => {
    const labels = { host: entry.host.id };
    try {
      record(entry, await entry.host.credentialExpiry());
      return periodMs;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof HostError && error.kind === 'unauthorized') {
        entry.refused = message;
        gauges.secondsLeft.set(labels, 0);
        gauges.expiring.set(labels, 1);
        logger.error(
          { host: entry.host.id, err: message },
          `host ${entry.host.id} refuses the service's token (expired or revoked); no key can be issued or revoked there until it is replaced`,
        );
        return retryMs;
      }
      const cannotTell = error instanceof HostError && CANNOT_TELL.has(error.kind);
      logger.warn(
        { host: entry.host.id, err: message },
        cannotTell
          ? 'cannot read the token’s expiry on this host'
          : 'could not read the token’s expiry; retrying',
      );
      return cannotTell ? periodMs : retryMs;
    }
  };
}

export function createCredentialExpiryWatch(options: CredentialExpiryOptions): CredentialExpiryWatch {
  const watched = watchedHosts(options);
  const check = expiryChecker(options);
  const cancels = new Map<string, () => void>();
  let running = false;

  const loop = async (entry: Watched) => {
    const wait = await check(entry);
    if (running)
      cancels.set(
        entry.host.id,
        options.timers.after(wait, () => void loop(entry)),
      );
  };

  return {
    async start() {
      if (running) return;
      running = true;
      let stopWaiting = () => {};
      const waited = new Promise<void>((resolve) => {
        stopWaiting = options.timers.after(FIRST_CHECK_WAIT_MS, resolve);
      });
      await Promise.race([Promise.all(watched.map(loop)), waited]);
      stopWaiting();
    },
    stop() {
      running = false;
      for (const cancel of cancels.values()) cancel();
      cancels.clear();
    },
    async checkAll() {
      await Promise.all(watched.map(check));
    },
    readiness: Object.fromEntries(
      watched.map((entry) => [
        `host-token:${entry.host.id}`,
        async () => {
          if (entry.refused) throw new Error(entry.refused);
        },
      ]),
    ),
  };
}
