// Admin routes (service.md §2): `POST /admin/savepoints` makes a consistent copy of the whole
// state and answers its path (the newest VIGIL_SAVEPOINTS_KEEP are kept); `vigil serve
// --from-savepoint PATH` starts from one. `POST /admin/sinks/:sink/retry` queues every failed
// delivery of a sink kind again (after an outage longer than the maximum age, or a permanent
// error since fixed at the receiver). The whole plugin sits behind the API token (auth.ts)
// when one is configured.

import type { FastifyPluginAsync } from 'fastify';
import { apiError, errorSchema } from '../errors.js';
import type { RouteContext } from '../server.js';
import { requireToken } from './auth.js';

export const adminRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  requireToken(app, ctx.config.apiToken);

  app.post('/admin/savepoints', {
    schema: { response: { 201: { type: 'object', properties: { path: { type: 'string' } } }, '4xx': errorSchema, '5xx': errorSchema } },
  }, async (req, reply) => {
    const path = await ctx.core.savepoint();
    req.log.info({ path }, 'savepoint written');
    return reply.code(201).send({ path });
  });

  app.post<{ Params: { sink: string } }>('/admin/sinks/:sink/retry', {
    schema: { response: { 200: { type: 'object', properties: { retried: { type: 'integer' } } }, '4xx': errorSchema, '5xx': errorSchema } },
  }, async (req) => {
    const sink = req.params.sink;
    if (!SINK_KINDS.includes(sink)) throw apiError('VIGIL_ERR_BAD_REQUEST', [`unknown sink '${sink.slice(0, 100)}': one of ${SINK_KINDS.join(', ')}`]);
    const retried = (await ctx.core.retryDeliveries({ sink })) ?? 0;
    return { retried };
  });
};

const SINK_KINDS: readonly string[] = ['webhook', 'email', 'mqtt', 'log'];
