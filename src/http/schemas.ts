import Type, { type TSchema } from 'typebox';
import {
  DeliverySchema,
  HostIdSchema,
  JobIdSchema,
  KeyBindingSchema,
  KeyIdSchema,
  KeyStatusSchema,
} from '../model/schemas.ts';
import { PROBLEM_CONTENT_TYPE, type Problem } from './errors.ts';

// NUL and other control characters have no business in a filter, and Postgres refuses NUL in text.
const NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001f\\u007f]*$';

/** A free-text query parameter: bounded, and refused (400) when it holds a control character. */
export const PlainText = (options: { minLength?: number; maxLength: number; description?: string }) =>
  Type.String({ ...options, pattern: NO_CONTROL_CHARACTERS });

const Delivery = Type.With(DeliverySchema, {
  description:
    'How the private key reaches the job: only in Vault (`vault`, the default), also in this one response ' +
    '(`response`), or as a single-use Vault response-wrapping token (`wrapped`)',
});
const Status = Type.With(KeyStatusSchema, {
  description: 'pending → active → revoking → revoked; an issue that could not complete ends failed',
});
const HostId = Type.With(HostIdSchema, { description: 'Id of a configured Git host' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const IssueKeyBody = Type.Object(
  {
    provider: HostId,
    repository: Type.String({
      minLength: 3,
      maxLength: 512,
      description: '`owner/name` (GitHub, Gitea/Forgejo) or a GitLab project path',
    }),
    jobId: Type.With(JobIdSchema, { description: 'The CI or Kubernetes job the key is for' }),
    ttlSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'Lifetime in whole seconds, from `keys.minTtlSeconds` to `keys.maxTtlSeconds` of the configuration ' +
          '(default 60 to 86400); outside them the answer is `invalid-ttl` naming the bounds',
      }),
    ),
    delivery: Type.Optional(Delivery),
  },
  { additionalProperties: false },
);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      pattern: '^[\\x21-\\x7e]{1,255}$',
      description:
        'Makes retries safe: the same key and body return the first result, a different body gets 409',
    }),
  ),
});

export const KeyIdParams = Type.Object({
  id: Type.With(KeyIdSchema, { description: 'The key id' }),
});
export const JobIdParams = Type.Object({
  jobId: Type.With(JobIdSchema, { description: 'The job id the keys were issued for' }),
});

const Binding = Type.With(KeyBindingSchema, {
  description: 'The platform job whose end revokes the key (set from verified claims or by the controller)',
});

export const KeySchema = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  repository: Type.String(),
  jobId: Type.String(),
  caller: Type.String({
    description: 'Who asked for the key, e.g. `token:jenkins` or `oidc:<issuer>:<subject>`',
  }),
  status: Status,
  attempts: Type.Integer({ description: 'Failed revoke (or undo) attempts so far' }),
  lastError: Nullable(
    Type.String({ description: 'The last failure, naming the dependency; never a secret' }),
  ),
  delivery: Delivery,
  fingerprint: Nullable(Type.String()),
  publicKey: Nullable(Type.String()),
  cloneUrl: Type.String({ description: 'SSH URL to clone the repository with this key' }),
  knownHosts: Type.Array(Type.String(), { description: '`known_hosts` lines of the Git host' }),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  revokedAt: Nullable(Type.String({ format: 'date-time' })),
  revokeReason: Nullable(Type.String()),
  binding: Nullable(Binding),
  failureReason: Nullable(Type.String()),
  vault: Nullable(
    Type.Object({
      mount: Type.String(),
      path: Type.String(),
      role: Type.Optional(Type.String({ description: 'Kubernetes-auth role that may read this key' })),
    }),
  ),
});

export const IssuedKeySchema = Type.Intersect([
  KeySchema,
  Type.Object({
    privateKey: Type.Optional(
      Type.String({ description: 'OpenSSH private key, only with delivery `response`' }),
    ),
    wrapToken: Type.Optional(
      Type.String({
        description:
          'Single-use `vault unwrap` token, only with `wrapped`, and only in the first answer: a replay ' +
          'never hands out another token',
      }),
    ),
    wrapAccessor: Type.Optional(
      Type.String({
        description:
          "The wrapping token's accessor (with `wrapped`, in the first answer and on replay): it can look " +
          'the token up or revoke it, never unwrap it. Revoking the key revokes the token',
      }),
    ),
  }),
]);

export const ListKeysQuery = Type.Object(
  {
    provider: Type.Optional(HostId),
    repository: Type.Optional(
      PlainText({ maxLength: 512, description: 'Compared as the host does: case-insensitively' }),
    ),
    jobId: Type.Optional(JobIdSchema),
    status: Type.Optional(Status),
    caller: Type.Optional(
      PlainText({
        minLength: 1,
        maxLength: 512,
        description: "Only this caller's keys (auditors and admins; an issuer only ever sees its own)",
      }),
    ),
    overdue: Type.Optional(Type.Boolean({ description: 'Only keys past their expiry and not yet revoked' })),
    cursor: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]{1,200}$',
        description: '`nextCursor` of the previous page, as it was handed out',
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Page size' })),
  },
  { additionalProperties: false },
);

export const KeyListSchema = Type.Object({
  items: Type.Array(KeySchema),
  nextCursor: Nullable(Type.String()),
});
export const CompletedJobSchema = Type.Object({ jobId: Type.String(), keys: Type.Array(KeySchema) });

/** The same schema with a description, which the spec also shows as the response's description. */
export const described = <T extends TSchema>(schema: T, description: string): T => ({
  ...schema,
  description,
});

export const PROBLEM_SCHEMA_ID = 'Problem';

// Registered once with `addSchema` (see registerOpenApi), so every route refers to one `Problem`
// component and fastify serializes error answers with it; extension members pass through.
export const ProblemSchema = Type.Object(
  {
    type: Type.String({
      format: 'uri',
      description: 'Identifies the kind of problem; the last path segment equals `code`',
    }),
    title: Type.String({ description: 'The HTTP reason phrase of `status`' }),
    status: Type.Integer({ minimum: 400, maximum: 599, description: 'The HTTP status code of this answer' }),
    detail: Type.Optional(
      Type.String({ description: 'What went wrong with this request; never shows internals of a 5xx' }),
    ),
    instance: Type.Optional(Type.String({ description: 'The path of the request that failed' })),
    code: Type.String({ description: 'Stable, machine-readable error code, e.g. `key-not-found`' }),
  },
  {
    $id: PROBLEM_SCHEMA_ID,
    title: 'Problem',
    description:
      'RFC 9457 problem details. Some problems carry extension members: `errors` (validation failures), ' +
      '`keyId` or `activeKeyId` (conflicts), `providers`, `minTtlSeconds`/`maxTtlSeconds`, `reason`, `checks`.',
    additionalProperties: true,
  },
);

const ProblemRef = Type.Unsafe<Problem>(Type.Ref(PROBLEM_SCHEMA_ID));

/** Response headers a 2xx answer may carry besides the body, declared so generated clients type them. */
export const withHeaders = <T extends TSchema>(schema: T, headers: Record<string, TSchema>): T => ({
  ...schema,
  headers,
});

const RETRY_LATER = Type.Integer({
  minimum: 1,
  description: 'Seconds after which the same request may succeed',
});
const HEADERS_BY_STATUS: Record<number, Record<string, TSchema>> = {
  401: {
    'www-authenticate': Type.String({
      description: 'The `Bearer` challenge, with `error` when a token was refused',
    }),
  },
  409: { 'retry-after': RETRY_LATER },
  429: { 'retry-after': Type.Integer({ minimum: 1, description: 'Seconds until the budget refills' }) },
  503: { 'retry-after': RETRY_LATER },
};

export type ProblemStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 502 | 503 | 504;

interface ProblemResponse {
  description: string;
  headers?: Record<string, TSchema>;
  content: { [PROBLEM_CONTENT_TYPE]: { schema: typeof ProblemRef } };
}

/** Documents the `application/problem+json` answers of a route, one description per status. */
export function problemResponses<D extends Partial<Record<ProblemStatus, string>>>(
  descriptions: D,
): { [Status in keyof D]: ProblemResponse } {
  const responses: Record<string, ProblemResponse> = {};
  for (const [status, description] of Object.entries(descriptions)) {
    const headers = HEADERS_BY_STATUS[Number(status)];
    responses[status] = {
      description: description as string,
      ...(headers ? { headers } : {}),
      content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemRef } },
    };
  }
  return responses as { [Status in keyof D]: ProblemResponse };
}

/** Problem descriptions many routes share; a route adds what only it can answer. */
export const COMMON_PROBLEMS = {
  invalidParameters:
    '`validation-failed`: a path, query or header parameter breaks its schema; `errors` lists each one',
  unauthorized:
    '`unauthorized`: no bearer token, or one that is unknown, revoked, expired or fails verification (`reason`)',
  rateLimited:
    '`rate-limited`: this caller used up its request budget for the window (expensive routes have a smaller ' +
    'one of their own), or `authentication-throttled`: too many failed authentications from this address',
  internal: '`internal`: an unexpected failure; the detail never shows internals',
  issuerUnavailable:
    '`issuer-unavailable`: the OIDC issuer of the bearer token cannot be reached to verify it; see `Retry-After`',
  bodyTooLarge: '`body-too-large`: the body is over 16 KiB',
  unsupportedMediaType: '`unsupported-media-type`: the body is not `application/json`',
} as const;

/** What any route that authenticates its caller and counts its rate limit may answer. */
export const CALLER_PROBLEMS = {
  401: COMMON_PROBLEMS.unauthorized,
  429: COMMON_PROBLEMS.rateLimited,
  500: COMMON_PROBLEMS.internal,
  503: COMMON_PROBLEMS.issuerUnavailable,
} as const;
