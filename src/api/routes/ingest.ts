// `POST /streams/:stream/events` (service.md §2): one JSON object, a JSON array, or NDJSON.
// The body arrives as raw text and is parsed here (malformed JSON → 400 with line and column,
// nothing taken); the events go to the core in one call, which rejects bad events one by one,
// takes the rest, and answers after the durable commit. `Idempotency-Key` is passed through:
// the core answers a repeat with the first answer without applying it again. Ingest is open
// (no token): only rule writes and admin routes need one. An event over the stream's maximum
// size is rejected on its own (its index and reason in the answer), like any other bad event;
// a body over VIGIL_BODY_LIMIT as a whole gets 413.

import type { FastifyPluginAsync } from 'fastify';
import { eventSizes } from '../../core/event-size.js';
import { markLoneSurrogates } from '../../core/lone-surrogates.js';
import { JSON_TYPE, mediaType, NDJSON_TYPE, parseEvents } from '../body.js';
import { apiError, errorSchema } from '../errors.js';
import type { RouteContext } from '../server.js';

export const ingestAnswerSchema = {
  type: 'object',
  required: ['accepted', 'late', 'rejected'],
  properties: {
    accepted: { type: 'integer' },
    late: { type: 'integer' },
    rejected: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'error'],
        properties: { index: { type: 'integer' }, error: { type: 'string' }, line: { type: 'integer' } },
      },
    },
  },
} as const;

/** Longest Idempotency-Key accepted (LMDB keys must stay small). */
const MAX_KEY_LENGTH = 256;

export const ingestRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  app.post<{ Params: { stream: string }; Body: string }>('/streams/:stream/events', {
    schema: {
      params: { type: 'object', properties: { stream: { type: 'string', minLength: 1, maxLength: 200 } } },
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: MAX_KEY_LENGTH } } },
      response: { 202: ingestAnswerSchema, '4xx': errorSchema, '5xx': errorSchema },
    },
  }, async (req, reply) => {
    const type = mediaType(req.headers['content-type']);
    if (type !== JSON_TYPE && type !== NDJSON_TYPE) {
      throw apiError('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE', [type, `${JSON_TYPE} (an object or an array) or ${NDJSON_TYPE}`]);
    }
    const text = typeof req.body === 'string' ? req.body : '';
    const { events, lines, kind } = parseEvents(text, type);
    markLoneSurrogates(text, events);
    // Each event's size as sent, measured only when the body is over the stream's maximum.
    const sizes = eventSizes(text, kind, ctx.core.maxEventBytesOf(req.params.stream));
    const idempotencyKey = req.headers['idempotency-key'];
    const answer = await ctx.core.ingest(req.params.stream, events, ctx.now(), typeof idempotencyKey === 'string' ? { idempotencyKey, sizes } : { sizes });
    const rejected = lines === null ? answer.rejected : answer.rejected.map((r) => ({ ...r, line: lines[r.index] }));
    return reply.code(202).send({ accepted: answer.accepted, late: answer.late, rejected });
  });
};
