// The object shapes the stand-in stores (as the API serves them in JSON) and the time formats
// of `metav1.Time` (seconds) and `metav1.MicroTime` (microseconds).
import { randomInt } from 'node:crypto';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | null;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [field: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface Container {
  name: string;
  image: string;
  [field: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  restartPolicy?: string;
  serviceAccountName?: string;
  nodeName?: string;
  terminationGracePeriodSeconds?: number;
  [field: string]: unknown;
}

export interface ContainerState {
  waiting?: { reason: string };
  running?: { startedAt: string };
  terminated?: {
    exitCode: number;
    reason: string;
    startedAt?: string;
    finishedAt: string;
    containerID?: string;
  };
}

export interface PodStatus {
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  conditions?: { type: string; status: string; [field: string]: unknown }[];
  containerStatuses?: { name: string; state: ContainerState; [field: string]: unknown }[];
  startTime?: string;
  [field: string]: unknown;
}

export interface Pod extends KubeObject {
  spec: PodSpec;
  status?: PodStatus;
}

export interface JobCondition {
  type: 'Complete' | 'Failed' | 'SuccessCriteriaMet' | 'FailureTarget' | 'Suspended';
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastProbeTime: string;
  lastTransitionTime: string;
}

export interface JobSpec {
  template: { metadata?: ObjectMeta; spec: PodSpec };
  selector?: { matchLabels?: Record<string, string> };
  backoffLimit?: number;
  completions?: number;
  parallelism?: number;
  suspend?: boolean;
  [field: string]: unknown;
}

export interface JobStatus {
  conditions?: JobCondition[];
  startTime?: string;
  completionTime?: string;
  active?: number;
  ready?: number;
  succeeded?: number;
  failed?: number;
  terminating?: number;
  uncountedTerminatedPods?: Record<string, string[]>;
}

export interface Job extends KubeObject {
  spec: JobSpec;
  status?: JobStatus;
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `metav1.Time`: RFC 3339 in UTC, whole seconds. */
export const kubeTime = (date: Date) => `${date.toISOString().slice(0, 19)}Z`;

/** `metav1.MicroTime`: RFC 3339 in UTC with six fractional digits. */
export const kubeMicroTime = (date: Date) => `${date.toISOString().slice(0, 23)}000Z`;

// The alphabet of apiserver's `generateName` suffixes (no vowels, no look-alike digits).
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export const randomSuffix = (length = 5) =>
  Array.from({ length }, () => NAME_ALPHABET[randomInt(NAME_ALPHABET.length)]).join('');

export const objectKey = (namespace: string, name: string) => `${namespace}/${name}`;

export const clone = <T>(value: T): T => structuredClone(value);
