// Core v1 Events as the controllers' event recorder writes them (client-go's `record` package):
// named `<object>.<hex nanoseconds>`, pointing at the object through `involvedObject`.
import type { KubeObject } from './objects.ts';
import { kubeTime } from './objects.ts';
import type { Registry } from './registry.ts';
import { resourceTypeOf } from './resources.ts';

const events = resourceTypeOf('events');
let sequence = 0n;

export function recordEvent(
  registry: Registry,
  now: () => Date,
  involved: KubeObject,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  component = 'job-controller',
): KubeObject {
  const at = now();
  // The recorder names events by the time in nanoseconds; a counter keeps two in one millisecond apart.
  sequence += 1n;
  const nanos = BigInt(at.getTime()) * 1_000_000n + sequence;
  const timestamp = kubeTime(at);
  return registry.create(events, involved.metadata.namespace!, {
    metadata: { name: `${involved.metadata.name}.${nanos.toString(16)}` },
    involvedObject: {
      kind: involved.kind,
      namespace: involved.metadata.namespace,
      name: involved.metadata.name,
      uid: involved.metadata.uid,
      apiVersion: involved.apiVersion,
      resourceVersion: involved.metadata.resourceVersion,
    },
    reason,
    message,
    source: { component },
    firstTimestamp: timestamp,
    lastTimestamp: timestamp,
    count: 1,
    type,
    eventTime: null,
    reportingComponent: component,
    reportingInstance: '',
  });
}
