// Streams (service.md §2): per stream its watermark, max event time, lag and counts, and the
// late side output, newest first, paged by an opaque cursor from the core. Open routes.

import type { FastifyPluginAsync } from 'fastify';
import { apiError, errorSchema } from '../errors.js';
import type { RouteContext } from '../server.js';

const open = { type: 'object', additionalProperties: true } as const;

export const streamRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  app.get('/streams', {
    schema: { response: { 200: { type: 'object', properties: { streams: { type: 'array', items: open } } } } },
  }, async () => ({ streams: ctx.core.streams() }));

  app.get<{ Params: { stream: string }; Querystring: { limit?: number; cursor?: string } }>('/streams/:stream/late', {
    schema: {
      params: { type: 'object', properties: { stream: { type: 'string', minLength: 1 } } },
      querystring: {
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, cursor: { type: 'string', minLength: 1 } },
      },
      response: {
        200: { type: 'object', properties: { late: { type: 'array', items: open }, next: { type: ['string', 'null'] } } },
        '4xx': errorSchema,
      },
    },
  }, async (req) => {
    const { stream } = req.params;
    if (!ctx.core.streams().some((s) => s.name === stream)) throw apiError('VIGIL_ERR_STREAM_NOT_FOUND', [stream]);
    const opts: { limit?: number; cursor?: string } = { limit: req.query.limit ?? 100 };
    if (req.query.cursor !== undefined) opts.cursor = req.query.cursor;
    return ctx.core.late(stream, opts);
  });
};
