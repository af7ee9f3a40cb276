// Streams (service.md §2): per stream its watermark, max event time, lag and counts, and the
// late side output, newest first, paged by an opaque cursor from the core. Open routes.
// Streams are API objects of their own too: PUT /streams/:stream (the declaration text) and
// DELETE (refused while a rule reads it) sit in a child plugin behind the API token, like rule
// writes; GET /streams/:stream says where a stream is declared and shows its declaration.

import type { FastifyPluginAsync } from 'fastify';
import { mediaType } from '../body.js';
import { apiError, errorSchema } from '../errors.js';
import type { RouteContext } from '../server.js';
import { requireToken } from './auth.js';
import { apiDiagnostic } from './rules.js';

const TEXT_TYPE = 'text/plain';

const nameParams = {
  type: 'object',
  required: ['stream'],
  properties: { stream: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

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

  app.get<{ Params: { stream: string } }>('/streams/:stream', {
    schema: { params: nameParams, response: { 200: open, '4xx': errorSchema } },
  }, async (req) => {
    const detail = ctx.core.getStream(req.params.stream);
    if (detail === null) throw apiError('VIGIL_ERR_STREAM_NOT_FOUND', [req.params.stream]);
    return detail;
  });

  // Writes: the token hook lives only in this child plugin.
  await app.register(async (writes) => {
    requireToken(writes, ctx.config.apiToken);

    writes.put<{ Params: { stream: string }; Body: string }>('/streams/:stream', {
      schema: {
        params: nameParams,
        response: { '2xx': { type: 'object', properties: { stream: open, created: { type: 'boolean' } } }, '4xx': errorSchema },
      },
    }, async (req, reply) => {
      const type = mediaType(req.headers['content-type']);
      if (type !== TEXT_TYPE) throw apiError('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE', [type, `${TEXT_TYPE} (the stream declaration)`]);
      const text = typeof req.body === 'string' ? req.body : '';
      const name = req.params.stream;
      const result = await ctx.core.putStream(name, text);
      if (!result.ok) {
        throw apiError('VIGIL_ERR_STREAM_INVALID', [name, String(result.errors.length)], {}, { errors: result.errors.map((d) => apiDiagnostic(d, text)) });
      }
      req.log.info({ stream: name, created: result.created }, 'stream stored');
      return reply.code(result.created ? 201 : 200).send({ stream: result.stream, created: result.created });
    });

    writes.delete<{ Params: { stream: string } }>('/streams/:stream', {
      schema: { params: nameParams, response: { '4xx': errorSchema } },
    }, async (req, reply) => {
      const removed = await ctx.core.deleteStream(req.params.stream);
      if (!removed) throw apiError('VIGIL_ERR_STREAM_NOT_FOUND', [req.params.stream]);
      return reply.code(204).send();
    });
  });
};
