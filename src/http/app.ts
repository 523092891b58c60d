import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify';
import { createAuditService } from '../audit/audit.service.ts';
import { createTokenService } from '../auth/token.service.ts';
import type { Container } from '../container.ts';
import { keyStats } from '../keys/key-stats.ts';
import { JOB_ID_PATTERN, JOB_ID_RULE } from '../model/values.ts';
import { registerErrorHandling, sendClientError, sendFrameworkError } from './errors.ts';
import { registerOpenApi } from './openapi.ts';
import { type RequestBudgets, throttleFailedAuthentication } from './request-budgets.ts';
import { auditRoutes } from './routes/audit.routes.ts';
import { healthRoutes } from './routes/health.routes.ts';
import { keysRoutes } from './routes/keys.routes.ts';
import { statsRoutes } from './routes/stats.routes.ts';
import { tokensRoutes } from './routes/tokens.routes.ts';
import { webhooksRoutes } from './routes/webhooks.routes.ts';

export const BODY_LIMIT_BYTES = 16 * 1024;
export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The server with its limits: slow or idle clients are cut off, ids and bodies are bounded. */
function createServer(limits: Container['config']['http'], logger: Container['logger']): App {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    // An over-long id reaches the route schema (400 problem) instead of the router's bare 414;
    // Node's 16 KiB header limit bounds the URL anyway.
    routerOptions: { maxParamLength: 16_384 },
    return503OnClosing: true,
    frameworkErrors: sendFrameworkError,
    clientErrorHandler: sendClientError,
    forceCloseConnections: 'idle',
    // A client that sends slowly, or not at all, is cut off instead of holding a connection.
    requestTimeout: limits.requestTimeoutSeconds * 1000,
    connectionTimeout: limits.connectionTimeoutSeconds * 1000,
    keepAliveTimeout: limits.keepAliveTimeoutSeconds * 1000,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    http: {
      headersTimeout: limits.headersTimeoutSeconds * 1000,
      requestTimeout: limits.requestTimeoutSeconds * 1000,
      // Node checks the two timeouts above this often (default 30 s, longer than they may be).
      connectionsCheckingInterval: 1_000,
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.server.maxConnections = limits.maxConnections;
  return app;
}

/** Every answer carries its request id; every request is counted by route and status. */
function registerRequestHooks(app: App, container: Container): void {
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    container.metrics.httpRequests.inc({
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    });
  });
}

/** Problem responses for every error, with each denial written to the audit log. */
function registerErrors(app: App, container: Container): void {
  registerErrorHandling(app, {
    patternRules: { [JOB_ID_PATTERN]: JOB_ID_RULE },
    recordDenial: (denial, request) =>
      container.keys.recordEvent({
        actor: denial.actor,
        action: denial.action ?? 'access.denied',
        ...denial.key,
        details: {
          reason: denial.reason,
          ...denial.details,
          route: `${request.method} ${request.routeOptions.url ?? 'unmatched'}`,
        },
      }),
  });
}

async function registerRoutes(
  app: App,
  container: Container,
  budgets: RequestBudgets,
  authenticate: Container['authenticate'],
): Promise<void> {
  // Before every route: the spec only sees routes registered after it.
  await registerOpenApi(app);
  await app.register(healthRoutes(container));
  await app.register((await import('../ui/ui.routes.ts')).uiRoutes());
  await app.register(
    keysRoutes({
      keyService: container.keyService,
      hosts: container.hosts,
      authenticate,
      vaultMount: container.config.vault.kvMount,
      budgets,
      clock: container.clock,
    }),
  );
  await app.register(
    tokensRoutes({
      tokens: createTokenService({ tokens: container.tokens, clock: container.clock }),
      authenticate,
      budgets,
    }),
  );
  // audit wiring: the security teams' read API.
  await app.register(
    auditRoutes({
      audit: createAuditService({
        db: container.db.db,
        checkpoints: container.auditCheckpoints,
        verifier: container.auditVerifier,
      }),
      authenticate,
      budgets,
      clock: container.clock,
    }),
  );
  await app.register(webhooksRoutes({ receiver: container.webhooks, budgets }));
  await app.register(
    statsRoutes({
      keyStats: (from, to) => keyStats(container.db.db, from, to),
      authenticate,
      budgets,
      clock: container.clock,
    }),
  );
}

/** The HTTP API, ready for `inject()` or `listen()`; it never listens by itself. */
export async function buildApp(container: Container): Promise<App> {
  const app = createServer(container.config.http, container.logger);
  const budgets: RequestBudgets = {
    redis: container.redis,
    prefix: container.config.redisPrefix,
    ...container.config.rateLimit,
  };
  const authenticate = throttleFailedAuthentication(container.authenticate, budgets);
  registerRequestHooks(app, container);
  registerErrors(app, container);
  await registerRoutes(app, container, budgets, authenticate);
  return app;
}
