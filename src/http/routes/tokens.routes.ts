import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { TOKEN_NAME_PATTERN } from '../../auth/api-tokens.ts';
import { MAX_TOKEN_LIFETIME_SECONDS, type TokenService } from '../../auth/token.service.ts';
import { RoleSchema } from '../../model/schemas.ts';
import { requireCaller } from '../auth.ts';
import { AppError } from '../errors.ts';
import { CALLER_PROBLEMS, COMMON_PROBLEMS, described, problemResponses } from '../schemas.ts';
import { type CallerRouteDeps, callerRoutes, type RouteApp } from './route-app.ts';

const TokenSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String(),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
const ADMIN_PROBLEMS = {
  ...CALLER_PROBLEMS,
  403: '`role-not-allowed`: only admins manage tokens',
} as const;

export interface TokensRouteDeps extends CallerRouteDeps {
  tokens: TokenService;
}

function registerCreateTokenRoute(app: RouteApp, deps: TokensRouteDeps): void {
  app.post(
    '/v1/admin/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Create an API token',
        description: 'The token itself is in this answer only; the service keeps its SHA-256 hash.',
        operationId: 'createToken',
        body: Type.Object(
          {
            name: Type.String({ pattern: TOKEN_NAME_PATTERN }),
            role: RoleSchema,
            expiresInSeconds: Type.Optional(
              Type.Integer({ minimum: 60, maximum: MAX_TOKEN_LIFETIME_SECONDS }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          201: described(
            Type.Intersect([
              TokenSchema,
              Type.Object({ token: Type.String({ description: '`dkr_…`, shown once' }) }),
            ]),
            'The new token',
          ),
          ...problemResponses({
            ...ADMIN_PROBLEMS,
            400: '`validation-failed` or `invalid-json`: the body breaks its schema; `errors` lists each field',
            409: '`token-name-taken`: a token with this name exists',
            413: COMMON_PROBLEMS.bodyTooLarge,
            415: COMMON_PROBLEMS.unsupportedMediaType,
          }),
        },
      },
    },
    async (request, reply) => {
      const created = await deps.tokens.create({ ...request.body, actor: requireCaller(request).actor });
      return reply.code(201).header('cache-control', 'no-store').send(created);
    },
  );
}

function registerListTokensRoute(app: RouteApp, deps: TokensRouteDeps): void {
  app.get(
    '/v1/admin/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'List API tokens',
        description: 'Every token, revoked and expired ones too; never the token itself.',
        operationId: 'listTokens',
        response: {
          200: described(Type.Object({ items: Type.Array(TokenSchema) }), 'All tokens'),
          ...problemResponses(ADMIN_PROBLEMS),
        },
      },
    },
    async () => ({ items: await deps.tokens.list() }),
  );
}

function registerRevokeTokenRoute(app: RouteApp, deps: TokensRouteDeps): void {
  app.delete(
    '/v1/admin/tokens/:id',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Revoke an API token',
        operationId: 'revokeToken',
        params: Type.Object({
          id: Type.String({ pattern: TOKEN_NAME_PATTERN, description: 'The token id or name' }),
        }),
        response: {
          200: described(TokenSchema, 'The token, now revoked'),
          ...problemResponses({
            ...ADMIN_PROBLEMS,
            400: COMMON_PROBLEMS.invalidParameters,
            404: '`token-not-found`: no token has this id or name',
          }),
        },
      },
    },
    async (request) => {
      const revoked = await deps.tokens.revoke(request.params.id, requireCaller(request).actor);
      if (!revoked) throw new AppError('token-not-found', 404, `no token ${request.params.id}`);
      return revoked;
    },
  );
}

/** Token administration, for admins only. */
export function tokensRoutes(deps: TokensRouteDeps): FastifyPluginAsyncTypebox {
  return callerRoutes(deps, 'admin', [
    registerCreateTokenRoute,
    registerListTokensRoute,
    registerRevokeTokenRoute,
  ]);
}
