// Liveness, readiness and metrics (service.md §2, §6). `/health` answers while the process
// serves; `/ready` is 200 only when the core is ready (state open, rules loaded) and every extra
// readiness check (MQTT connected when configured) is ok. `/metrics` serves the registry given
// to buildServer, or 404 when there is none.

import type { FastifyPluginAsync } from 'fastify';
import { apiError, errorSchema } from '../errors.js';
import type { RouteContext } from '../server.js';

const checksSchema = {
  type: 'object',
  additionalProperties: { type: 'object', properties: { ok: { type: 'boolean' }, detail: { type: 'string' } } },
} as const;

export const healthRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  app.get('/health', {
    schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } },
  }, async () => ({ status: 'ok' }));

  app.get('/ready', {
    schema: {
      response: {
        200: { type: 'object', properties: { status: { type: 'string' }, checks: checksSchema } },
        503: { ...errorSchema, properties: { ...errorSchema.properties, checks: checksSchema } },
      },
    },
  }, async (_req, reply) => {
    const coreReady = ctx.core.isReady();
    const checks: Record<string, { ok: boolean; detail: string }> = {
      core: { ok: coreReady, detail: coreReady ? 'state open, rules loaded' : 'state not open or rules not loaded' },
    };
    if (ctx.options.extraReadiness) checks.extra = ctx.options.extraReadiness();
    const failing = Object.entries(checks).filter(([, c]) => !c.ok);
    if (failing.length === 0) return { status: 'ready', checks };
    const error = apiError('VIGIL_ERR_NOT_READY', [failing.map(([name, c]) => `${name}: ${c.detail}`).join('; ')], {}, { checks });
    return reply.code(503).send(error.body());
  });

  app.get('/metrics', async (req, reply) => {
    if (!ctx.options.metrics) throw apiError('VIGIL_ERR_ROUTE_NOT_FOUND', [req.method, '/metrics (metrics are not enabled)']);
    const { contentType, body } = await ctx.options.metrics();
    return reply.type(contentType).send(body);
  });
};
