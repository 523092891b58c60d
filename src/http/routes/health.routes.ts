import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Container } from '../../container.ts';
import { PROBLEM_CONTENT_TYPE, problem } from '../errors.ts';
import { COMMON_PROBLEMS, described, problemResponses } from '../schemas.ts';

const CHECK_TIMEOUT_MS = 3_000;
// Probes are for the platform (kubelet, load balancer, Prometheus), which holds no API token.
const PROBE = { tags: ['operations'], security: [] };

async function runCheck(check: () => Promise<void>): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return undefined;
  } catch (error) {
    return (error as Error).message || 'failed';
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(container: Container): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/healthz',
      {
        schema: {
          ...PROBE,
          summary: 'Liveness probe',
          description: 'Answers while the process serves HTTP; it checks no dependency.',
          operationId: 'getHealth',
          response: { 200: described(Type.Object({ status: Type.Literal('ok') }), 'The process is alive') },
        },
        logLevel: 'warn',
      },
      async () => ({ status: 'ok' as const }),
    );

    const readyzSchema = {
      ...PROBE,
      summary: 'Readiness probe',
      description:
        "Checks Postgres, Redis, Vault, the Vault login (`vault-auth`) and each GitLab host's token " +
        `(\`host-token:<id>\`), each within ${CHECK_TIMEOUT_MS / 1000} s.`,
      operationId: 'getReadiness',
      response: {
        200: described(
          Type.Object({
            status: Type.Literal('ready'),
            checks: Type.Record(Type.String(), Type.String(), { description: '`ok` per dependency' }),
          }),
          'Every dependency answers',
        ),
        ...problemResponses({
          500: COMMON_PROBLEMS.internal,
          503: '`not-ready`: a dependency does not answer; `checks` has `ok` or `failed` per dependency, `failed` names the failed ones',
        }),
      },
    };
    app.get('/readyz', { schema: readyzSchema, logLevel: 'warn' }, async (request, reply) => {
      const names = Object.keys(container.readiness);
      const results = await Promise.all(names.map((name) => runCheck(container.readiness[name]!)));
      const checks = Object.fromEntries(names.map((name, i) => [name, results[i] ? 'failed' : 'ok']));
      const failed = names.filter((_, i) => results[i]);
      if (failed.length === 0) return { status: 'ready' as const, checks };
      // The reason goes to the log only: it may name internal addresses.
      request.log.warn(
        { failed: Object.fromEntries(failed.map((n) => [n, results[names.indexOf(n)]])) },
        'not ready',
      );
      return reply
        .code(503)
        .header('content-type', PROBLEM_CONTENT_TYPE)
        .send(problem(503, 'not-ready', `Unavailable: ${failed.join(', ')}.`, { checks, failed }));
    });

    const metricsSchema = {
      ...PROBE,
      summary: 'Prometheus metrics',
      operationId: 'getMetrics',
      response: {
        200: {
          description: 'Metrics in the Prometheus text exposition format 0.0.4',
          content: { 'text/plain': { schema: Type.String() } },
        },
        ...problemResponses({
          500: '`internal`: a metric could not be collected, e.g. a gauge read from Postgres while it is down',
        }),
      },
    };
    app.get('/metrics', { schema: metricsSchema, logLevel: 'warn' }, async (_request, reply) => {
      const body = await container.metrics.registry.metrics();
      return reply.header('content-type', container.metrics.registry.contentType).send(body);
    });
  };
}
