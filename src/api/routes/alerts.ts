// `GET /alerts` (service.md §2): recent alerts, newest first, each with its delivery state per
// sink; filtered by rule, key and `since` (ISO time or epoch ms), paged by `limit` (and at most
// VIGIL_PAGE_MAX_BYTES) and an opaque `cursor`. Open route. Delivery settings (which may hold
// secrets) are never part of the answer.
//
// `POST /alerts/:id/retry` (API token): queues the alert's failed deliveries again (`pending`,
// attempts from 0, their maximum age counted from now); answers `{ retried: n }`.

import type { FastifyPluginAsync } from 'fastify';
import type { AlertQuery } from '../../engine/types.js';
import { apiError, errorSchema } from '../errors.js';
import type { RouteContext } from '../server.js';
import { requireToken } from './auth.js';

/** `since`: epoch ms or an ISO-8601 time. */
export function parseSince(raw: string): number {
  const s = raw.trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  const t = /^\d{4}-\d{2}-\d{2}/.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(t)) throw apiError('VIGIL_ERR_BAD_REQUEST', [`"since" must be epoch milliseconds or an ISO-8601 time, not ${JSON.stringify(raw)}`]);
  return t;
}

export const alertRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  app.get<{ Querystring: { rule?: string; key?: string; since?: string; limit?: number; cursor?: string } }>('/alerts', {
    schema: {
      querystring: {
        type: 'object',
        properties: {
          rule: { type: 'string', minLength: 1 },
          key: { type: 'string' },
          since: { type: 'string', minLength: 1 },
          limit: { type: 'integer', minimum: 1, maximum: 1000 },
          cursor: { type: 'string', minLength: 1 },
        },
      },
      response: {
        200: { type: 'object', properties: { alerts: { type: 'array', items: { type: 'object', additionalProperties: true } }, next: { type: ['string', 'null'] } } },
        '4xx': errorSchema,
      },
    },
  }, async (req) => {
    const q: AlertQuery = { limit: req.query.limit ?? 100 };
    if (req.query.rule !== undefined) q.rule = req.query.rule;
    if (req.query.key !== undefined) q.key = req.query.key;
    if (req.query.since !== undefined) q.since = parseSince(req.query.since);
    if (req.query.cursor !== undefined) q.cursor = req.query.cursor;
    return ctx.core.alerts(q);
  });

  await app.register(async (writes) => {
    requireToken(writes, ctx.config.apiToken);
    writes.post<{ Params: { id: string } }>('/alerts/:id/retry', {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 1000 } } },
        response: { 200: { type: 'object', properties: { retried: { type: 'integer' } } }, '4xx': errorSchema, '5xx': errorSchema },
      },
    }, async (req) => {
      const n = await ctx.core.retryDeliveries({ alertId: req.params.id });
      if (n === null) throw apiError('VIGIL_ERR_ALERT_NOT_FOUND', [req.params.id.slice(0, 200)]);
      return { retried: n };
    });
  });
};
