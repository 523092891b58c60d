// `GET …/hooks/{id}/deliveries`, `GET …/deliveries/{delivery_id}` and
// `POST …/deliveries/{delivery_id}/attempts` (redelivery), for repository and organisation hooks.
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  type createGithubDeliverer,
  type DeliveryRecord,
  deliveryBody,
  deliveryItemBody,
  type GithubHook,
} from './hook-deliveries.ts';
import { REST_DOCS, readPage } from './responses.ts';

export type HookParams = {
  owner?: string;
  repo?: string;
  org?: string;
  hook_id?: string;
  delivery_id?: string;
};
const DOCS = `${REST_DOCS}/webhooks/repo-deliveries`;

export function registerDeliveryRoutes(
  app: FastifyInstance,
  prefix: string,
  deps: {
    findHook(params: HookParams): GithubHook | undefined;
    deliverer: ReturnType<typeof createGithubDeliverer>;
    notFound(reply: FastifyReply, docs: string): FastifyReply;
  },
) {
  const docs = DOCS;
  const findDelivery = (params: HookParams): [GithubHook, DeliveryRecord] | undefined => {
    const hook = deps.findHook(params);
    const record = hook && deps.deliverer.get(hook.id, Number(params.delivery_id));
    return hook && record ? [hook, record] : undefined;
  };

  app.get<{ Params: HookParams; Querystring: Record<string, string | undefined> }>(
    `${prefix}/:hook_id/deliveries`,
    async (request, reply) => {
      const hook = deps.findHook(request.params);
      if (!hook) return deps.notFound(reply, docs);
      const { perPage } = readPage(request.query);
      const cursor = Number(request.query.cursor ?? Number.POSITIVE_INFINITY);
      const wanted = request.query.status;
      const matching = deps.deliverer
        .list(hook.id)
        .map((record) => [record, deliveryItemBody(record)] as const)
        .filter(
          ([record, item]) =>
            record.id < cursor && (!wanted || (wanted === 'success') === (item.status === 'OK')),
        );
      const pageItems = matching.slice(0, perPage);
      const last = pageItems.at(-1);
      if (last && matching.length > perPage) {
        const next = new URL(request.url, `${request.protocol}://${request.host}`);
        next.searchParams.set('cursor', String(last[0].id));
        next.searchParams.set('per_page', String(perPage));
        reply.header('link', `<${next.toString()}>; rel="next"`);
      }
      return pageItems.map(([, item]) => item);
    },
  );

  app.get<{ Params: HookParams }>(`${prefix}/:hook_id/deliveries/:delivery_id`, async (request, reply) => {
    const found = findDelivery(request.params);
    return found ? deliveryBody(found[1]) : deps.notFound(reply, docs);
  });

  app.post<{ Params: HookParams }>(
    `${prefix}/:hook_id/deliveries/:delivery_id/attempts`,
    async (request, reply) => {
      const found = findDelivery(request.params);
      if (!found) return deps.notFound(reply, docs);
      deps.deliverer.redeliver(...found);
      return reply.code(202).send({});
    },
  );
}
