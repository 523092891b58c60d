// `deploykey serve --role controller`: waits to be the one active replica, then watches Jobs and
// checks every Job and pod bound to a live key: Jobs from the list after each (re)list, and Jobs
// and pods from the API itself on leading and every `sweepSeconds`, so an end no watch event
// reported (the watch stalled, or pods, which are not watched) is found within one period.
import { BatchV1Api, CoreV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import type { Container } from '../container.ts';
import { createJobController } from './job-controller.ts';
import { createJobKeys } from './job-keys.ts';
import { freshLists, fromListed, jobReader } from './job-lookup.ts';
import { watchJobs } from './job-watch.ts';
import { createLeaderLock } from './leader-lock.ts';
import { createPodCheck } from './pod-check.ts';

export interface KubernetesController {
  /** Resolves once this replica leads and its watches are up. */
  leading: Promise<void>;
  stop(): Promise<void>;
}

export function loadKubeconfig(path: string | undefined): KubeConfig {
  const kubeconfig = new KubeConfig();
  if (path) kubeconfig.loadFromFile(path);
  else kubeconfig.loadFromDefault();
  return kubeconfig;
}

export function startKubernetesController(container: Container): KubernetesController {
  const { config, logger } = container;
  const settings = config.kubernetes;
  const kubeconfig = loadKubeconfig(settings.kubeconfig);
  const batch = kubeconfig.makeApiClient(BatchV1Api);
  const jobKeys = createJobKeys({
    keyService: container.keyService,
    keys: container.keys,
    issuerId: settings.oidcIssuerId,
  });
  const jobs = createJobController({ kubeconfig, jobKeys, logger, clock: container.clock });
  const pods = createPodCheck({
    core: kubeconfig.makeApiClient(CoreV1Api),
    keys: container.keys,
    keyService: container.keyService,
    logger,
    issuerId: settings.oidcIssuerId,
    namespaces: settings.namespaces,
    perSweep: settings.podChecksPerSweep,
  });
  const lock = createLeaderLock(config.databaseUrl, settings.leaderRetrySeconds * 1_000, logger);
  const namespaces = settings.namespaces.length > 0 ? settings.namespaces : [undefined];
  let stopped = false;
  let sweepTimer: NodeJS.Timeout | undefined;
  let checking: Promise<void> = Promise.resolve();

  const warnIfFailed = (what: string) => (error: Error) => logger.warn({ err: error.message }, what);
  const readJob = jobReader(batch);
  const sweepListed = (listed: V1Job[]) =>
    jobs.sweep(fromListed(listed, readJob)).catch(warnIfFailed('Kubernetes sweep failed'));
  const watches = namespaces.map((namespace) =>
    watchJobs(
      kubeconfig,
      namespace,
      { onJob: jobs.onJob, onGone: jobs.onGone, onListed: sweepListed },
      logger,
    ),
  );

  async function checkBound(): Promise<void> {
    await jobs.sweep(freshLists(batch)).catch(warnIfFailed('Kubernetes sweep failed'));
    await pods.check().catch(warnIfFailed('Kubernetes pod check failed'));
  }

  function everySweep(): void {
    checking = checkBound().finally(() => {
      if (!stopped) sweepTimer = setTimeout(everySweep, settings.sweepSeconds * 1_000);
    });
  }

  const leading = (async () => {
    await lock.acquire(() => {
      logger.error('leader lock lost; stopping so that another replica takes over');
      process.exit(1);
    });
    if (stopped) return;
    logger.info({ namespaces: settings.namespaces }, 'Kubernetes controller leading');
    await Promise.all(watches.map((watch) => watch.start()));
    if (!stopped) everySweep();
  })();

  return {
    leading,
    async stop() {
      stopped = true;
      if (sweepTimer) clearTimeout(sweepTimer);
      await Promise.all(watches.map((watch) => watch.stop()));
      await checking;
      await jobs.idle();
      await lock.release();
    },
  };
}
