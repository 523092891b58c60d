import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { Authenticator } from '../../auth/authenticator.ts';
import type { DeployKeyRow } from '../../db/schema.ts';
import type { KeyService } from '../../keys/key.service.ts';
import type { HostLookup } from '../../keys/key-service-deps.ts';
import { type KeyView, toKeyView } from '../../keys/key-view.ts';
import { requireCaller } from '../auth.ts';
import { AppError } from '../errors.ts';
import {
  CompletedJobSchema,
  IdempotencyHeaders,
  IssuedKeySchema,
  IssueKeyBody,
  JobIdParams,
  KeyIdParams,
  KeyListSchema,
  KeySchema,
  ListKeysQuery,
} from '../schemas.ts';

export interface KeysRouteDeps {
  /** Per-caller request budget, counted in Redis so every replica shares it. */
  rateLimit: { redis: Redis; prefix: string; max: number; timeWindowSeconds: number };
  keyService: KeyService;
  hosts: HostLookup;
  authenticate: Authenticator;
  vaultMount: string;
  clock: () => Date;
}

function encodeCursor(row: DeployKeyRow): string {
  return Buffer.from(JSON.stringify([row.created_at.toISOString(), row.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(createdAt);
    if (Number.isNaN(date.getTime()) || !/^[0-9a-f-]{36}$/.test(id)) throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw new AppError('invalid-cursor', 400, 'cursor is not one this service handed out');
  }
}

export function keysRoutes(deps: KeysRouteDeps): FastifyPluginAsyncTypebox {
  const { keyService, hosts } = deps;

  const view = async (row: DeployKeyRow, knownHosts?: string[]): Promise<KeyView> => {
    const host = hosts.get(row.provider);
    return toKeyView(row, {
      cloneUrl: host?.cloneUrl(row.repository) ?? '',
      knownHosts: knownHosts ?? (await host?.knownHosts().catch(() => [])) ?? [],
      vaultMount: deps.vaultMount,
    });
  };

  return async (app) => {
    app.addHook('onRequest', async (request) => {
      request.caller = await deps.authenticate(request);
    });
    await app.register(rateLimit, {
      redis: deps.rateLimit.redis,
      nameSpace: `${deps.rateLimit.prefix}:ratelimit:`,
      max: deps.rateLimit.max,
      timeWindow: deps.rateLimit.timeWindowSeconds * 1000,
      // Counted after authentication, per caller; a Redis outage must not lock callers out.
      hook: 'preHandler',
      keyGenerator: (request) => request.caller?.id ?? request.ip,
      skipOnError: true,
      errorResponseBuilder: (_request, context) =>
        new AppError('rate-limited', 429, `too many requests from this caller; retry in ${context.after}`, {
          headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
        }),
    });

    app.post(
      '/v1/keys',
      {
        schema: {
          body: IssueKeyBody,
          headers: IdempotencyHeaders,
          response: { 201: IssuedKeySchema, 200: IssuedKeySchema },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        const idempotencyKey = request.headers['idempotency-key'];
        const result = await keyService.issue(caller, {
          ...request.body,
          ...(idempotencyKey ? { idempotencyKey } : {}),
        });
        const body = {
          ...(await view(result.row, result.knownHosts)),
          ...(result.privateKey ? { privateKey: result.privateKey } : {}),
          ...(result.wrapToken ? { wrapToken: result.wrapToken } : {}),
        };
        reply.header('cache-control', 'no-store');
        if (result.replayed) reply.header('idempotent-replayed', 'true');
        return reply.code(201).send(body);
      },
    );

    app.get(
      '/v1/keys/:id',
      { schema: { params: KeyIdParams, response: { 200: KeySchema } } },
      async (request) => view(await keyService.getKey(requireCaller(request), request.params.id)),
    );

    app.get(
      '/v1/keys',
      { schema: { querystring: ListKeysQuery, response: { 200: KeyListSchema } } },
      async (request) => {
        const { cursor, limit = 50, overdue, jobId, ...filters } = request.query;
        const rows = await keyService.listKeys(requireCaller(request), {
          ...filters,
          ...(jobId ? { jobId } : {}),
          ...(overdue ? { overdueAt: deps.clock() } : {}),
          ...(cursor ? { after: decodeCursor(cursor) } : {}),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          items: await Promise.all(page.map((row) => view(row))),
          nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
        };
      },
    );

    app.delete(
      '/v1/keys/:id',
      { schema: { params: KeyIdParams, response: { 202: KeySchema } } },
      async (request, reply) => {
        const row = await keyService.revokeKey(requireCaller(request), request.params.id);
        return reply.code(202).send(await view(row));
      },
    );

    app.post(
      '/v1/jobs/:jobId/complete',
      { schema: { params: JobIdParams, response: { 202: CompletedJobSchema } } },
      async (request, reply) => {
        const rows = await keyService.completeJob(requireCaller(request), request.params.jobId);
        return reply
          .code(202)
          .send({ jobId: request.params.jobId, keys: await Promise.all(rows.map((r) => view(r))) });
      },
    );
  };
}
