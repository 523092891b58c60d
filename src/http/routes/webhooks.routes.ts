import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { HostIdSchema } from '../../model/schemas.ts';
import type { Platform, WebhookReceiver } from '../../webhooks/webhook-receiver.ts';
import { AppError } from '../errors.ts';
import type { RequestBudgets } from '../request-budgets.ts';
import { COMMON_PROBLEMS, described, problemResponses } from '../schemas.ts';

// A workflow_run payload with its repository objects is a few tens of kilobytes; GitHub caps
// deliveries at 25 MB, but nothing we act on comes near this.
export const WEBHOOK_BODY_LIMIT_BYTES = 256 * 1024;
// Per host and source address: a burst of job ends in a large organisation, but not a flood.
export const WEBHOOK_REQUESTS_PER_WINDOW = 3_000;

const Answer = Type.Object({
  outcome: Type.Union([Type.Literal('ended'), Type.Literal('no-keys'), Type.Literal('duplicate')]),
  revoked: Type.Integer({ minimum: 0, description: 'Keys whose revocation this delivery requested' }),
});
const RESPONSES = {
  200: described(Answer, 'Acted on (or already acted on, for a delivery id seen before)'),
  204: described(Type.Null(), 'An event or state that ends nothing; nothing changed'),
  ...problemResponses({
    400: '`malformed-delivery`: the body or the delivery id cannot be read; nothing changed',
    401: "`bad-signature`: the signature or token does not match this host's secret; audited",
    404: '`unknown-webhook-host`: no such host of this platform is configured',
    413: 'The body is larger than the webhook limit',
    429: COMMON_PROBLEMS.rateLimited,
    500: COMMON_PROBLEMS.internal,
  }),
};

const PROBLEMS: Record<number, string> = {
  400: 'malformed-delivery',
  401: 'bad-signature',
  404: 'unknown-webhook-host',
};

/** `POST /v1/webhooks/{github,gitlab}/:hostId`: signed job-end events from the CI platforms. */
export function webhooksRoutes(deps: {
  receiver: WebhookReceiver;
  budgets: RequestBudgets;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    // The signature covers the exact bytes sent, so the body reaches the receiver unparsed.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser(
      ['application/json', 'application/x-www-form-urlencoded'],
      { parseAs: 'string', bodyLimit: WEBHOOK_BODY_LIMIT_BYTES },
      (_request, body, done) => done(null, body),
    );
    await app.register(rateLimit, {
      redis: deps.budgets.redis,
      nameSpace: `${deps.budgets.prefix}:ratelimit:webhooks:`,
      max: WEBHOOK_REQUESTS_PER_WINDOW,
      timeWindow: deps.budgets.timeWindowSeconds * 1000,
      keyGenerator: (request) => `${(request.params as { hostId?: string }).hostId}:${request.ip}`,
      skipOnError: true,
      errorResponseBuilder: (_request, context) =>
        new AppError('rate-limited', 429, `too many webhook deliveries; retry in ${context.after}`, {
          headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
        }),
    });
    for (const platform of ['github', 'gitlab'] as const satisfies Platform[]) {
      app.post(
        `/v1/webhooks/${platform}/:hostId`,
        {
          bodyLimit: WEBHOOK_BODY_LIMIT_BYTES,
          schema: {
            tags: ['webhooks'],
            operationId: platform === 'github' ? 'receiveGithubWebhook' : 'receiveGitlabWebhook',
            summary: `A ${platform === 'github' ? 'GitHub' : 'GitLab'} job or run ended`,
            params: Type.Object({
              hostId: Type.With(HostIdSchema, { maxLength: 32 }),
            }),
            response: RESPONSES,
          },
        },
        async (request, reply) => {
          const rawBody = typeof request.body === 'string' ? request.body : '';
          const answer = await deps.receiver.receive({
            platform,
            hostId: request.params.hostId,
            headers: request.headers,
            rawBody,
          });
          if (answer.status >= 400) {
            throw new AppError(
              PROBLEMS[answer.status] ?? 'webhook-refused',
              answer.status,
              answer.detail ?? answer.outcome,
            );
          }
          if (answer.status === 204) return reply.code(204).send(null);
          const outcome = answer.outcome as 'ended' | 'no-keys' | 'duplicate';
          return reply.code(200).send({ outcome, revoked: answer.revoked ?? 0 });
        },
      );
    }
  };
}
