// The audit API's query and answer schemas, and the reading of its filters.
import Type from 'typebox';
import type { AuditFilter } from '../../audit/audit-query.ts';
import { AUDIT_VERIFY_MAX_AGE_SECONDS } from '../../audit/audit-verifier.ts';
import { MAX_LISTED_BAD_EVENTS } from '../../audit/audit-verify.ts';
import { JobIdSchema, KeyIdSchema } from '../../model/schemas.ts';
import { AppError } from '../errors.ts';
import { PlainText } from '../schemas.ts';

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
  keyId: Type.Optional(KeyIdSchema),
  repository: Text(512, 'Compared as the host does: case-insensitively'),
  jobId: Type.Optional(JobIdSchema),
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

export const Nullable = (schema: ReturnType<typeof Type.String>) => Type.Union([schema, Type.Null()]);
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

export function filterOf(query: {
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

export function seqCursor(cursor: string): string {
  if (BigInt(cursor) > MAX_SEQ) {
    throw new AppError('invalid-cursor', 400, 'cursor is not one this service handed out');
  }
  return cursor;
}
