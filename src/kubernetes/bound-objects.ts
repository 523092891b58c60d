// The Kubernetes objects live keys are bound to, read from the keys' recorded bindings.
import type { DeployKeyRow } from '../db/schema.ts';

/** A Job or pod as a key's binding records it: where it was and which one (its uid). */
export interface BoundObject {
  namespace: string;
  name: string;
  uid: string;
}

/** The objects of this kind the rows are bound to, each once, in the rows' order. */
export function boundObjects(
  rows: Pick<DeployKeyRow, 'binding'>[],
  kind: 'kubernetes-job' | 'kubernetes-pod',
): BoundObject[] {
  const byUid = new Map<string, BoundObject>();
  for (const { binding } of rows) {
    if (binding?.kind !== kind || !binding.uid || !binding.namespace || !binding.name) continue;
    if (!byUid.has(binding.uid)) {
      byUid.set(binding.uid, { namespace: binding.namespace, name: binding.name, uid: binding.uid });
    }
  }
  return [...byUid.values()];
}
