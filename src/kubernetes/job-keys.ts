// What the controller does to keys for a Job: issue them as the Job's own service account (the
// policy sees exactly the caller an OIDC token of that account would be), and revoke them when the
// Job ends. Postgres stays the source of truth: the Job a key serves is recorded with the key.

import type { DeployKeyRow } from '../db/schema.ts';
import { type Denial, RefusalError } from '../errors.ts';
import { bindingRef } from '../keys/binding.ts';
import type { Caller } from '../keys/caller.ts';
import type { KeyRepository } from '../keys/key.repository.ts';
import type { KeyService } from '../keys/key.service.ts';
import { jobIdOf, type RequestedKey } from './annotations.ts';

export interface JobRef {
  namespace: string;
  name: string;
  uid: string;
  serviceAccount: string;
}

export type IssueOutcome =
  | { ok: true; keyIds: Record<string, string> }
  | { ok: false; reason: string; message: string };

export type JobEnd = 'job-ended' | 'job-deleted';

export const CONTROLLER_ACTOR = 'system:deploykey-rotator:kubernetes-controller';

/** The caller an OIDC token of the Job's service account would authenticate as. */
export function callerOfJob(job: JobRef, issuerId: string): Caller {
  const subject = `system:serviceaccount:${job.namespace}:${job.serviceAccount}`;
  const kubernetes = { namespace: job.namespace, serviceaccount: { name: job.serviceAccount } };
  return {
    id: `oidc:${issuerId}:${subject}`,
    actor: `${issuerId}:${subject}`,
    role: 'issuer',
    subject: { issuer: issuerId, claims: { sub: subject, 'kubernetes.io': kubernetes } },
    details: {
      kind: 'kubernetes',
      issuer: issuerId,
      subject,
      claims: { 'kubernetes.io': kubernetes },
    },
  };
}

export function createJobKeys(deps: { keyService: KeyService; keys: KeyRepository; issuerId: string }) {
  const { keyService, keys } = deps;

  async function issueFor(job: JobRef, wanted: RequestedKey[], ttlSeconds?: number): Promise<IssueOutcome> {
    const caller = callerOfJob(job, deps.issuerId);
    const keyIds: Record<string, string> = {};
    for (const key of wanted) {
      try {
        const result = await keyService.issue(caller, {
          ...key,
          jobId: jobIdOf(job.namespace, job.name),
          delivery: 'vault',
          binding: { kind: 'kubernetes-job', namespace: job.namespace, name: job.name, uid: job.uid },
          idempotencyKey: `k8s-${job.uid}-${key.provider}-${key.repository}`.slice(0, 200),
          ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
        });
        keyIds[`${key.provider}:${key.repository}`] = result.row.id;
      } catch (error) {
        // A dependency failure is retried by the caller; a refusal is the Job's answer.
        if (!(error instanceof RefusalError)) throw error;
        if (error.denial) await recordDenial(error.denial, job);
        await revokeJob(job.uid, 'job-ended', { reason: 'denied', uid: job.uid });
        const reason = error.extra.reason;
        return {
          ok: false,
          reason: typeof reason === 'string' ? reason : error.code,
          message: error.message,
        };
      }
    }
    return { ok: true, keyIds };
  }

  const recordDenial = (denial: Denial, job: JobRef) =>
    keys.recordEvent({
      actor: denial.actor,
      action: denial.action ?? 'access.denied',
      ...denial.key,
      details: {
        reason: denial.reason,
        ...denial.details,
        job: { namespace: job.namespace, name: job.name, uid: job.uid },
        via: 'kubernetes-controller',
      },
    });

  /** Revokes every live key bound to the Job with this uid; returns how many were asked to go. */
  async function revokeJob(uid: string, end: JobEnd, details: Record<string, unknown>): Promise<number> {
    const revoked = await keyService.revokeBound(
      bindingRef.kubernetesJob(uid),
      end,
      CONTROLLER_ACTOR,
      details,
    );
    return revoked.length;
  }

  /** Live keys bound to a Kubernetes Job (the sweep asks the API about each one's Job). */
  const liveJobKeys = (): Promise<DeployKeyRow[]> =>
    keys.liveBound('kubernetes-job', new Date(8.64e15), 10_000);

  return { issueFor, revokeJob, liveJobKeys };
}

export type JobKeys = ReturnType<typeof createJobKeys>;
