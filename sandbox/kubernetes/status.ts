// The `Status` objects the Kubernetes API server answers failures with (apimachinery's
// `k8s.io/apimachinery/pkg/api/errors`): same reasons, codes, messages and `details`.
import type { ResourceType } from './resources.ts';

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: { continue?: string };
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  /** Absent on a delete's Success, as the API server's `finalizeDelete` leaves it. */
  code?: number;
}

/** A failure the API answers with its Status; thrown by every layer, answered by the router. */
export class KubeApiError extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
}

export function failure(
  code: number,
  reason: string,
  message: string,
  details?: StatusDetails,
): KubeApiError {
  return new KubeApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  });
}

/** `jobs.batch`, `pods`, `leases.coordination.k8s.io`: how messages name a resource. */
export const qualifiedName = (type: ResourceType) =>
  type.group === '' ? type.plural : `${type.plural}.${type.group}`;

// `details.kind` carries the resource (plural) here, as the API server fills it.
const resourceDetails = (type: ResourceType, name: string): StatusDetails => ({
  name,
  ...(type.group === '' ? {} : { group: type.group }),
  kind: type.plural,
});

export const notFound = (type: ResourceType, name: string) =>
  failure(404, 'NotFound', `${qualifiedName(type)} "${name}" not found`, resourceDetails(type, name));

export const alreadyExists = (type: ResourceType, name: string) =>
  failure(
    409,
    'AlreadyExists',
    `${qualifiedName(type)} "${name}" already exists`,
    resourceDetails(type, name),
  );

export const conflict = (
  type: ResourceType,
  name: string,
  why = 'the object has been modified; please apply your changes to the latest version and try again',
) =>
  failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedName(type)} "${name}": ${why}`,
    resourceDetails(type, name),
  );

/** A field error, formatted as apimachinery's `field.Error` (`path: Type: detail`). */
export interface FieldError {
  field: string;
  type: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported' | 'FieldValueForbidden';
  /** The part after the type, e.g. `Invalid value: "x": must be ...`. */
  detail: string;
}

export const required = (field: string): FieldError => ({
  field,
  type: 'FieldValueRequired',
  detail: 'Required value',
});
export const invalidValue = (field: string, value: unknown, why: string): FieldError => ({
  field,
  type: 'FieldValueInvalid',
  detail: `Invalid value: ${JSON.stringify(value)}: ${why}`,
});
export const notSupported = (field: string, value: unknown, supported: string[]): FieldError => ({
  field,
  type: 'FieldValueNotSupported',
  detail: `Unsupported value: ${JSON.stringify(value)}: supported values: ${supported.map((v) => `"${v}"`).join(', ')}`,
});

// `details.kind` is the Kind here, not the resource, as in `errors.NewInvalid`.
export function invalid(type: ResourceType, name: string, errors: FieldError[]): KubeApiError {
  const kind = type.group === '' ? type.kind : `${type.kind}.${type.group}`;
  const listed = errors.map((error) => `${error.field}: ${error.detail}`);
  const summary = listed.length === 1 ? listed[0] : `[${listed.join(', ')}]`;
  return failure(422, 'Invalid', `${kind} "${name}" is invalid: ${summary}`, {
    name,
    ...(type.group === '' ? {} : { group: type.group }),
    kind: type.kind,
    causes: errors.map((error) => ({ reason: error.type, message: error.detail, field: error.field })),
  });
}

export const badRequest = (message: string) => failure(400, 'BadRequest', message);

export const unauthorized = () => failure(401, 'Unauthorized', 'Unauthorized');

export const methodNotAllowed = () =>
  failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});

export const unsupportedMediaType = (accepted: string[]) =>
  failure(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
  );

export const pathNotFound = () =>
  failure(404, 'NotFound', 'the server could not find the requested resource', {});

export const expired = (message: string) => failure(410, 'Expired', message);

export const tooLargeResourceVersion = (requested: number, current: number) =>
  failure(504, 'Timeout', `Too large resource version: ${requested}, current: ${current}`, {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
    retryAfterSeconds: 1,
  });

/** What the fault injector answers for a status it was told to fail with. */
export function faultStatus(code: number): KubeStatus {
  const reasons: Record<number, [string, string]> = {
    429: ['TooManyRequests', 'Too many requests, please try again later.'],
    500: ['InternalError', 'Internal error occurred: sandbox fault'],
    503: ['ServiceUnavailable', 'The server is currently unable to handle the request'],
    504: ['Timeout', 'The server was unable to return a response in the time allotted'],
  };
  const [reason, message] = reasons[code] ?? ['Unknown', `sandbox fault ${code}`];
  return failure(code, reason, message, code === 429 ? { retryAfterSeconds: 1 } : {}).status;
}

export function success(type: ResourceType, name: string, uid: string): KubeStatus {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { ...resourceDetails(type, name), uid },
  };
}
