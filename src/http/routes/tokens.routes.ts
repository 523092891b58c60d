import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { type ApiTokens, TOKEN_NAME_PATTERN, toTokenView } from '../../auth/api-tokens.ts';
import type { Authenticator } from '../../auth/authenticator.ts';
import { requireCaller } from '../auth.ts';
import { AppError } from '../errors.ts';

const Role = Type.Union([Type.Literal('issuer'), Type.Literal('auditor'), Type.Literal('admin')]);
const TokenSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String(),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
const MAX_TOKEN_LIFETIME_SECONDS = 366 * 24 * 3600;

/** Token administration, for admins only. */
export function tokensRoutes(deps: {
  tokens: ApiTokens;
  authenticate: Authenticator;
  clock: () => Date;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('onRequest', async (request) => {
      request.caller = await deps.authenticate(request);
      requireCaller(request, ['admin']);
    });

    app.post(
      '/v1/admin/tokens',
      {
        schema: {
          body: Type.Object(
            {
              name: Type.String({ pattern: TOKEN_NAME_PATTERN }),
              role: Role,
              expiresInSeconds: Type.Optional(
                Type.Integer({ minimum: 60, maximum: MAX_TOKEN_LIFETIME_SECONDS }),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Intersect([TokenSchema, Type.Object({ token: Type.String() })]) },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        const { name, role, expiresInSeconds } = request.body;
        const expiresAt = expiresInSeconds
          ? new Date(deps.clock().getTime() + expiresInSeconds * 1000)
          : undefined;
        const { token, row } = await deps.tokens.create({
          name,
          role,
          actor: caller.actor,
          ...(expiresAt ? { expiresAt } : {}),
        });
        return reply
          .code(201)
          .header('cache-control', 'no-store')
          .send({ ...toTokenView(row), token });
      },
    );

    app.get(
      '/v1/admin/tokens',
      { schema: { response: { 200: Type.Object({ items: Type.Array(TokenSchema) }) } } },
      async () => ({
        items: (await deps.tokens.list()).map(toTokenView),
      }),
    );

    app.delete(
      '/v1/admin/tokens/:id',
      {
        schema: {
          params: Type.Object({ id: Type.String({ pattern: TOKEN_NAME_PATTERN }) }),
          response: { 200: TokenSchema },
        },
      },
      async (request) => {
        const row = await deps.tokens.revoke(request.params.id, requireCaller(request).actor);
        if (!row) throw new AppError('token-not-found', 404, `no token ${request.params.id}`);
        return toTokenView(row);
      },
    );
  };
}
