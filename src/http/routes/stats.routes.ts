import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { KeyStats } from '../../keys/key-stats.ts';
import { AppError } from '../errors.ts';
import { CALLER_PROBLEMS, COMMON_PROBLEMS, described, problemResponses } from '../schemas.ts';
import { type CallerRouteDeps, callerRoutes, type RouteApp } from './route-app.ts';

export interface StatsRouteDeps extends CallerRouteDeps {
  /** Counts and latencies over [from, to). */
  keyStats: (from: Date, to: Date) => Promise<KeyStats>;
  clock: () => Date;
}

const DAY_MS = 86_400_000;
const MAX_RANGE_DAYS = 31;

export const StatsQuery = Type.Object(
  {
    from: Type.Optional(
      Type.String({ format: 'date-time', description: 'Start, inclusive (default: 24 h before `to`)' }),
    ),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'End, exclusive (default: now)' })),
  },
  { additionalProperties: false },
);

const Seconds = Type.Union([Type.Number(), Type.Null()]);
export const StatsSchema = Type.Object({
  from: Type.String({ format: 'date-time' }),
  to: Type.String({ format: 'date-time' }),
  hours: Type.Array(
    Type.Object({
      start: Type.String({ format: 'date-time' }),
      issued: Type.Integer({ description: 'Keys that became active in this hour' }),
      revoked: Type.Integer({ description: 'Keys revoked in this hour' }),
      latencyP50Seconds: Seconds,
      latencyP99Seconds: Seconds,
    }),
    { description: 'One entry per hour of the range, oldest first' },
  ),
  latency: Type.Object(
    {
      count: Type.Integer(),
      p50Seconds: Seconds,
      p99Seconds: Seconds,
    },
    { description: 'From job end, revoke request or expiry to revoked, over the keys revoked in the range' },
  ),
});

/** Keys issued and revoked per hour and revoke latency: auditors and admins only. */
function registerStatsRoute(app: RouteApp, deps: StatsRouteDeps): void {
  app.get(
    '/v1/stats',
    {
      schema: {
        tags: ['audit'],
        summary: 'Issue and revoke statistics',
        description: 'Keys issued and revoked per hour, and revoke latency (p50, p99), over at most 31 days.',
        operationId: 'getKeyStats',
        querystring: StatsQuery,
        response: {
          200: described(StatsSchema, 'Per-hour counts and latencies for the range'),
          ...problemResponses({
            ...CALLER_PROBLEMS,
            403: '`role-not-allowed`: only auditors and admins read statistics',
            400: `${COMMON_PROBLEMS.invalidParameters}, or \`invalid-range\` (\`from\` not before \`to\`, or over ${MAX_RANGE_DAYS} days)`,
          }),
        },
      },
    },
    async (request) => {
      const to = request.query.to ? new Date(request.query.to) : deps.clock();
      const from = request.query.from ? new Date(request.query.from) : new Date(to.getTime() - DAY_MS);
      if (!(from < to) || to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) {
        throw new AppError(
          'invalid-range',
          400,
          `\`from\` must be before \`to\`, at most ${MAX_RANGE_DAYS} days apart`,
        );
      }
      return deps.keyStats(from, to);
    },
  );
}

/** The statistics route, authenticated, checked for the `stats` action and on the caller's budget. */
export function statsRoutes(deps: StatsRouteDeps): FastifyPluginAsyncTypebox {
  return callerRoutes(deps, 'stats', [registerStatsRoute]);
}
