// Keys an OIDC Kubernetes caller took for its own pod (binding `kubernetes-pod`, from the token's
// `kubernetes.io.pod` claim) end with that pod. Pods are asked about, not watched: a watch would
// have to cover every pod of every namespace such a key lives in, and hold them all in memory, to
// follow the few that took keys; instead each sweep GETs the bound pods, one request each, at most
// `podChecksPerSweep`, those asked longest ago (or never) first. So a pod's end reaches its keys
// within one sweep period while there are no more bound pods than that.
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { bindingRef } from '../keys/binding.ts';
import type { KeyRepository } from '../keys/key.repository.ts';
import type { KeyService } from '../keys/key.service.ts';
import type { Logger } from '../log.ts';
import { type BoundObject, boundObjects } from './bound-objects.ts';
import { CONTROLLER_ACTOR } from './job-keys.ts';

export interface PodCheckDeps {
  core: Pick<CoreV1Api, 'readNamespacedPod'>;
  keys: Pick<KeyRepository, 'liveBound'>;
  keyService: Pick<KeyService, 'revokeBound'>;
  logger: Logger;
  /** Only keys of callers from this OIDC issuer (this cluster's) are bound to pods here. */
  issuerId: string;
  /** Namespaces the controller may read; empty: all. */
  namespaces: string[];
  perSweep: number;
}

/** What became of a bound pod: ended (its final phase), gone, or undefined while it still runs. */
export type PodEnd =
  | { reason: 'job-ended'; phase: 'Succeeded' | 'Failed' }
  | { reason: 'job-deleted'; phase: 'Deleted'; replacedBy?: string };

const LIVE_KEYS_READ = 10_000;
// Statuses that say the API, not this pod, cannot answer now: the other pods wait for the next sweep.
const API_WIDE = new Set([401, 403, 429, 500, 502, 503, 504]);

/**
 * A pod of that name with another uid is a new pod, not the one the token named. A terminating
 * pod (deletionTimestamp set) still runs its containers until its phase or its removal says so.
 */
export function podEndOf(bound: BoundObject, pod: V1Pod | undefined): PodEnd | undefined {
  const uid = pod?.metadata?.uid;
  if (!pod || uid !== bound.uid) {
    return { reason: 'job-deleted', phase: 'Deleted', ...(uid ? { replacedBy: uid } : {}) };
  }
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed' ? { reason: 'job-ended', phase } : undefined;
}

export function createPodCheck(deps: PodCheckDeps) {
  const { core, logger } = deps;
  const callerPrefix = `oidc:${deps.issuerId}:`;
  let lastAsked = new Map<string, number>();
  let passes = 0;

  async function boundPods(): Promise<BoundObject[]> {
    const rows = await deps.keys.liveBound('kubernetes-pod', new Date(8.64e15), LIVE_KEYS_READ);
    const ours = rows.filter((row) => row.caller.startsWith(callerPrefix));
    const pods = boundObjects(ours, 'kubernetes-pod').filter(
      (pod) => deps.namespaces.length === 0 || deps.namespaces.includes(pod.namespace),
    );
    const bound = new Set(pods.map((pod) => pod.uid));
    lastAsked = new Map([...lastAsked].filter(([uid]) => bound.has(uid)));
    const askedAt = (pod: BoundObject) => lastAsked.get(pod.uid) ?? 0;
    return pods.sort((a, b) => askedAt(a) - askedAt(b));
  }

  async function readPod({ namespace, name }: BoundObject): Promise<V1Pod | undefined> {
    try {
      return await core.readNamespacedPod({ namespace, name });
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  }

  async function revoke(pod: BoundObject, end: PodEnd): Promise<void> {
    const { reason, ...how } = end;
    const details = { pod: { namespace: pod.namespace, name: pod.name }, uid: pod.uid, ...how };
    const revoked = await deps.keyService.revokeBound(
      bindingRef.kubernetesPod(pod.uid),
      reason,
      CONTROLLER_ACTOR,
      details,
    );
    if (revoked.length > 0) {
      logger.info({ ...details, reason, count: revoked.length }, 'pod ended; keys revoked');
    }
  }

  /** Asks about the bound pods due this pass; stops early when the API cannot answer. */
  async function check(): Promise<void> {
    if (deps.perSweep === 0) return;
    passes += 1;
    for (const pod of (await boundPods()).slice(0, deps.perSweep)) {
      lastAsked.set(pod.uid, passes);
      let current: V1Pod | undefined;
      try {
        current = await readPod(pod);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        logger.warn(
          { pod: pod.name, namespace: pod.namespace, code, err: (error as Error).message },
          'could not ask about a pod',
        );
        // A network failure (no HTTP status) is the API's too.
        if (typeof code !== 'number' || API_WIDE.has(code)) return;
        continue;
      }
      const end = podEndOf(pod, current);
      if (end) await revoke(pod, end);
    }
  }

  return { check };
}

export type PodCheck = ReturnType<typeof createPodCheck>;
