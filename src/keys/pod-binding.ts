import type { KeyBinding } from '../model/schemas.ts';
import type { Caller } from './caller.ts';

interface PodClaim {
  namespace?: unknown;
  pod?: { name?: unknown; uid?: unknown };
}

/** The Kubernetes pod a caller's verified service-account token names (its `kubernetes.io.pod` claim). */
export function podBindingOf(caller: Caller): KeyBinding | undefined {
  if (caller.details.kind !== 'kubernetes') return undefined;
  const claim = caller.subject.claims['kubernetes.io'] as PodClaim | undefined;
  const namespace = claim?.namespace;
  const name = claim?.pod?.name;
  const uid = claim?.pod?.uid;
  if (typeof namespace !== 'string' || typeof name !== 'string' || typeof uid !== 'string') return undefined;
  if (namespace === '' || name === '' || uid === '') return undefined;
  return { kind: 'kubernetes-pod', namespace, name, uid };
}
