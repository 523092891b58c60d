// The model's shared shapes as TypeBox schemas, each with its type derived by Static<>. The database
// rows, the policy file, the HTTP schemas (which add their OpenAPI text on top) and the domain all
// take them from here.
import Type, { type Static, type TLiteral, type TUnion } from 'typebox';
import {
  DELIVERIES,
  HOST_ID_PATTERN,
  JOB_ID_PATTERN,
  KEY_ID_PATTERN,
  KEY_STATUSES,
  REVOKE_REASONS,
  ROLES,
} from './values.ts';

type Literals<Values extends readonly string[]> = Values extends readonly [
  infer First extends string,
  ...infer Rest extends readonly string[],
]
  ? [TLiteral<First>, ...Literals<Rest>]
  : [];

/** One literal per value, in the list's order; JSON schema `anyOf` of `const`s. */
function literalUnion<const Values extends readonly string[]>(values: Values): TUnion<Literals<Values>> {
  // TypeBox cannot follow a tuple through `map`; the cast restores what the list says.
  return Type.Union(values.map((value) => Type.Literal(value))) as unknown as TUnion<Literals<Values>>;
}

export const KeyStatusSchema = literalUnion(KEY_STATUSES);
export type KeyStatus = Static<typeof KeyStatusSchema>;

export const DeliverySchema = literalUnion(DELIVERIES);
export type Delivery = Static<typeof DeliverySchema>;

export const RevokeReasonSchema = literalUnion(REVOKE_REASONS);
export type RevokeReason = Static<typeof RevokeReasonSchema>;

export const RoleSchema = literalUnion(ROLES);
export type Role = Static<typeof RoleSchema>;

export const HostIdSchema = Type.String({ pattern: HOST_ID_PATTERN });
export const JobIdSchema = Type.String({ pattern: JOB_ID_PATTERN });
export const KeyIdSchema = Type.String({ pattern: KEY_ID_PATTERN });

const KubernetesObjectBinding = <Kind extends 'kubernetes-job' | 'kubernetes-pod'>(kind: Kind) =>
  Type.Object({
    kind: Type.Literal(kind),
    namespace: Type.String(),
    name: Type.String(),
    uid: Type.String(),
  });

/**
 * The platform job a key was issued for. Set from verified claims or by the Kubernetes controller,
 * never from a request body; the end of that job revokes the key (src/keys/binding.ts).
 */
export const KeyBindingSchema = Type.Union([
  Type.Object({
    kind: Type.Literal('github-actions'),
    host: Type.String(),
    repository: Type.String(),
    runId: Type.String(),
    runAttempt: Type.String(),
    checkRunId: Type.Optional(Type.String()),
  }),
  Type.Object({
    kind: Type.Literal('gitlab-ci'),
    host: Type.String(),
    project: Type.String(),
    jobId: Type.String(),
    pipelineId: Type.String(),
  }),
  KubernetesObjectBinding('kubernetes-job'),
  KubernetesObjectBinding('kubernetes-pod'),
]);
export type KeyBinding = Static<typeof KeyBindingSchema>;
export type BindingKind = KeyBinding['kind'];
