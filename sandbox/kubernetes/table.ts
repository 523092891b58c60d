// Server-side printing: a `meta.k8s.io` Table when the client asks for one (`Accept:
// application/json;as=Table;v=v1;g=meta.k8s.io`, as `kubectl get` does), with the columns the API
// server's printers give Jobs, Pods, Events and Leases.
import type { Job, KubeObject, Pod } from './objects.ts';
import { isRecord } from './objects.ts';
import type { ResourceType } from './resources.ts';

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
  cell(object: KubeObject, now: Date): string | number;
}

const column = (name: string, cell: Column['cell'], options: Partial<Column> = {}): Column => ({
  name,
  type: 'string',
  format: name === 'Name' ? 'name' : '',
  description: name,
  priority: 0,
  cell,
  ...options,
});

/** apimachinery's `duration.HumanDuration`: `45s`, `3m20s`, `5h12m`, `3d4h`, `2y10d`. */
export function humanDuration(milliseconds: number): string {
  const seconds = Math.floor(milliseconds / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (days < 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  return days % 365 === 0 || days >= 365 * 8 ? `${years}y` : `${years}y${days % 365}d`;
}

const since = (time: unknown, now: Date) =>
  typeof time === 'string' ? humanDuration(now.getTime() - new Date(time).getTime()) : '<unknown>';
const age = column('Age', (object, now) => since(object.metadata.creationTimestamp, now));
const name = column('Name', (object) => object.metadata.name ?? '');

function jobStatus(job: Job): string {
  const has = (type: string) => job.status?.conditions?.some((c) => c.type === type && c.status === 'True');
  if (job.spec.suspend) return 'Suspended';
  if (has('Failed')) return 'Failed';
  if (has('Complete')) return 'Complete';
  if (job.metadata.deletionTimestamp) return 'Terminating';
  if (has('FailureTarget')) return 'FailureTarget';
  if (has('SuccessCriteriaMet')) return 'SuccessCriteriaMet';
  return 'Running';
}

function jobDuration(job: Job, now: Date): string {
  const start = job.status?.startTime;
  if (!start) return '';
  const end = job.status?.completionTime ? new Date(job.status.completionTime) : now;
  return humanDuration(end.getTime() - new Date(start).getTime());
}

function podStatus(pod: Pod): string {
  let reason: string =
    typeof pod.status?.reason === 'string' ? pod.status.reason : (pod.status?.phase ?? 'Unknown');
  for (const status of pod.status?.containerStatuses ?? []) {
    if (status.state.waiting?.reason) reason = status.state.waiting.reason;
    else if (status.state.terminated?.reason) reason = status.state.terminated.reason;
  }
  const terminal = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
  return pod.metadata.deletionTimestamp && !terminal ? 'Terminating' : reason;
}

const COLUMNS: Record<string, Column[]> = {
  jobs: [
    name,
    column('Status', (o) => jobStatus(o as Job)),
    column('Completions', (o) => `${(o as Job).status?.succeeded ?? 0}/${(o as Job).spec.completions ?? 1}`),
    column('Duration', (o, now) => jobDuration(o as Job, now)),
    age,
  ],
  pods: [
    name,
    column('Ready', (o) => {
      const statuses = (o as Pod).status?.containerStatuses ?? [];
      return `${statuses.filter((s) => s.ready === true).length}/${(o as Pod).spec.containers.length}`;
    }),
    column('Status', (o) => podStatus(o as Pod)),
    column('Restarts', (o) =>
      String(
        ((o as Pod).status?.containerStatuses ?? []).reduce((sum, s) => sum + Number(s.restartCount ?? 0), 0),
      ),
    ),
    age,
    column('IP', (o) => String((o as Pod).status?.podIP ?? '<none>'), { priority: 1 }),
    column('Node', (o) => (o as Pod).spec.nodeName ?? '<none>', { priority: 1 }),
  ],
  events: [
    column('Last Seen', (o, now) => since(o.lastTimestamp ?? o.eventTime, now)),
    column('Type', (o) => String(o.type ?? '')),
    column('Reason', (o) => String(o.reason ?? '')),
    column('Object', (o) => {
      const involved = isRecord(o.involvedObject) ? o.involvedObject : {};
      return `${String(involved.kind ?? '').toLowerCase()}/${String(involved.name ?? '')}`;
    }),
    column('Message', (o) => String(o.message ?? '')),
  ],
  leases: [name, column('Holder', (o) => String((isRecord(o.spec) && o.spec.holderIdentity) || '')), age],
};

/** The Table version the Accept header asks for, if any (`v1` preferred). */
export function tableVersionAccepted(accept: string | undefined): 'v1' | 'v1beta1' | undefined {
  const offers = (accept ?? '').split(',').map((offer) => offer.replaceAll(' ', ''));
  const wanted = offers.filter((offer) => offer.includes('as=Table') && offer.includes('g=meta.k8s.io'));
  if (wanted.some((offer) => offer.includes('v=v1;') || offer.endsWith('v=v1'))) return 'v1';
  return wanted.some((offer) => offer.includes('v=v1beta1')) ? 'v1beta1' : undefined;
}

export function renderTable(
  type: ResourceType,
  objects: KubeObject[],
  options: {
    version: 'v1' | 'v1beta1';
    resourceVersion: string;
    continue?: string;
    includeObject?: string;
    now: Date;
  },
) {
  const columns = COLUMNS[type.plural] ?? [name, age];
  const rowObject = (object: KubeObject) => {
    if (options.includeObject === 'None') return undefined;
    if (options.includeObject === 'Object')
      return { ...object, kind: type.kind, apiVersion: type.apiVersion };
    return {
      kind: 'PartialObjectMetadata',
      apiVersion: `meta.k8s.io/${options.version}`,
      metadata: object.metadata,
    };
  };
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${options.version}`,
    metadata: {
      resourceVersion: options.resourceVersion,
      ...(options.continue ? { continue: options.continue } : {}),
    },
    columnDefinitions: columns.map(({ cell: _cell, ...definition }) => definition),
    rows: objects.map((object) => ({
      cells: columns.map((c) => c.cell(object, options.now)),
      ...(rowObject(object) === undefined ? {} : { object: rowObject(object) }),
    })),
  };
}
