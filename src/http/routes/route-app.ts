import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** The Fastify instance a route plugin receives, so route groups can be registered by plain functions. */
export type RouteApp = Parameters<FastifyPluginAsyncTypebox>[0];
