import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Container } from '../../container.ts';
import { PROBLEM_CONTENT_TYPE, problem } from '../errors.ts';

const CHECK_TIMEOUT_MS = 3_000;

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
      { schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } }, logLevel: 'warn' },
      async () => ({ status: 'ok' as const }),
    );

    app.get('/readyz', { logLevel: 'warn' }, async (request, reply) => {
      const names = Object.keys(container.readiness);
      const results = await Promise.all(names.map((name) => runCheck(container.readiness[name]!)));
      const checks = Object.fromEntries(names.map((name, i) => [name, results[i] ? 'failed' : 'ok']));
      const failed = names.filter((_, i) => results[i]);
      if (failed.length === 0) return { status: 'ready', checks };
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

    app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
      const body = await container.metrics.registry.metrics();
      return reply.header('content-type', container.metrics.registry.contentType).send(body);
    });
  };
}
