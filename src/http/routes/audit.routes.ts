import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AuditService } from '../../audit/audit.service.ts';
import { EXPORT_FORMATS } from '../../audit/audit-export.ts';
import { VaultError } from '../../vault/secret-store.ts';
import { AppError } from '../errors.ts';
import { expensiveRoute } from '../request-budgets.ts';
import { CALLER_PROBLEMS, COMMON_PROBLEMS, problemResponses } from '../schemas.ts';
import {
  AuditEventSchema,
  AuditEventsQuery,
  AuditExportQuery,
  CheckpointSchema,
  filterOf,
  Nullable,
  seqCursor,
  VerificationSchema,
} from './audit.schemas.ts';
import { type CallerRouteDeps, callerRoutes, type RouteApp } from './route-app.ts';

export interface AuditRouteDeps extends CallerRouteDeps {
  audit: AuditService;
  clock: () => Date;
}

const READER_PROBLEMS = {
  ...CALLER_PROBLEMS,
  403: '`role-not-allowed`: only auditors and admins read the audit log',
} as const;
const FILTER_PROBLEMS = problemResponses({
  ...READER_PROBLEMS,
  400:
    `${COMMON_PROBLEMS.invalidParameters}, \`invalid-range\` (\`from\` after \`to\`), \`invalid-timestamp\` ` +
    '(a date-time that names no instant, such as a leap second) or `invalid-cursor`',
});
const CHECKPOINT_STORE_PROBLEM = `${COMMON_PROBLEMS.issuerUnavailable}, or \`checkpoint-store-unavailable\` (Vault)`;
const EXPORT_RESPONSE = {
  description: 'The events, oldest first, as an attachment',
  content: {
    'application/x-ndjson': { schema: { type: 'string', description: 'One event per line' } },
    'text/csv': { schema: { type: 'string', description: 'A header row, then one event per row' } },
  },
};

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

/** `2026-01-02T03:04:05Z` as `2026-01-02T030405Z`: an instant that is a safe file name everywhere. */
const fileStamp = (at: Date) =>
  at
    .toISOString()
    .replaceAll(':', '')
    .replace(/\.\d+Z$/, 'Z');

function registerEventRoutes(app: RouteApp, deps: AuditRouteDeps): void {
  app.get(
    '/v1/audit/events',
    {
      schema: {
        tags: ['audit'],
        summary: 'List audit events',
        description:
          'Every state change, hash-chained. Filters match exactly; `from` and `to` bound the time.',
        operationId: 'listAuditEvents',
        querystring: AuditEventsQuery,
        response: {
          200: Type.Object({ items: Type.Array(AuditEventSchema), nextCursor: Nullable(Type.String()) }),
          ...FILTER_PROBLEMS,
        },
      },
    },
    async (request) => {
      const { cursor, order = 'asc', limit = 100, ...filters } = request.query;
      return deps.audit.list(filterOf(filters), {
        ...(cursor ? { after: seqCursor(cursor) } : {}),
        order,
        limit,
      });
    },
  );

  app.get(
    '/v1/audit/events/export',
    {
      schema: {
        tags: ['audit'],
        summary: 'Export audit events',
        description: 'The filtered events as one download, NDJSON or CSV.',
        operationId: 'exportAuditEvents',
        querystring: AuditExportQuery,
        response: { 200: EXPORT_RESPONSE, ...FILTER_PROBLEMS },
      },
      config: expensiveRoute(deps.budgets),
    },
    async (request, reply) => {
      const { format = 'ndjson', ...filters } = request.query;
      const stream = await streamOf(deps.audit.export(filterOf(filters), format));
      const { contentType, extension } = EXPORT_FORMATS[format];
      return reply
        .header('content-type', contentType)
        .header(
          'content-disposition',
          `attachment; filename="audit-events-${fileStamp(deps.clock())}.${extension}"`,
        )
        .header('cache-control', 'no-store')
        .send(stream);
    },
  );
}

function registerChainRoutes(app: RouteApp, deps: AuditRouteDeps): void {
  app.get(
    '/v1/audit/verify',
    {
      schema: {
        tags: ['audit'],
        summary: 'Verify the audit log',
        description: 'Recomputes the hash chain and checks it against the latest signed checkpoint.',
        operationId: 'verifyAuditLog',
        response: {
          200: VerificationSchema,
          ...problemResponses({ ...READER_PROBLEMS, 503: CHECKPOINT_STORE_PROBLEM }),
        },
      },
      config: expensiveRoute(deps.budgets),
    },
    async () => deps.audit.verify().catch(checkpointUnavailable),
  );

  app.get(
    '/v1/audit/checkpoints/latest',
    {
      schema: {
        tags: ['audit'],
        summary: 'Get the latest audit checkpoint',
        operationId: 'getLatestAuditCheckpoint',
        response: {
          200: CheckpointSchema,
          ...problemResponses({
            ...READER_PROBLEMS,
            404: '`checkpoints-disabled` (no signing key is configured) or `checkpoint-not-found` (none written yet)',
            503: CHECKPOINT_STORE_PROBLEM,
          }),
        },
      },
    },
    async () => {
      const latest = await deps.audit.latestCheckpoint().catch(checkpointUnavailable);
      if (latest.found === 'disabled') {
        throw new AppError(
          'checkpoints-disabled',
          404,
          'no audit signing key is configured (DEPLOYKEY_AUDIT_SIGNING_KEY), so no checkpoints are written',
        );
      }
      if (latest.found === 'none') {
        throw new AppError('checkpoint-not-found', 404, 'no audit checkpoint has been written yet');
      }
      return latest.checkpoint;
    },
  );
}

/** The audit log for security teams: auditors and admins only. */
export function auditRoutes(deps: AuditRouteDeps): FastifyPluginAsyncTypebox {
  return callerRoutes(deps, 'audit', [registerEventRoutes, registerChainRoutes]);
}
