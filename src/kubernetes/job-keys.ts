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
// Failed attempts at one Job's key before the failure is the Job's answer.
const MAX_ATTEMPTS_PER_KEY = 20;

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

/**
 * One key, under an idempotency key of the Job's own, so a retry or a restarted controller gets
 * the key already issued. An attempt that failed (a host or Vault error) is followed by a fresh
 * one; one still running is waited for: the caller tries the Job again later.
 */
async function issueOne(
  keyService: KeyService,
  caller: Caller,
  job: JobRef,
  key: RequestedKey,
  ttlSeconds?: number,
) {
  const first = `k8s-${job.uid}-${key.provider}-${key.repository}`.slice(0, 190);
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await keyService.issue(caller, {
        ...key,
        jobId: jobIdOf(job.namespace, job.name),
        delivery: 'vault',
        binding: { kind: 'kubernetes-job', namespace: job.namespace, name: job.name, uid: job.uid },
        idempotencyKey: attempt === 1 ? first : `${first}-${attempt}`,
        ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
      });
    } catch (error) {
      if (!(error instanceof RefusalError)) throw error;
      if (error.code === 'idempotent-request-failed' && attempt < MAX_ATTEMPTS_PER_KEY) continue;
      if (error.code === 'request-in-progress')
        throw new Error('an earlier issue for this Job is still running');
      throw error;
    }
  }
}

export function createJobKeys(deps: { keyService: KeyService; keys: KeyRepository; issuerId: string }) {
  const { keyService, keys } = deps;

  async function issueFor(job: JobRef, wanted: RequestedKey[], ttlSeconds?: number): Promise<IssueOutcome> {
    const caller = callerOfJob(job, deps.issuerId);
    const keyIds: Record<string, string> = {};
    for (const key of wanted) {
      try {
        const result = await issueOne(keyService, caller, job, key, ttlSeconds);
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
