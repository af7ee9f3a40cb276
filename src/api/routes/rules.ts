// Rules (service.md §2): list, read, validate and backtest are open; PUT and DELETE sit in an
// encapsulated child plugin whose onRequest hook asks for the API token (auth.ts), so the hook
// never touches the read routes. Compile errors are data with positions: a PUT that does not
// compile answers 400 with every error positioned and leaves the running version in place.

import type { FastifyPluginAsync } from 'fastify';
import { renderDiagnostic, type Diagnostic } from '../../core/diagnostics.js';
import { redactRuleText } from '../../dsl/redact.js';
import { JSON_TYPE, mediaType, NDJSON_TYPE, parseJson } from '../body.js';
import { apiError, errorSchema } from '../errors.js';
import type { RouteContext } from '../server.js';
import { requireToken, tokenMatches } from './auth.js';

const TEXT_TYPE = 'text/plain';

/** A diagnostic as the API shows it: position, message, code, and the rendered line with a caret. */
export function apiDiagnostic(d: Diagnostic, source: string | undefined): Record<string, unknown> {
  return { severity: d.severity, line: d.line, col: d.col, message: d.message, code: d.code, file: d.file, rendered: renderDiagnostic(d, source) };
}

/**
 * Diagnostics of one text as the API shows them. Lines are rendered from the redacted text
 * (redacted once per answer, not per diagnostic): answers never quote a sink secret.
 */
export function apiDiagnostics(list: readonly Diagnostic[], source: string | undefined): Record<string, unknown>[] {
  if (list.length === 0) return [];
  const shown = source === undefined ? undefined : redactRuleText(source);
  return list.map((d) => apiDiagnostic(d, shown));
}

/**
 * A rule as answered: the text with its sink secrets redacted (`<secret>`), unless `reveal`
 * (the request carries the API token). Without a configured token nobody is told apart, so
 * the text is always redacted.
 */
export function shownRule<T extends { text: string }>(rule: T, reveal = false): T {
  return reveal ? rule : { ...rule, text: redactRuleText(rule.text) };
}

const diagnosticSchema = {
  type: 'object',
  required: ['line', 'col', 'message', 'code'],
  properties: {
    severity: { type: 'string' },
    line: { type: 'integer' },
    col: { type: 'integer' },
    message: { type: 'string' },
    code: { type: 'string' },
    file: { type: 'string' },
    rendered: { type: 'string' },
  },
} as const;

/** Objects whose fields the core defines: pass them through whole. */
const open = { type: 'object', additionalProperties: true } as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

function textBody(body: unknown, contentType: string | undefined): string {
  const type = mediaType(contentType);
  if (type !== TEXT_TYPE) throw apiError('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE', [type, `${TEXT_TYPE} (the rule text)`]);
  return typeof body === 'string' ? body : '';
}

export const ruleRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  const { core } = ctx;

  app.get('/rules', {
    schema: { response: { 200: { type: 'object', properties: { rules: { type: 'array', items: open } } } } },
  }, async () => ({ rules: core.listRules() }));

  app.get<{ Params: { id: string } }>('/rules/:id', {
    schema: { params: idParams, response: { 200: open, '4xx': errorSchema } },
  }, async (req) => {
    const rule = core.getRule(req.params.id);
    if (rule === null) throw apiError('VIGIL_ERR_RULE_NOT_FOUND', [req.params.id]);
    const token = ctx.config.apiToken;
    return shownRule(rule, token !== null && tokenMatches(req.headers.authorization, token));
  });

  app.post<{ Querystring: { id?: string }; Body: string }>('/rules/validate', {
    schema: {
      querystring: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } },
      response: {
        200: {
          type: 'object',
          properties: { ok: { type: 'boolean' }, id: { type: ['string', 'null'] }, errors: { type: 'array', items: diagnosticSchema }, warnings: { type: 'array', items: diagnosticSchema } },
        },
        '4xx': errorSchema,
      },
    },
  }, async (req) => {
    const text = textBody(req.body, req.headers['content-type']);
    const { id, errors, warnings } = await core.validateRule(text, req.query.id);
    return { ok: errors.length === 0, id, errors: apiDiagnostics(errors, text), warnings: apiDiagnostics(warnings, text) };
  });

  app.post<{ Params: { id: string }; Querystring: { stream?: string }; Body: string }>('/rules/:id/backtest', {
    schema: {
      params: idParams,
      querystring: { type: 'object', properties: { stream: { type: 'string', minLength: 1 } } },
      response: {
        200: {
          type: 'object',
          properties: { records: { type: 'array', items: open }, errors: { type: 'array', items: { type: 'string' } }, diagnostics: { type: 'array', items: diagnosticSchema } },
        },
        '4xx': errorSchema,
      },
    },
  }, async (req) => {
    const type = mediaType(req.headers['content-type']);
    const body = typeof req.body === 'string' ? req.body : '';
    let text: string | null = null;
    let events: string;
    let stream = req.query.stream;
    if (type === NDJSON_TYPE) {
      events = body;
    } else if (type === JSON_TYPE) {
      const value = parseJson(body);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw apiError('VIGIL_ERR_BAD_REQUEST', ['the body must be {"text": "...", "events": "NDJSON" | [events], "stream"?: "..."}']);
      }
      const v = value as Record<string, unknown>;
      if (v.text !== undefined && v.text !== null && typeof v.text !== 'string') throw apiError('VIGIL_ERR_BAD_REQUEST', ['"text" must be a string (a rule text)']);
      text = typeof v.text === 'string' ? v.text : null;
      if (typeof v.events === 'string') events = v.events;
      else if (Array.isArray(v.events)) events = v.events.map((e) => JSON.stringify(e)).join('\n');
      else throw apiError('VIGIL_ERR_BAD_REQUEST', ['"events" must be NDJSON text or an array of events']);
      if (v.stream !== undefined) {
        if (typeof v.stream !== 'string' || v.stream === '') throw apiError('VIGIL_ERR_BAD_REQUEST', ['"stream" must be a stream name']);
        stream = v.stream;
      }
    } else {
      throw apiError('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE', [type, `${NDJSON_TYPE} (events for the stored rule) or ${JSON_TYPE} ({"text", "events"})`]);
    }
    if (text === null && core.getRule(req.params.id) === null) throw apiError('VIGIL_ERR_RULE_NOT_FOUND', [req.params.id]);
    const result = await core.backtest({ text, id: text === null ? req.params.id : null, events, ...(stream !== undefined ? { stream } : {}) });
    const source = text ?? core.getRule(req.params.id)?.text;
    return { records: result.records, errors: result.errors, diagnostics: apiDiagnostics(result.diagnostics, source) };
  });

  // Writes: the token hook lives only in this child plugin.
  await app.register(async (writes) => {
    requireToken(writes, ctx.config.apiToken);

    writes.put<{ Params: { id: string }; Body: string }>('/rules/:id', {
      schema: {
        params: idParams,
        response: {
          '2xx': {
            type: 'object',
            properties: {
              rule: open,
              created: { type: 'boolean' },
              keptPartialMatches: { type: 'boolean' },
              droppedPartialMatches: { type: 'integer' },
              warnings: { type: 'array', items: diagnosticSchema },
            },
          },
          '4xx': errorSchema,
        },
      },
    }, async (req, reply) => {
      const text = textBody(req.body, req.headers['content-type']);
      const id = req.params.id;
      const result = await core.putRule(id, text);
      if (!result.ok) {
        const errors = apiDiagnostics(result.errors, text);
        if (result.status === 409) throw apiError('VIGIL_ERR_RULE_FROM_FILE', [id], {}, errors.length > 0 ? { errors } : {});
        if (result.status === 422) throw apiError('VIGIL_ERR_RULE_TESTS_FAILED', [id, String(result.errors.length)], {}, { errors });
        throw apiError('VIGIL_ERR_RULE_INVALID', [id, String(result.errors.length)], {}, { errors });
      }
      req.log.info({ rule: id, version: result.rule.version, created: result.created, droppedPartialMatches: result.droppedPartialMatches }, 'rule stored');
      return reply.code(result.created ? 201 : 200).send({
        rule: shownRule(result.rule),
        created: result.created,
        keptPartialMatches: result.keptPartialMatches,
        droppedPartialMatches: result.droppedPartialMatches,
        warnings: apiDiagnostics(result.warnings, text),
      });
    });

    writes.delete<{ Params: { id: string } }>('/rules/:id', {
      schema: { params: idParams, response: { '4xx': errorSchema } },
    }, async (req, reply) => {
      const removed = await core.deleteRule(req.params.id);
      if (!removed) throw apiError('VIGIL_ERR_RULE_NOT_FOUND', [req.params.id]);
      req.log.info({ rule: req.params.id }, 'rule deleted');
      return reply.code(204).send();
    });
  });
};
