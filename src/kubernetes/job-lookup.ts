// Where the sweep reads the Jobs that live keys are bound to. Right after a (re)list, from that
// list; every sweep period, from the API again, so a watch that stalled without ending (it then
// reports nothing, and its cache still shows the Job running) cannot keep a Job's end from us.
import type { BatchV1Api, V1Job } from '@kubernetes/client-node';
import type { BoundObject } from './bound-objects.ts';

/** The Job of that name as the API has it (maybe another uid by now), or undefined if none. */
export type JobLookup = (bound: BoundObject) => Promise<V1Job | undefined>;

const LIST_PAGE = 500;

/** The Job as the API server has it now, or undefined once it is gone. */
export function jobReader(batch: BatchV1Api) {
  return async (namespace: string, name: string): Promise<V1Job | undefined> => {
    try {
      return await batch.readNamespacedJob({ namespace, name });
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  };
}

/**
 * The Jobs a (re)list just showed. That list may predate a key issued since, so a Job it does not
 * show is asked about once more: a partial view never revokes a running Job.
 */
export function fromListed(listed: V1Job[], readJob: ReturnType<typeof jobReader>): JobLookup {
  const byUid = new Map(listed.map((job) => [job.metadata?.uid, job]));
  return async ({ namespace, name, uid }) => byUid.get(uid) ?? readJob(namespace, name);
}

/**
 * Each namespace's Jobs as the API lists them now: one list per namespace (paged), made when the
 * sweep first asks about that namespace, which is after it read the keys. A Job a key is bound to
 * existed before the key did, so a fresh list without it proves it gone.
 */
export function freshLists(batch: BatchV1Api): JobLookup {
  const lists = new Map<string, Promise<Map<string, V1Job>>>();

  async function listNamespace(namespace: string): Promise<Map<string, V1Job>> {
    const byName = new Map<string, V1Job>();
    let next: string | undefined;
    do {
      const page = await batch.listNamespacedJob({
        namespace,
        limit: LIST_PAGE,
        ...(next ? { _continue: next } : {}),
      });
      for (const job of page.items) byName.set(job.metadata?.name ?? '', job);
      next = page.metadata?._continue || undefined;
    } while (next);
    return byName;
  }

  return async ({ namespace, name }) => {
    let list = lists.get(namespace);
    if (!list) {
      list = listNamespace(namespace);
      lists.set(namespace, list);
    }
    return (await list).get(name);
  };
}
