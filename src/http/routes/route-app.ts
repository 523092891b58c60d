import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AccessAction } from '../../auth/access.ts';
import type { Authenticator } from '../../auth/authenticator.ts';
import { authenticateRequests } from '../auth.ts';
import { type RequestBudgets, registerCallerBudget } from '../request-budgets.ts';

/** The Fastify instance a route plugin receives, so route groups can be registered by plain functions. */
export type RouteApp = Parameters<FastifyPluginAsyncTypebox>[0];

export interface CallerRouteDeps {
  authenticate: Authenticator;
  budgets: RequestBudgets;
}

/**
 * A plugin whose routes authenticate their caller, check the caller's role for `access` (or each
 * route's own action), and count against the caller's request budget. `registerGroups` run in
 * order, which is the order of the paths in the generated OpenAPI.
 */
export function callerRoutes<Deps extends CallerRouteDeps>(
  deps: Deps,
  access: AccessAction | undefined,
  registerGroups: ((app: RouteApp, deps: Deps) => void)[],
): FastifyPluginAsyncTypebox {
  return async (app) => {
    authenticateRequests(app, deps.authenticate, access);
    await registerCallerBudget(app, deps.budgets);
    for (const register of registerGroups) register(app, deps);
  };
}
