// The HTTP API (service.md §2): a thin fastify shell over the service core. `buildServer` wires
// the body parsers, the error catalogue and one plugin per area; it never listens (tests use
// `inject()`, `vigil serve` calls `listen`). Bodies are parsed by the routes themselves (the
// content-type parsers only hand over the raw text, bounded by the body limit), so malformed
// JSON is answered with its line and column. Auth lives only in the encapsulated plugins that
// hold the write routes (routes/auth.ts). Request bodies and the token are never logged:
// fastify's request serializer logs method, URL and addresses only.

import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AlertRecord } from '../core/alert.js';
import type { Diagnostic } from '../core/diagnostics.js';
import type {
  AlertQuery,
  BacktestInput,
  BacktestResult,
  IngestAnswer,
  IngestOptions,
  LateEntry,
  PutRuleResult,
  PutStreamResult,
  StreamDetail,
  RuleDetail,
  RuleInfo,
  StreamInfo,
} from '../engine/types.js';
import type { Config } from '../config.js';
import { JSON_TYPE, mediaType, NDJSON_TYPE } from './body.js';
import { apiError, toApiError, type RequestMedia } from './errors.js';
import { registerOpenApi } from './openapi.js';
import { adminRoutes } from './routes/admin.js';
import { alertRoutes } from './routes/alerts.js';
import { healthRoutes } from './routes/health.js';
import { ingestRoutes } from './routes/ingest.js';
import { ruleRoutes } from './routes/rules.js';
import { statusRoutes } from './routes/status.js';
import { streamRoutes } from './routes/streams.js';

export type AlertWithDelivery = AlertRecord & { delivery: Record<string, { state: string; attempts: number; lastError: string | null }> };

/** What the API calls on the core: the methods of DurableEngine (src/engine/durable-engine.ts) it uses. */
export interface ServiceCore {
  isReady(): boolean;
  ingest(stream: string, events: unknown[], arrivalTime: number, opts?: IngestOptions): Promise<IngestAnswer>;
  /** The largest event a stream takes, in bytes (Infinity for an unknown stream). */
  maxEventBytesOf(stream: string): number;
  listRules(): RuleInfo[];
  getRule(id: string): RuleDetail | null;
  putRule(id: string, text: string): Promise<PutRuleResult>;
  validateRule(text: string, id?: string): Promise<{ id: string | null; errors: Diagnostic[]; warnings: Diagnostic[] }>;
  deleteRule(id: string): Promise<boolean>;
  getStream(name: string): StreamDetail | null;
  putStream(name: string, text: string): Promise<PutStreamResult>;
  deleteStream(name: string): Promise<boolean>;
  backtest(input: BacktestInput): Promise<BacktestResult>;
  streams(): StreamInfo[];
  late(stream: string, opts: { limit?: number; cursor?: string }): { late: LateEntry[]; next: string | null };
  alerts(q: AlertQuery): { alerts: AlertWithDelivery[]; next: string | null };
  savepoint(): Promise<string>;
  retryDeliveries(filter: { alertId?: string; sink?: string }): Promise<number | null>;
}

export interface ServerOptions {
  /** Serve HTTPS with this certificate (chain) and key, PEM; the server is a node:tls server (`setSecureContext`). */
  https?: { cert: Buffer; key: Buffer };
  /** More readiness (e.g. MQTT connected when configured); `/ready` is 503 unless it is ok. */
  extraReadiness?: () => { ok: boolean; detail: string };
  /** Prometheus exposition for `GET /metrics`; the route answers 404 without it. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** Wall clock for ingest arrival times (default Date.now). */
  now?: () => number;
}

/** What every route plugin receives. */
export interface RouteContext {
  core: ServiceCore;
  config: Config;
  options: ServerOptions;
  now: () => number;
}

/** Media types whose bodies reach the routes as raw text. */
const RAW_TYPES = [JSON_TYPE, NDJSON_TYPE, 'text/plain'];

/** The media types each route with a body takes: `METHOD url` → [types, how the 415 says it]. */
const ROUTE_TYPES: Record<string, [string[], string]> = {
  'POST /streams/:stream/events': [[JSON_TYPE, NDJSON_TYPE], `${JSON_TYPE} (an object or an array) or ${NDJSON_TYPE}`],
  'PUT /rules/:id': [['text/plain'], 'text/plain (the rule text)'],
  'POST /rules/validate': [['text/plain'], 'text/plain (the rule text)'],
  'POST /rules/:id/backtest': [[NDJSON_TYPE, JSON_TYPE], `${NDJSON_TYPE} (events for the stored rule) or ${JSON_TYPE} ({"text", "events"})`],
  'PUT /streams/:stream': [['text/plain'], 'text/plain (the stream declaration)'],
};

function requestMedia(method: string, url: string | undefined, contentType: string | undefined): RequestMedia {
  const [accepted, want] = ROUTE_TYPES[`${method} ${url ?? ''}`] ?? [RAW_TYPES, RAW_TYPES.join(', ')];
  return { contentType: mediaType(contentType), accepted, want };
}

export function buildServer(core: ServiceCore, config: Config, logger: FastifyBaseLogger, options: ServerOptions = {}): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger,
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
    bodyLimit: config.bodyLimit,
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false, allErrors: false } },
  }) as unknown as FastifyInstance;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(RAW_TYPES, { parseAs: 'string', bodyLimit: config.bodyLimit }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const { error, fault } = toApiError(err, config.bodyLimit, requestMedia(req.method, req.routeOptions.url, req.headers['content-type']));
    if (fault) req.log.error({ err }, 'request failed');
    else req.log.info({ code: error.code, status: error.status }, error.message);
    if (error.status === 401) reply.header('www-authenticate', 'Bearer realm="vigil"');
    if (typeof error.details.retryAfterSeconds === 'number') reply.header('retry-after', String(error.details.retryAfterSeconds));
    return reply.code(error.status).type('application/json; charset=utf-8').send(error.body());
  });
  app.setNotFoundHandler((req, reply) => {
    const error = apiError('VIGIL_ERR_ROUTE_NOT_FOUND', [req.method, req.url.split('?')[0]!]);
    return reply.code(404).send(error.body());
  });

  const ctx: RouteContext = { core, config, options, now: options.now ?? Date.now };
  // Before the routes: it documents each as it is registered.
  registerOpenApi(app);
  app.register(healthRoutes, ctx);
  app.register(ingestRoutes, ctx);
  app.register(ruleRoutes, ctx);
  app.register(streamRoutes, ctx);
  app.register(alertRoutes, ctx);
  app.register(adminRoutes, ctx);
  app.register(statusRoutes, ctx);
  return app;
}
