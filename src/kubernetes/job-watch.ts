// List+watch of batch/v1 Jobs through client-node's informer. The informer keeps its cache across
// a server-closed watch (it resumes from its resourceVersion, and re-lists on 410 Gone); an error
// ends it, and restarting it re-lists, which reports every Job added or gone meanwhile.
import { BatchV1Api, type KubeConfig, makeInformer, type V1Job } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';

export interface JobEvents {
  onJob(job: V1Job): void;
  onGone(job: V1Job): void;
  /** After every (re)list: the complete set of Jobs the cache now holds. */
  onListed(jobs: V1Job[]): void;
}

const MAX_BACKOFF_MS = 30_000;

export function watchJobs(
  kubeconfig: KubeConfig,
  namespace: string | undefined,
  events: JobEvents,
  logger: Logger,
) {
  const batch = kubeconfig.makeApiClient(BatchV1Api);
  const path = namespace ? `/apis/batch/v1/namespaces/${namespace}/jobs` : '/apis/batch/v1/jobs';
  const list = namespace
    ? () => batch.listNamespacedJob({ namespace })
    : () => batch.listJobForAllNamespaces();
  const informer = makeInformer<V1Job>(kubeconfig, path, async () => {
    const answer = await list();
    queueMicrotask(() => events.onListed(answer.items));
    return answer;
  });
  let stopped = false;
  let failures = 0;
  let retry: NodeJS.Timeout | undefined;

  informer.on('add', events.onJob);
  informer.on('update', events.onJob);
  informer.on('delete', events.onGone);
  informer.on('connect', () => {
    failures = 0;
  });
  const onError = (error: unknown) => {
    if (stopped) return;
    failures += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 7));
    logger.warn({ err: (error as Error)?.message, namespace, delay }, 'Job watch ended; re-listing');
    retry = setTimeout(() => void startOnce(), delay);
  };
  informer.on('error', onError);

  async function startOnce(): Promise<void> {
    if (stopped) return;
    try {
      await informer.start();
    } catch (error) {
      onError(error);
    }
  }

  return {
    start: startOnce,
    cached: () => informer.list(),
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      await informer.stop();
    },
  };
}
