// The resource types the stand-in serves, each with what the API server's registry strategy for
// it does: defaulting on create, validation, which fields an update may change, field selectors.
import { jobDefaults, jobUpdateErrors, jobValidation } from './job-rules.ts';
import { isRecord, type KubeObject, kubeMicroTime, type Pod } from './objects.ts';
import { podDefaults, podUpdateErrors, podValidation } from './pod-rules.ts';
import { type FieldError, invalidValue, notSupported } from './status.ts';

type FieldLabel = (object: KubeObject) => string;

export interface ResourceType {
  group: '' | 'batch' | 'coordination.k8s.io';
  apiVersion: string;
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  shortNames: string[];
  categories: string[];
  /** Field selector labels besides `metadata.name` and `metadata.namespace`. */
  fieldLabels: Record<string, FieldLabel>;
  /** A PUT of a missing object creates it (events). */
  allowCreateOnUpdate: boolean;
  /** A PUT without `metadata.resourceVersion` is accepted (everything but leases). */
  allowUnconditionalUpdate: boolean;
  /** `status` is a subresource: writes to the main resource leave it as it was. */
  hasStatus: boolean;
  /** Batch/v1 Jobs orphan their pods when a delete names no propagation policy. */
  orphansByDefault: boolean;
  defaults(object: KubeObject): void;
  /** Re-encodes fields the server stores in a canonical form (MicroTime), on every write. */
  normalize?(object: KubeObject): void;
  validate(object: KubeObject): FieldError[];
  updateErrors(next: KubeObject, previous: KubeObject): FieldError[];
  /** The empty object a BOOKMARK carries, as Go serializes a zero value. */
  bookmarkBody: Record<string, unknown>;
}

export const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const text = (value: unknown) => (value === undefined || value === null ? '' : String(value));
const path = (object: KubeObject, ...keys: string[]) => {
  let value: unknown = object;
  for (const key of keys) value = isRecord(value) ? value[key] : undefined;
  return text(value);
};

const pods: ResourceType = {
  group: '',
  apiVersion: 'v1',
  plural: 'pods',
  singular: 'pod',
  kind: 'Pod',
  listKind: 'PodList',
  shortNames: ['po'],
  categories: ['all'],
  fieldLabels: {
    'spec.nodeName': (o) => path(o, 'spec', 'nodeName'),
    'spec.restartPolicy': (o) => path(o, 'spec', 'restartPolicy'),
    'spec.schedulerName': (o) => path(o, 'spec', 'schedulerName'),
    'spec.serviceAccountName': (o) => path(o, 'spec', 'serviceAccountName'),
    'spec.hostNetwork': (o) => String((o as Pod).spec?.hostNetwork === true),
    'status.phase': (o) => path(o, 'status', 'phase'),
    'status.podIP': (o) => path(o, 'status', 'podIP'),
    'status.nominatedNodeName': (o) => path(o, 'status', 'nominatedNodeName'),
  },
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  hasStatus: true,
  orphansByDefault: false,
  defaults: podDefaults,
  validate: podValidation,
  updateErrors: podUpdateErrors,
  bookmarkBody: { spec: { containers: null }, status: {} },
};

const jobs: ResourceType = {
  group: 'batch',
  apiVersion: 'batch/v1',
  plural: 'jobs',
  singular: 'job',
  kind: 'Job',
  listKind: 'JobList',
  shortNames: [],
  categories: ['all'],
  fieldLabels: { 'status.successful': (o) => String(Number(path(o, 'status', 'succeeded') || 0)) },
  allowCreateOnUpdate: false,
  allowUnconditionalUpdate: true,
  hasStatus: true,
  orphansByDefault: true,
  defaults: jobDefaults,
  validate: jobValidation,
  updateErrors: jobUpdateErrors,
  bookmarkBody: {
    spec: { template: { metadata: { creationTimestamp: null }, spec: { containers: null } } },
    status: {},
  },
};

const events: ResourceType = {
  group: '',
  apiVersion: 'v1',
  plural: 'events',
  singular: 'event',
  kind: 'Event',
  listKind: 'EventList',
  shortNames: ['ev'],
  categories: [],
  fieldLabels: Object.fromEntries([
    ...['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map(
      (field): [string, FieldLabel] => [`involvedObject.${field}`, (o) => path(o, 'involvedObject', field)],
    ),
    ['reason', (o: KubeObject) => text(o.reason)],
    ['reportingComponent', (o: KubeObject) => text(o.reportingComponent)],
    ['source', (o: KubeObject) => path(o, 'source', 'component')],
    ['type', (o: KubeObject) => text(o.type)],
  ]),
  allowCreateOnUpdate: true,
  allowUnconditionalUpdate: true,
  hasStatus: false,
  orphansByDefault: false,
  defaults: () => {},
  validate: (event) => {
    const namespace = path(event, 'involvedObject', 'namespace');
    return namespace !== '' && namespace !== event.metadata.namespace
      ? [invalidValue('involvedObject.namespace', namespace, 'does not match event.namespace')]
      : [];
  },
  updateErrors: () => [],
  bookmarkBody: {
    involvedObject: {},
    source: {},
    firstTimestamp: null,
    lastTimestamp: null,
    eventTime: null,
    reportingComponent: '',
    reportingInstance: '',
  },
};

function leaseValidation(lease: KubeObject): FieldError[] {
  const spec = isRecord(lease.spec) ? lease.spec : {};
  const errors: FieldError[] = [];
  const duration = spec.leaseDurationSeconds;
  if (duration !== undefined && duration !== null && !(Number.isInteger(duration) && Number(duration) > 0)) {
    errors.push(invalidValue('spec.leaseDurationSeconds', duration, 'must be greater than 0'));
  }
  const transitions = spec.leaseTransitions;
  if (transitions !== undefined && transitions !== null && !(Number(transitions) >= 0)) {
    errors.push(invalidValue('spec.leaseTransitions', transitions, 'must be greater than or equal to 0'));
  }
  const strategy = spec.strategy;
  if (strategy !== undefined && strategy !== null && strategy !== 'OldestEmulationVersion') {
    errors.push(notSupported('spec.strategy', strategy, ['OldestEmulationVersion']));
  }
  return errors;
}

const leases: ResourceType = {
  group: 'coordination.k8s.io',
  apiVersion: 'coordination.k8s.io/v1',
  plural: 'leases',
  singular: 'lease',
  kind: 'Lease',
  listKind: 'LeaseList',
  shortNames: [],
  categories: [],
  fieldLabels: {},
  allowCreateOnUpdate: false,
  // Leader election relies on this: an update must name the version it read.
  allowUnconditionalUpdate: false,
  hasStatus: false,
  orphansByDefault: false,
  defaults: (lease) => {
    if (!isRecord(lease.spec)) lease.spec = {};
  },
  normalize: (lease) => {
    const spec = isRecord(lease.spec) ? lease.spec : {};
    for (const field of ['acquireTime', 'renewTime']) {
      const value = spec[field];
      if (typeof value !== 'string') continue;
      const parsed = new Date(value);
      if (!Number.isNaN(parsed.getTime())) spec[field] = kubeMicroTime(parsed);
    }
  },
  validate: leaseValidation,
  updateErrors: () => [],
  bookmarkBody: { spec: {} },
};

export const RESOURCE_TYPES: ResourceType[] = [pods, events, jobs, leases];

export function findResourceType(group: string, plural: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((type) => type.group === group && type.plural === plural);
}

export const resourceTypeOf = (plural: 'pods' | 'jobs' | 'events' | 'leases'): ResourceType =>
  RESOURCE_TYPES.find((type) => type.plural === plural)!;
