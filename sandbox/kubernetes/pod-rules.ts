// Pod defaulting and validation as the API server's pod strategy and admission plugins apply
// them (ServiceAccount admission names the `default` account when the spec names none).
import type { Container, KubeObject, Pod, PodSpec } from './objects.ts';
import { type FieldError, notSupported, required } from './status.ts';

const imagePullPolicy = (image: string) => {
  const tag = image.includes('@') ? 'digest' : (image.split('/').pop() ?? '').split(':')[1];
  return tag === undefined || tag === 'latest' ? 'Always' : 'IfNotPresent';
};

export function containerDefaults(container: Container): void {
  container.imagePullPolicy ??= imagePullPolicy(String(container.image ?? ''));
  container.resources ??= {};
  container.terminationMessagePath ??= '/dev/termination-log';
  container.terminationMessagePolicy ??= 'File';
}

/** The defaults of a pod spec, also applied to a Job's pod template. */
export function podSpecDefaults(spec: PodSpec): void {
  for (const container of spec.containers ?? []) containerDefaults(container);
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.terminationGracePeriodSeconds ??= 30;
}

export function podDefaults(object: KubeObject): void {
  const pod = object as Pod;
  pod.spec.restartPolicy ??= 'Always';
  podSpecDefaults(pod.spec);
  pod.spec.serviceAccountName ??= 'default';
  pod.spec.serviceAccount = pod.spec.serviceAccountName;
  pod.spec.enableServiceLinks ??= true;
  pod.spec.preemptionPolicy ??= 'PreemptLowerPriority';
  pod.spec.priority ??= 0;
  pod.spec.tolerations ??= ['not-ready', 'unreachable'].map((taint) => ({
    key: `node.kubernetes.io/${taint}`,
    operator: 'Exists',
    effect: 'NoExecute',
    tolerationSeconds: 300,
  }));
  pod.status = { phase: 'Pending', qosClass: 'BestEffort' };
}

export function podSpecErrors(
  spec: PodSpec | undefined,
  at: string,
  restartPolicies: string[],
): FieldError[] {
  const errors: FieldError[] = [];
  const containers = Array.isArray(spec?.containers) ? spec.containers : [];
  if (containers.length === 0) errors.push(required(`${at}.containers`));
  containers.forEach((container, index) => {
    if (!container?.name) errors.push(required(`${at}.containers[${index}].name`));
    if (!container?.image) errors.push(required(`${at}.containers[${index}].image`));
  });
  const restartPolicy = spec?.restartPolicy;
  if (!restartPolicy) errors.push(required(`${at}.restartPolicy`));
  else if (!restartPolicies.includes(restartPolicy)) {
    errors.push(notSupported(`${at}.restartPolicy`, restartPolicy, restartPolicies));
  }
  return errors;
}

export const podValidation = (object: KubeObject) =>
  podSpecErrors((object as Pod).spec, 'spec', ['Always', 'OnFailure', 'Never']);

// What a pod update may change in the spec (ValidatePodUpdate): images, the deadline, tolerations.
export function podUpdateErrors(next: KubeObject, previous: KubeObject): FieldError[] {
  const comparable = (pod: Pod) => ({
    ...pod.spec,
    containers: pod.spec.containers.map(({ image: _image, ...rest }) => rest),
    activeDeadlineSeconds: undefined,
    tolerations: undefined,
  });
  if (JSON.stringify(comparable(next as Pod)) === JSON.stringify(comparable(previous as Pod))) return [];
  return [
    {
      field: 'spec',
      type: 'FieldValueForbidden',
      detail:
        'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
    },
  ];
}
