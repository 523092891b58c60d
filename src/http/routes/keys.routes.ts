import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { DeployKeyRow } from '../../db/schema.ts';
import type { KeyService } from '../../keys/key.service.ts';
import type { HostLookup } from '../../keys/key-service-deps.ts';
import { type KeyView, toKeyView } from '../../keys/key-view.ts';
import { KEY_ID_PATTERN } from '../../model/values.ts';
import { requireCaller } from '../auth.ts';
import { AppError } from '../errors.ts';
import {
  CALLER_PROBLEMS,
  COMMON_PROBLEMS,
  CompletedJobSchema,
  described,
  IdempotencyHeaders,
  IssuedKeySchema,
  IssueKeyBody,
  JobIdParams,
  KeyIdParams,
  KeyListSchema,
  KeySchema,
  ListKeysQuery,
  problemResponses,
  withHeaders,
} from '../schemas.ts';
import { type CallerRouteDeps, callerRoutes, type RouteApp } from './route-app.ts';

export interface KeysRouteDeps extends CallerRouteDeps {
  keyService: KeyService;
  hosts: HostLookup;
  vaultMount: string;
  clock: () => Date;
}

function encodeCursor(row: DeployKeyRow): string {
  return Buffer.from(JSON.stringify([row.created_at.toISOString(), row.id])).toString('base64url');
}

// Exactly what encodeCursor writes: anything else never reaches a query.
const CURSOR_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CURSOR_ID = new RegExp(KEY_ID_PATTERN);

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [
      unknown,
      unknown,
    ];
    if (typeof createdAt !== 'string' || typeof id !== 'string') throw new Error('bad cursor');
    const date = new Date(createdAt);
    const exact =
      CURSOR_INSTANT.test(createdAt) && !Number.isNaN(date.getTime()) && date.toISOString() === createdAt;
    if (!exact || !CURSOR_ID.test(id)) throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw new AppError('invalid-cursor', 400, 'cursor is not one this service handed out');
  }
}

const KEY_NOT_FOUND = "`key-not-found`: no such key, or (for an issuer) not one of the caller's keys";
const AUDITORS_CANNOT_REVOKE = '`role-not-allowed`: auditors read keys but do not revoke them';

const ISSUE_PROBLEMS = problemResponses({
  ...CALLER_PROBLEMS,
  400:
    '`validation-failed` (body or `Idempotency-Key`), `invalid-json`, `unknown-provider` (`providers` lists the ' +
    'configured ones), `invalid-repository` or `invalid-ttl` (`minTtlSeconds`, `maxTtlSeconds`)',
  403:
    '`role-not-allowed` (only issuers get keys), `forbidden-by-policy` (`reason`, `rule`) or ' +
    '`repository-forbidden` (the host allows no deploy keys on the repository)',
  404:
    '`repository-not-found`: not on the host, or the service cannot manage its deploy keys; ' +
    '`app-not-installed`: the GitHub App the service acts as is not installed on the owner',
  409:
    '`key-already-active` (the job holds a live key for this repository: `activeKeyId`), ' +
    '`idempotency-key-reused` (a different body), `request-in-progress` (the first request is still ' +
    'running; `Retry-After`) or `idempotent-request-failed` (`keyId`)',
  413: COMMON_PROBLEMS.bodyTooLarge,
  415: COMMON_PROBLEMS.unsupportedMediaType,
  502: '`host-failed`, `host-credentials-rejected` or `vault-failed`; whatever was created is removed again',
  503:
    '`host-rate-limited`, `vault-unavailable`, `queue-unavailable` or `issuer-unavailable`, each with ' +
    '`Retry-After`, or `issue-interrupted`; whatever was created is removed again',
  504: '`host-timeout` or `vault-timeout`; whatever was created is removed again',
});

type KeyViewer = (row: DeployKeyRow, knownHosts?: string[]) => Promise<KeyView>;
type ViewingDeps = KeysRouteDeps & { view: KeyViewer };

/** A key as callers see it: with its clone URL, the host's known_hosts and where its private half lives. */
function keyViewer(deps: KeysRouteDeps): KeyViewer {
  return async (row, knownHosts) => {
    const host = deps.hosts.get(row.provider);
    return toKeyView(row, {
      cloneUrl: host?.cloneUrl(row.repository) ?? '',
      knownHosts: knownHosts ?? (await host?.knownHosts().catch(() => [])) ?? [],
      vaultMount: deps.vaultMount,
    });
  };
}

function registerIssueRoute(app: RouteApp, { keyService, view }: ViewingDeps): void {
  app.post(
    '/v1/keys',
    {
      config: { access: 'issue' },
      schema: {
        tags: ['keys'],
        summary: 'Issue a deploy key',
        description:
          'Registers a new read-only deploy key for one repository, stores its private half in Vault and ' +
          'schedules its revoke at expiry. A job holds at most one live key per provider and repository.',
        operationId: 'issueKey',
        body: IssueKeyBody,
        headers: IdempotencyHeaders,
        response: {
          201: withHeaders(
            described(
              IssuedKeySchema,
              'The key is active. A retry with the same `Idempotency-Key` gets the first answer again, ' +
                'marked `Idempotent-Replayed: true`',
            ),
            {
              'idempotent-replayed': Type.Literal('true', {
                description: 'Present on a replay: this is the answer to the first request with this key',
              }),
            },
          ),
          ...ISSUE_PROBLEMS,
        },
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
        ...(result.wrapAccessor ? { wrapAccessor: result.wrapAccessor } : {}),
      };
      reply.header('cache-control', 'no-store');
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(body);
    },
  );
}

function registerKeyReadRoutes(app: RouteApp, deps: ViewingDeps): void {
  const { keyService, view } = deps;
  app.get(
    '/v1/keys/:id',
    {
      config: { access: 'read' },
      schema: {
        tags: ['keys'],
        summary: 'Get a key',
        operationId: 'getKey',
        params: KeyIdParams,
        response: {
          200: described(KeySchema, 'The key, never its private half'),
          ...problemResponses({
            ...CALLER_PROBLEMS,
            400: COMMON_PROBLEMS.invalidParameters,
            404: KEY_NOT_FOUND,
          }),
        },
      },
    },
    async (request) => view(await keyService.getKey(requireCaller(request), request.params.id)),
  );

  app.get(
    '/v1/keys',
    {
      config: { access: 'list' },
      schema: {
        tags: ['keys'],
        summary: 'List keys',
        description: "Newest first. Issuers see their own keys; auditors and admins see everyone's.",
        operationId: 'listKeys',
        querystring: ListKeysQuery,
        response: {
          200: described(KeyListSchema, 'One page of keys; `nextCursor` is null on the last page'),
          ...problemResponses({
            ...CALLER_PROBLEMS,
            400: `${COMMON_PROBLEMS.invalidParameters}, or \`invalid-cursor\``,
          }),
        },
      },
    },
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
}

function registerRevokeRoutes(app: RouteApp, { keyService, view }: ViewingDeps): void {
  app.delete(
    '/v1/keys/:id',
    {
      config: { access: 'revoke' },
      schema: {
        tags: ['keys'],
        summary: 'Revoke a key now',
        description: 'Idempotent: a key that is already revoked or failed is returned as it is.',
        operationId: 'revokeKey',
        params: KeyIdParams,
        response: {
          202: described(KeySchema, 'The key, now `revoking`: the worker removes it from the host and Vault'),
          ...problemResponses({
            ...CALLER_PROBLEMS,
            400: COMMON_PROBLEMS.invalidParameters,
            403: AUDITORS_CANNOT_REVOKE,
            404: KEY_NOT_FOUND,
          }),
        },
      },
    },
    async (request, reply) => {
      const row = await keyService.revokeKey(requireCaller(request), request.params.id);
      return reply.code(202).send(await view(row));
    },
  );

  app.post(
    '/v1/jobs/:jobId/complete',
    {
      config: { access: 'complete' },
      schema: {
        tags: ['jobs'],
        summary: 'Complete a job',
        description: 'Revokes every live key of the job now. Idempotent.',
        operationId: 'completeJob',
        params: JobIdParams,
        response: {
          202: described(CompletedJobSchema, 'The keys of the job that were live, now `revoking`'),
          ...problemResponses({
            ...CALLER_PROBLEMS,
            400: COMMON_PROBLEMS.invalidParameters,
            403: AUDITORS_CANNOT_REVOKE,
            404: '`job-not-found`: no key was ever issued for this job (to this caller, for an issuer)',
          }),
        },
      },
    },
    async (request, reply) => {
      const rows = await keyService.completeJob(requireCaller(request), request.params.jobId);
      return reply
        .code(202)
        .send({ jobId: request.params.jobId, keys: await Promise.all(rows.map((r) => view(r))) });
    },
  );
}

export function keysRoutes(deps: KeysRouteDeps): FastifyPluginAsyncTypebox {
  return callerRoutes({ ...deps, view: keyViewer(deps) }, undefined, [
    registerIssueRoute,
    registerKeyReadRoutes,
    registerRevokeRoutes,
  ]);
}
