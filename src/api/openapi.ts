// The OpenAPI 3 document of the API (service.md §2), served at `GET /openapi.json`: built by
// @fastify/swagger from the routes' own schemas (params, query, headers, responses). What the
// route files do not say is added here, in one table, as each route is registered (`onRoute`):
// a summary, the error answers it can give (status → catalogue codes, all in the error shape
// of errors.ts), whether it needs the API token, and the media types of non-JSON answers.
// A route missing from the table is still documented from its schema (with the 500 answer);
// test/api/openapi.test.ts fails on it, so the table cannot silently fall behind.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import swagger from '@fastify/swagger';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { CATALOGUE, errorSchema, type ErrorCode } from './errors.js';
import { packageRoot } from './routes/status.js';

interface RouteDoc {
  summary: string;
  /** Error answers beyond the ones every route can give (500). */
  errors: ErrorCode[];
  /** Needs `Authorization: Bearer <VIGIL_API_TOKEN>` when a token is configured. */
  auth?: boolean;
  /** Success answers the route's schema does not declare: status → description (and media type when not JSON). */
  ok?: Record<number, { description: string; type?: string }>;
  /** Request body media types (the body is read as text and parsed by the route). */
  body?: Record<string, { type: 'string' }>;
}

const TEXT = { 'text/plain': { type: 'string' as const } };

/** Every route of the API: `METHOD url` → what its schema does not say. */
export const ROUTE_DOCS: Record<string, RouteDoc> = {
  'GET /health': { summary: 'Liveness: the process answers', errors: [] },
  'GET /ready': { summary: 'Readiness: state open, rules loaded, MQTT connected when configured', errors: ['VIGIL_ERR_NOT_READY'] },
  'GET /metrics': { summary: 'Prometheus metrics', errors: ['VIGIL_ERR_ROUTE_NOT_FOUND'], ok: { 200: { description: 'Prometheus text exposition', type: 'text/plain' } } },
  'GET /openapi.json': { summary: 'This document', errors: [] },
  'POST /streams/:stream/events': {
    summary: 'Ingest events (a JSON object or array, or NDJSON); answered after the commit that holds them',
    errors: ['VIGIL_ERR_BAD_JSON', 'VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_STREAM_NOT_FOUND', 'VIGIL_ERR_BODY_TOO_LARGE', 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE', 'VIGIL_ERR_NOT_READY'],
    body: { 'application/json': { type: 'string' }, 'application/x-ndjson': { type: 'string' } },
  },
  'GET /rules': { summary: 'Every rule with its status, origin and counters', errors: [] },
  'GET /rules/:id': { summary: 'One rule: text, status, diagnostics', errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_RULE_NOT_FOUND'] },
  'POST /rules/validate': { summary: 'Compile a rule text without storing it', errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_BODY_TOO_LARGE', 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE'], body: TEXT },
  'POST /rules/:id/backtest': {
    summary: 'Run a rule (stored, or given as text) over events, apart from the live state',
    errors: ['VIGIL_ERR_BAD_JSON', 'VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_RULE_INVALID', 'VIGIL_ERR_RULE_NOT_FOUND', 'VIGIL_ERR_STREAM_NOT_FOUND', 'VIGIL_ERR_BODY_TOO_LARGE', 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE'],
    body: { 'application/x-ndjson': { type: 'string' }, 'application/json': { type: 'string' } },
  },
  'PUT /rules/:id': {
    summary: 'Create or replace an API rule (hot swap)',
    errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_RULE_INVALID', 'VIGIL_ERR_UNAUTHORIZED', 'VIGIL_ERR_RULE_FROM_FILE', 'VIGIL_ERR_BODY_TOO_LARGE', 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE'],
    auth: true,
    body: TEXT,
  },
  'DELETE /rules/:id': { summary: 'Delete an API rule', errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_UNAUTHORIZED', 'VIGIL_ERR_RULE_NOT_FOUND', 'VIGIL_ERR_RULE_FROM_FILE'], auth: true, ok: { 204: { description: 'Deleted' } } },
  'POST /alerts/:id/retry': { summary: "Queue an alert's failed deliveries again", errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_UNAUTHORIZED', 'VIGIL_ERR_ALERT_NOT_FOUND', 'VIGIL_ERR_NOT_READY'], auth: true },
  'POST /admin/sinks/:sink/retry': { summary: 'Queue every failed delivery of a sink kind again', errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_UNAUTHORIZED', 'VIGIL_ERR_NOT_READY'], auth: true },
  'GET /streams': { summary: 'Every stream with its counters and watermark', errors: [] },
  'GET /streams/:stream': { summary: 'One stream: declaration, origin, readers', errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_STREAM_NOT_FOUND'] },
  'GET /streams/:stream/late': { summary: 'The late events kept for a stream (paged)', errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_STREAM_NOT_FOUND'] },
  'PUT /streams/:stream': {
    summary: 'Declare or change an API stream',
    errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_STREAM_INVALID', 'VIGIL_ERR_UNAUTHORIZED', 'VIGIL_ERR_STREAM_IN_USE', 'VIGIL_ERR_STREAM_NOT_API', 'VIGIL_ERR_BODY_TOO_LARGE', 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE'],
    auth: true,
    body: TEXT,
  },
  'DELETE /streams/:stream': {
    summary: 'Delete an API stream that no rule reads',
    errors: ['VIGIL_ERR_BAD_REQUEST', 'VIGIL_ERR_UNAUTHORIZED', 'VIGIL_ERR_STREAM_NOT_FOUND', 'VIGIL_ERR_STREAM_IN_USE', 'VIGIL_ERR_STREAM_NOT_API'],
    auth: true,
    ok: { 204: { description: 'Deleted' } },
  },
  'GET /alerts': { summary: 'Alerts from the outbox with their delivery states (paged, newest first)', errors: ['VIGIL_ERR_BAD_REQUEST'] },
  'POST /admin/savepoints': { summary: 'Write a savepoint of the state', errors: ['VIGIL_ERR_UNAUTHORIZED'], auth: true },
  'GET /': { summary: 'The status page', errors: [], ok: { 200: { description: 'HTML page', type: 'text/html' } } },
  'GET /status/page.js': { summary: 'The status page script', errors: [], ok: { 200: { description: 'Script', type: 'text/javascript' } } },
  'GET /status/page.css': { summary: 'The status page style', errors: [], ok: { 200: { description: 'Style sheet', type: 'text/css' } } },
};

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

type Schema = Record<string, unknown>;

/** Adds the table's summary, error answers, security and media types to a route's schema. */
function documentRoute(route: RouteOptions): void {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (methods.every((m) => m === 'HEAD')) return;
  const key = `${methods.find((m) => m !== 'HEAD')} ${route.url}`;
  const doc: RouteDoc = ROUTE_DOCS[key] ?? { summary: key, errors: [] };
  const schema: Schema = { ...(route.schema as Schema | undefined) };
  schema.summary ??= doc.summary;
  if (doc.auth) schema.security = [{ bearer: [] }];
  const response: Schema = { ...(schema.response as Schema | undefined) };
  for (const [status, ok] of Object.entries(doc.ok ?? {})) {
    if (response[status] !== undefined) continue;
    response[status] = ok.type === undefined ? { description: ok.description, type: 'null' } : { description: ok.description, content: { [ok.type]: { schema: { type: 'string' } } } };
  }
  // Each error status: the catalogue codes the route can answer with it, in the one error shape.
  const byStatus = new Map<number, string[]>();
  for (const code of [...doc.errors, 'VIGIL_ERR_INTERNAL' as const]) {
    const status = CATALOGUE[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, codes] of byStatus) {
    const existing = response[String(status)] as Schema | undefined;
    const description = `error: ${codes.join(', ')}`;
    response[String(status)] = existing ? { description, ...existing } : { description, ...errorSchema };
  }
  schema.response = response;
  route.schema = schema;
}

/** Registers @fastify/swagger, the route documentation hook and `GET /openapi.json`. */
export function registerOpenApi(app: FastifyInstance): void {
  app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Vigil',
        version: version(),
        description: 'Complex-event-processing and alerting service. Every error answer is `{"error": {"code", "message", ...}}` (codes: src/api/errors.ts).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'VIGIL_API_TOKEN (rule and stream writes, /admin/*)' } } },
    },
    // Request bodies are read as text by the routes (no body schema, which fastify would
    // validate): their media types are added to the document only.
    transform: ({ schema, url, route }) => {
      const method = (Array.isArray(route.method) ? route.method : [route.method]).find((m) => m !== 'HEAD');
      const body = ROUTE_DOCS[`${method} ${url}`]?.body;
      if (!body || !schema) return { schema, url };
      return { schema: { ...schema, body: { content: Object.fromEntries(Object.entries(body).map(([type, s]) => [type, { schema: s }])) } }, url };
    },
  });
  app.addHook('onRoute', documentRoute);
  // In a plugin, so that it is registered after @fastify/swagger and the hook above (like every route).
  app.register(async (scope) => {
    scope.get('/openapi.json', { schema: { response: { 200: { description: 'The OpenAPI 3 document of this API', type: 'object', additionalProperties: true } } } }, async () => app.swagger());
  });
}
