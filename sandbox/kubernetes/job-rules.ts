// batch/v1 Job defaulting and validation as the API server's Job strategy applies them: the
// generated selector and labels, the defaults of `spec`, and which fields stay immutable.
import type { Job, KubeObject } from './objects.ts';
import { podSpecDefaults, podSpecErrors } from './pod-rules.ts';
import { type FieldError, invalidValue } from './status.ts';

export const CONTROLLER_UID_LABEL = 'batch.kubernetes.io/controller-uid';
export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';

// Fields of a Job's spec an update may change; everything else is immutable once created.
const MUTABLE_SPEC_FIELDS = new Set([
  'parallelism',
  'suspend',
  'activeDeadlineSeconds',
  'ttlSecondsAfterFinished',
  'backoffLimitPerIndex',
  'maxFailedIndexes',
]);

export function jobDefaults(object: KubeObject): void {
  const job = object as Job;
  const { uid, name } = job.metadata as { uid: string; name: string };
  const spec = job.spec;
  spec.completions ??= 1;
  spec.parallelism ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ??= 'NonIndexed';
  spec.suspend ??= false;
  spec.podReplacementPolicy ??= 'TerminatingOrFailed';
  // The generated selector, and both the current and the legacy forms of the labels.
  const generated = {
    [CONTROLLER_UID_LABEL]: uid,
    [JOB_NAME_LABEL]: name,
    'controller-uid': uid,
    'job-name': name,
  };
  spec.selector = { matchLabels: { [CONTROLLER_UID_LABEL]: uid } };
  const templateMeta = spec.template.metadata ?? {};
  spec.template.metadata = {
    ...templateMeta,
    creationTimestamp: null,
    labels: { ...templateMeta.labels, ...generated },
  };
  if (Object.keys(job.metadata.labels ?? {}).length === 0) {
    job.metadata.labels = { ...spec.template.metadata.labels };
  }
  podSpecDefaults(spec.template.spec);
  job.metadata.generation = 1;
  job.status = {};
}

const nonNegative = (errors: FieldError[], field: string, value: unknown) => {
  if (value !== undefined && value !== null && !(Number.isInteger(value) && Number(value) >= 0)) {
    errors.push(invalidValue(field, value, 'must be greater than or equal to 0'));
  }
};

export function jobValidation(object: KubeObject): FieldError[] {
  const job = object as Job;
  const errors: FieldError[] = [];
  const name = job.metadata.name ?? '';
  // The name becomes a label value, so it is held to a label value's 63 characters.
  if (name.length > 63)
    errors.push(invalidValue('metadata.name', name, 'must be no more than 63 characters'));
  if (typeof job.spec?.template !== 'object' || job.spec.template === null) {
    return [...errors, { field: 'spec.template', type: 'FieldValueRequired', detail: 'Required value' }];
  }
  errors.push(...podSpecErrors(job.spec.template.spec, 'spec.template.spec', ['OnFailure', 'Never']));
  nonNegative(errors, 'spec.backoffLimit', job.spec.backoffLimit);
  nonNegative(errors, 'spec.parallelism', job.spec.parallelism);
  nonNegative(errors, 'spec.completions', job.spec.completions);
  return errors;
}

/** Checks a client's Job on create: a selector is generated unless `manualSelector` says otherwise. */
export function jobCreateErrors(job: Job): FieldError[] {
  if (job.spec?.selector !== undefined && job.spec.manualSelector !== true) {
    return [invalidValue('spec.selector', job.spec.selector, '`selector` will be auto-generated')];
  }
  return [];
}

export function jobUpdateErrors(next: KubeObject, previous: KubeObject): FieldError[] {
  const before = (previous as Job).spec as Record<string, unknown>;
  const after = (next as Job).spec as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const field of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (MUTABLE_SPEC_FIELDS.has(field)) continue;
    if (JSON.stringify(before[field]) !== JSON.stringify(after[field])) {
      errors.push(invalidValue(`spec.${field}`, after[field] ?? null, 'field is immutable'));
    }
  }
  return errors;
}
