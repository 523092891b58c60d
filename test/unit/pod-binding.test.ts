import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../src/keys/caller.ts';
import { podBindingOf } from '../../src/keys/pod-binding.ts';
import { podEndOf } from '../../src/kubernetes/pod-check.ts';

const caller = (kind: string, claims: Record<string, unknown>): Caller => ({
  id: 'oidc:cluster:system:serviceaccount:training:trainer',
  actor: 'cluster:system:serviceaccount:training:trainer',
  role: 'issuer',
  subject: { issuer: 'cluster', claims },
  details: { kind },
});

describe('podBindingOf', () => {
  it('binds a key to the pod a service-account token names', () => {
    const claims = {
      'kubernetes.io': {
        namespace: 'training',
        serviceaccount: { name: 'trainer', uid: 'sa-uid' },
        pod: { name: 'train-abc12', uid: '6f1c-pod' },
      },
    };
    expect(podBindingOf(caller('kubernetes', claims))).toEqual({
      kind: 'kubernetes-pod',
      namespace: 'training',
      name: 'train-abc12',
      uid: '6f1c-pod',
    });
  });

  it('binds nothing for a token without a pod, or a caller of another kind', () => {
    const noPod = { 'kubernetes.io': { namespace: 'training', serviceaccount: { name: 'trainer' } } };
    expect(podBindingOf(caller('kubernetes', noPod))).toBeUndefined();
    const pod = { 'kubernetes.io': { namespace: 'training', pod: { name: 'p', uid: 'u' } } };
    expect(podBindingOf(caller('github-actions', pod))).toBeUndefined();
  });
});

describe('podEndOf: what the controller makes of the bound pod the API answers with', () => {
  const bound = { namespace: 'training', name: 'train-abc12', uid: '6f1c-pod' };
  const pod = (uid: string, phase: string, deleting = false): V1Pod => ({
    metadata: { ...bound, uid, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
    status: { phase },
  });

  it('ends the key with the pod: Succeeded or Failed', () => {
    expect(podEndOf(bound, pod('6f1c-pod', 'Succeeded'))).toEqual({
      reason: 'job-ended',
      phase: 'Succeeded',
    });
    expect(podEndOf(bound, pod('6f1c-pod', 'Failed'))).toEqual({ reason: 'job-ended', phase: 'Failed' });
  });

  it('ends it as deleted when the pod is gone or its name is another pod now', () => {
    expect(podEndOf(bound, undefined)).toEqual({ reason: 'job-deleted', phase: 'Deleted' });
    expect(podEndOf(bound, pod('7a2d-new', 'Running'))).toEqual({
      reason: 'job-deleted',
      phase: 'Deleted',
      replacedBy: '7a2d-new',
    });
  });

  it('keeps it while the pod may still run: pending, running, terminating, or out of touch', () => {
    for (const phase of ['Pending', 'Running', 'Unknown'])
      expect(podEndOf(bound, pod('6f1c-pod', phase))).toBeUndefined();
    expect(podEndOf(bound, pod('6f1c-pod', 'Running', true))).toBeUndefined();
  });
});
