// Admin routes (service.md §2): `POST /admin/savepoints` makes a consistent copy of the whole
// state and answers its path; `vigil serve --from-savepoint PATH` starts from one. The whole
// plugin sits behind the API token (auth.ts) when one is configured.

import type { FastifyPluginAsync } from 'fastify';
import { errorSchema } from '../errors.js';
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
};
