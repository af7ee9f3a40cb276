// The HTTP error catalogue (style principle 7, after fastify's lib/errors.js): every error the
// API can answer has a code, a message template and a status, here and nowhere else. Every
// error body is `{"error": {"code", "message", ...details}}`; a few carry more beside `error`
// (a rule's compile errors). `toApiError` maps whatever a route threw — our own ApiError, the
// core's ServiceError, fastify's FST_ERR_* — onto this catalogue.

import { ServiceError } from '../engine/types.js';

interface Entry {
  status: number;
  message: (...args: string[]) => string;
}

export const CATALOGUE = {
  VIGIL_ERR_BAD_JSON: { status: 400, message: (detail = 'malformed JSON') => `malformed JSON: ${detail}` },
  VIGIL_ERR_BAD_REQUEST: { status: 400, message: (detail = 'bad request') => detail },
  VIGIL_ERR_STREAM_INVALID: { status: 400, message: (name = '', n = '1') => `stream '${name}' does not compile (${n} error(s)); nothing changed` },
  VIGIL_ERR_RULE_INVALID: { status: 400, message: (id = '', n = '1') => `rule '${id}' does not compile (${n} error(s)); the running version, if any, is unchanged` },
  VIGIL_ERR_RULE_TESTS_FAILED: { status: 422, message: (id = '', n = '1') => `rule '${id}' fails its tests (${n} failing expectation(s)); the running version, if any, is unchanged` },
  VIGIL_ERR_UNAUTHORIZED: { status: 401, message: () => 'this route needs "Authorization: Bearer <VIGIL_API_TOKEN>"' },
  VIGIL_ERR_RULE_NOT_FOUND: { status: 404, message: (id = '') => `no rule '${id}'` },
  VIGIL_ERR_STREAM_NOT_FOUND: { status: 404, message: (name = '') => `no stream '${name}' (declare it with PUT /streams/${name}, in a rules file or in a PUT /rules text)` },
  VIGIL_ERR_ALERT_NOT_FOUND: { status: 404, message: (id = '') => `no alert '${id}' in the outbox` },
  VIGIL_ERR_ROUTE_NOT_FOUND: { status: 404, message: (method = '', url = '') => `no route ${method} ${url}` },
  VIGIL_ERR_RULE_FROM_FILE: { status: 409, message: (id = '') => `rule '${id}' comes from a file in the rules directory: edit or remove the file instead` },
  VIGIL_ERR_STREAM_IN_USE: { status: 409, message: (name = '', rules = '') => `stream '${name}' is read by rule ${rules}: delete or change those rules first` },
  VIGIL_ERR_STREAM_NOT_API: { status: 409, message: (name = '', where = '') => `stream '${name}' is not an API stream: it comes from ${where}` },
  VIGIL_ERR_BODY_TOO_LARGE: { status: 413, message: (limit = '') => `request body larger than the limit of ${limit} bytes (VIGIL_BODY_LIMIT)` },
  VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: (got = '', want = '') => `${got === '' ? 'no Content-Type' : `unsupported Content-Type '${got}'`}${want ? `; use ${want}` : ''}` },
  VIGIL_ERR_WORK_LIMIT: { status: 422, message: (limit = '', detail = '') => `the run went past its ${limit} limit${detail ? ` (${detail})` : ''} and was stopped; nothing else is affected` },
  VIGIL_ERR_INTERNAL: { status: 500, message: () => 'internal error (see the service log)' },
  VIGIL_ERR_WORK_BUSY: { status: 503, message: (n = '') => `too many validate and backtest runs at once (at most ${n}, VIGIL_WORK_CONCURRENCY); retry after the Retry-After seconds` },
  VIGIL_ERR_NOT_READY: { status: 503, message: (detail = 'not ready') => `not ready: ${detail}` },
} as const satisfies Record<string, Entry>;

export type ErrorCode = keyof typeof CATALOGUE;

/** An error answer: status, code, message, and optional details (merged into `error`). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {},
    /** Fields beside `error` in the body (e.g. a rule's `errors`). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    return { error: { code: this.code, message: this.message, ...this.details }, ...this.extra };
  }
}

/** An error from the catalogue: `apiError('VIGIL_ERR_RULE_NOT_FOUND', [id])`. */
export function apiError(code: ErrorCode, args: string[] = [], details?: Record<string, unknown>, extra?: Record<string, unknown>): ApiError {
  const entry: Entry = CATALOGUE[code];
  return new ApiError(code, entry.message(...args), entry.status, details, extra);
}

/** JSON schema of the error body (for route response schemas). */
export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      additionalProperties: true,
    },
  },
  additionalProperties: true,
} as const;

/** What a request sent and what its route takes (for a 415 raised before the route runs). */
export interface RequestMedia {
  /** The media type sent, lower case, without parameters ('' when none). */
  contentType: string;
  /** The media types the route takes. */
  accepted: string[];
  /** The same, said for the message. */
  want: string;
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
  validation?: unknown;
}

/**
 * Maps anything thrown while serving a request onto the catalogue. `bodyLimit` fills the 413
 * message. The second result is true when the error is ours to log as a server fault.
 */
export function toApiError(err: unknown, bodyLimit: number, request?: RequestMedia): { error: ApiError; fault: boolean } {
  if (err instanceof ApiError) return { error: err, fault: err.status >= 500 };
  if (err instanceof ServiceError) {
    // Work limits carry their catalogue arguments: the message is the catalogue's.
    const { args, ...details } = err.details as { args?: string[] };
    if (Array.isArray(args) && (err.code === 'VIGIL_ERR_WORK_LIMIT' || err.code === 'VIGIL_ERR_WORK_BUSY')) {
      return { error: apiError(err.code, args, details), fault: false };
    }
    return { error: new ApiError(err.code, err.message, err.status, details), fault: err.status >= 500 };
  }
  const e = err as FastifyLikeError;
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { error: apiError('VIGIL_ERR_BODY_TOO_LARGE', [String(bodyLimit)], { limit: bodyLimit }), fault: false };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      // Raised before the route runs (no parser for the type, e.g. `curl -d`'s form encoding):
      // name the type sent and the ones the route takes.
      const got = request?.contentType ?? e.message.replace(/^Unsupported Media Type:? ?/, '');
      const details = request ? { contentType: got, accepted: request.accepted } : {};
      return { error: apiError('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE', [got, request?.want ?? ''], details), fault: false };
    }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { error: apiError('VIGIL_ERR_BAD_JSON', ['the body is empty']), fault: false };
    case 'FST_ERR_VALIDATION':
      return { error: apiError('VIGIL_ERR_BAD_REQUEST', [e.message]), fault: false };
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    // Other client errors fastify raises (bad content-length, aborted body, ...).
    return { error: new ApiError('VIGIL_ERR_BAD_REQUEST', e.message, status, e.code ? { cause: e.code } : {}), fault: false };
  }
  return { error: apiError('VIGIL_ERR_INTERNAL'), fault: true };
}
