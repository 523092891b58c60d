import { describe, expect, it } from 'vitest';
import type { Caller } from '../../src/keys/caller.ts';
import { podBindingOf } from '../../src/keys/pod-binding.ts';

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
