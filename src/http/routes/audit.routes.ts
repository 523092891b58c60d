import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Kysely } from 'kysely';
import Type from 'typebox';
import { EXPORT_FORMATS, exportAuditEvents } from '../../audit/audit-export.ts';
import { type AuditFilter, listAuditEvents } from '../../audit/audit-query.ts';
import { AUDIT_VERIFY_MAX_AGE_SECONDS, type AuditVerifier } from '../../audit/audit-verifier.ts';
import { MAX_LISTED_BAD_EVENTS } from '../../audit/audit-verify.ts';
import type { AuditCheckpoints } from '../../audit/checkpoint.ts';
import type { Authenticator } from '../../auth/authenticator.ts';
import type { Database } from '../../db/schema.ts';
import { JOB_ID_PATTERN } from '../../keys/policy.ts';
import { VaultError } from '../../vault/secret-store.ts';
import { requireCaller } from '../auth.ts';
import { AppError } from '../errors.ts';
import { expensiveRoute, type RequestBudgets, registerCallerBudget } from '../request-budgets.ts';
import { PlainText, UUID_PATTERN } from '../schemas.ts';

export interface AuditRouteDeps {
  db: Kysely<Database>;
  checkpoints: AuditCheckpoints;
  verifier: AuditVerifier;
  authenticate: Authenticator;
  budgets: RequestBudgets;
  clock: () => Date;
}

const Text = (maxLength: number, description?: string) =>
  Type.Optional(PlainText({ minLength: 1, maxLength, ...(description ? { description } : {}) }));
const Instant = (description: string) =>
  Type.Optional(
    Type.String({
      format: 'date-time',
      description: `${description}; an instant that does not exist (such as a leap second) is refused`,
    }),
  );
const FilterFields = {
  from: Instant('Events at or after (inclusive)'),
  to: Instant('Events before (exclusive)'),
  keyId: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
  repository: Text(512, 'Compared as the host does: case-insensitively'),
  jobId: Type.Optional(Type.String({ pattern: JOB_ID_PATTERN })),
  actor: Text(512),
  action: Text(128),
};
const SEQ_PATTERN = '^[0-9]{1,19}$';
const MAX_SEQ = 2n ** 63n - 1n;

export const AuditEventsQuery = Type.Object(
  {
    ...FilterFields,
    cursor: Type.Optional(
      Type.String({
        pattern: SEQ_PATTERN,
        description: `nextCursor of the previous page: a seq, at most ${MAX_SEQ}`,
      }),
    ),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  },
  { additionalProperties: false },
);

export const AuditExportQuery = Type.Object(
  {
    ...FilterFields,
    format: Type.Optional(Type.Union([Type.Literal('ndjson'), Type.Literal('csv')], { default: 'ndjson' })),
  },
  { additionalProperties: false },
);

const Nullable = (schema: ReturnType<typeof Type.String>) => Type.Union([schema, Type.Null()]);
export const AuditEventSchema = Type.Object({
  seq: Type.String({ pattern: SEQ_PATTERN }),
  at: Type.String({ format: 'date-time' }),
  actor: Type.String(),
  action: Type.String(),
  keyId: Nullable(Type.String()),
  provider: Nullable(Type.String()),
  repository: Nullable(Type.String()),
  jobId: Nullable(Type.String()),
  details: Type.Record(Type.String(), Type.Unknown()),
  prevHash: Type.String(),
  hash: Type.String(),
});

export const CheckpointSchema = Type.Object({
  seq: Type.String(),
  head: Type.String(),
  at: Type.String({ format: 'date-time' }),
  signature: Type.String({ description: 'Base64 Ed25519 signature over canonical JSON of {at, head, seq}' }),
  publicKey: Type.String({ description: 'SPKI PEM of the signing key' }),
  valid: Type.Boolean({ description: 'Whether the signature verifies with the configured key' }),
});

export const VerificationSchema = Type.Object({
  ok: Type.Boolean(),
  checked: Type.Integer({ description: 'Events walked, from seq 1' }),
  firstBadSeq: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String({ description: 'Why the first bad event is bad' })),
  badEvents: Type.Array(Type.Object({ seq: Type.String(), reason: Type.String() }), {
    maxItems: MAX_LISTED_BAD_EVENTS,
    description: `Every event that fails a check, in seq order (at most ${MAX_LISTED_BAD_EVENTS}); empty when intact`,
  }),
  badEventCount: Type.Integer({ minimum: 0, description: 'How many events fail a check' }),
  lastCheckpoint: Type.Union([CheckpointSchema, Type.Null()]),
  warnings: Type.Optional(Type.Array(Type.String())),
  verifiedAt: Type.String({
    format: 'date-time',
    description: `When the chain was walked; a result is reused for up to ${AUDIT_VERIFY_MAX_AGE_SECONDS} s while the chain head and the last checkpoint are unchanged`,
  }),
});

function filterOf(query: {
  from?: string;
  to?: string;
  keyId?: string;
  repository?: string;
  jobId?: string;
  actor?: string;
  action?: string;
}): AuditFilter {
  const { from, to, ...exact } = query;
  const filter: AuditFilter = Object.fromEntries(Object.entries(exact).filter(([, value]) => value));
  if (from) filter.from = instant(from, 'from');
  if (to) filter.to = instant(to, 'to');
  if (filter.from && filter.to && filter.from > filter.to) {
    throw new AppError('invalid-range', 400, '`from` must not be later than `to`');
  }
  return filter;
}

/** The instant a date-time names; one that passes the format but does not exist (23:59:60) is a 400. */
function instant(value: string, name: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new AppError('invalid-timestamp', 400, `\`${name}\` is not an instant that exists`);
  }
  return date;
}

function seqCursor(cursor: string): string {
  if (BigInt(cursor) > MAX_SEQ) {
    throw new AppError('invalid-cursor', 400, 'cursor is not one this service handed out');
  }
  return cursor;
}

function checkpointUnavailable(error: unknown): never {
  if (error instanceof VaultError) {
    throw new AppError(
      'checkpoint-store-unavailable',
      503,
      'the checkpoint store (Vault) could not be read',
      {
        cause: error,
        expose: true,
      },
    );
  }
  throw error;
}

/** Starts the export before any header is sent, so a failing first query is still a problem response. */
async function streamOf(chunks: AsyncGenerator<string>): Promise<Readable> {
  const first = await chunks.next();
  async function* all() {
    if (first.done) return;
    yield first.value;
    yield* chunks;
  }
  return Readable.from(all());
}

/** The audit log for security teams: auditors and admins only. */
export function auditRoutes(deps: AuditRouteDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('onRequest', async (request) => {
      request.caller = await deps.authenticate(request);
      requireCaller(request, ['auditor', 'admin']);
    });
    await registerCallerBudget(app, deps.budgets);

    app.get(
      '/v1/audit/events',
      {
        schema: {
          querystring: AuditEventsQuery,
          response: {
            200: Type.Object({ items: Type.Array(AuditEventSchema), nextCursor: Nullable(Type.String()) }),
          },
        },
      },
      async (request) => {
        const { cursor, order = 'asc', limit = 100, ...filters } = request.query;
        return listAuditEvents(deps.db, filterOf(filters), {
          ...(cursor ? { after: seqCursor(cursor) } : {}),
          order,
          limit,
        });
      },
    );

    app.get(
      '/v1/audit/events/export',
      { schema: { querystring: AuditExportQuery }, config: expensiveRoute(deps.budgets) },
      async (request, reply) => {
        const { format = 'ndjson', ...filters } = request.query;
        const stream = await streamOf(exportAuditEvents(deps.db, filterOf(filters), format));
        const stamp = deps
          .clock()
          .toISOString()
          .replaceAll(':', '')
          .replace(/\.\d+Z$/, 'Z');
        return reply
          .header('content-type', EXPORT_FORMATS[format].contentType)
          .header(
            'content-disposition',
            `attachment; filename="audit-events-${stamp}.${EXPORT_FORMATS[format].extension}"`,
          )
          .header('cache-control', 'no-store')
          .send(stream);
      },
    );

    app.get(
      '/v1/audit/verify',
      { schema: { response: { 200: VerificationSchema } }, config: expensiveRoute(deps.budgets) },
      async () => deps.verifier.verify().catch(checkpointUnavailable),
    );

    app.get('/v1/audit/checkpoints/latest', { schema: { response: { 200: CheckpointSchema } } }, async () => {
      if (!deps.checkpoints.enabled) {
        throw new AppError(
          'checkpoints-disabled',
          404,
          'no audit signing key is configured (DEPLOYKEY_AUDIT_SIGNING_KEY), so no checkpoints are written',
        );
      }
      const checkpoint = await deps.checkpoints.latest().catch(checkpointUnavailable);
      if (!checkpoint)
        throw new AppError('checkpoint-not-found', 404, 'no audit checkpoint has been written yet');
      return { ...checkpoint, valid: deps.checkpoints.isValid(checkpoint) };
    });
  };
}
