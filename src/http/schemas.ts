import Type from 'typebox';
import { JOB_ID_PATTERN } from '../keys/policy.ts';

export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

const Delivery = Type.Union([Type.Literal('vault'), Type.Literal('response'), Type.Literal('wrapped')]);
const Status = Type.Union([
  Type.Literal('pending'),
  Type.Literal('active'),
  Type.Literal('revoking'),
  Type.Literal('revoked'),
  Type.Literal('failed'),
]);
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const IssueKeyBody = Type.Object(
  {
    provider: Type.String({ minLength: 1, maxLength: 64, description: 'Id of a configured Git host' }),
    repository: Type.String({
      minLength: 3,
      maxLength: 512,
      description: '`owner/name` or a GitLab project path',
    }),
    jobId: Type.String({ pattern: JOB_ID_PATTERN, description: 'The CI or Kubernetes job the key is for' }),
    // A number, not an integer, here: resolveTtl refuses a fraction with the configured range in the
    // message, which a bare "must be integer" from the schema would not tell the caller.
    ttlSeconds: Type.Optional(
      Type.Number({ description: 'Lifetime in whole seconds, within the configured bounds' }),
    ),
    delivery: Type.Optional(Delivery),
  },
  { additionalProperties: false },
);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ pattern: '^[\\x21-\\x7e]{1,255}$' })),
});

export const KeyIdParams = Type.Object({ id: Type.String({ pattern: UUID_PATTERN }) });
export const JobIdParams = Type.Object({ jobId: Type.String({ pattern: JOB_ID_PATTERN }) });

export const KeySchema = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  repository: Type.String(),
  jobId: Type.String(),
  status: Status,
  delivery: Delivery,
  fingerprint: Nullable(Type.String()),
  publicKey: Nullable(Type.String()),
  cloneUrl: Type.String(),
  knownHosts: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  revokedAt: Nullable(Type.String({ format: 'date-time' })),
  revokeReason: Nullable(Type.String()),
  failureReason: Nullable(Type.String()),
  vault: Nullable(Type.Object({ mount: Type.String(), path: Type.String() })),
});

export const IssuedKeySchema = Type.Intersect([
  KeySchema,
  Type.Object({ privateKey: Type.Optional(Type.String()), wrapToken: Type.Optional(Type.String()) }),
]);

export const ListKeysQuery = Type.Object(
  {
    provider: Type.Optional(Type.String({ maxLength: 64 })),
    repository: Type.Optional(Type.String({ maxLength: 512 })),
    jobId: Type.Optional(Type.String({ pattern: JOB_ID_PATTERN })),
    status: Type.Optional(Status),
    overdue: Type.Optional(Type.Boolean()),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  },
  { additionalProperties: false },
);

export const KeyListSchema = Type.Object({
  items: Type.Array(KeySchema),
  nextCursor: Nullable(Type.String()),
});
export const CompletedJobSchema = Type.Object({ jobId: Type.String(), keys: Type.Array(KeySchema) });
