// Request bodies the API parses itself: a JSON object or array, or NDJSON. Malformed JSON is
// answered with its line and column, which V8's SyntaxError does not always give (and its
// message echoes the body, which must not reach a log or another client): on a parse failure
// `locateJsonError` scans the text once more with a small JSON syntax checker to find the
// first bad character and say what was expected there.

import { apiError, ApiError } from './errors.js';

export interface JsonErrorLocation {
  /** 0-based offset in the text. */
  offset: number;
  line: number;
  column: number;
  message: string;
}

/** Media types of an ingest body. */
export const JSON_TYPE = 'application/json';
export const NDJSON_TYPE = 'application/x-ndjson';

/** The media type of a request, lower case, without parameters ('' when absent). */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Parses JSON text; throws the catalogue's VIGIL_ERR_BAD_JSON with line and column. */
export function parseJson(text: string, lineBase = 0): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch {
    const loc = locateJsonError(body) ?? { offset: 0, line: 1, column: 1, message: 'not valid JSON' };
    throw badJson(loc.message, lineBase + loc.line, loc.column);
  }
}

function badJson(message: string, line: number, column: number): ApiError {
  return apiError('VIGIL_ERR_BAD_JSON', [`${message} at line ${line}, column ${column}`], { line, column });
}

export interface ParsedEvents {
  events: unknown[];
  /** For NDJSON: the 1-based line of each event (blank lines are skipped). */
  lines: number[] | null;
  /** How the body held them: NDJSON lines, a JSON array, or one JSON object. */
  kind: 'lines' | 'array' | 'object';
}

/** An ingest body: a JSON object or array, or NDJSON (one value per line, blank lines skipped). */
export function parseEvents(text: string, type: string): ParsedEvents {
  if (type === NDJSON_TYPE) {
    const events: unknown[] = [];
    const lines: number[] = [];
    const all = text.split('\n');
    for (let i = 0; i < all.length; i++) {
      const line = all[i]!;
      if (line.trim() === '') continue;
      events.push(parseJson(line.endsWith('\r') ? line.slice(0, -1) : line, i));
      lines.push(i + 1);
    }
    return { events, lines, kind: 'lines' };
  }
  if (text.trim() === '') throw badJson('the body is empty; send a JSON object or an array of them', 1, 1);
  const value = parseJson(text);
  if (Array.isArray(value)) return { events: value, lines: null, kind: 'array' };
  if (value !== null && typeof value === 'object') return { events: [value], lines: null, kind: 'object' };
  throw apiError('VIGIL_ERR_BAD_REQUEST', ['the body must be a JSON object (one event) or an array of events; for one event per line use Content-Type: application/x-ndjson']);
}

/** Line (1-based) and column (1-based, UTF-16 units) of an offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

function describe(text: string, i: number): string {
  if (i >= text.length) return 'end of input';
  const c = text.codePointAt(i)!;
  return c < 0x20 || c === 0x7f ? `character U+${c.toString(16).padStart(4, '0')}` : `'${String.fromCodePoint(c)}'`;
}

/**
 * The first syntax error of `text` as JSON (RFC 8259), or null when it is valid. Iterative, so
 * deep nesting cannot overflow the stack.
 */
export function locateJsonError(text: string): JsonErrorLocation | null {
  const n = text.length;
  const stack: number[] = []; // 0x7b '{' or 0x5b '['
  let i = 0;
  const fail = (at: number, message: string): JsonErrorLocation => ({ offset: at, ...lineColumn(text, at), message });
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  /** Scans a string at i (which is '"'); returns an error or null. */
  const string = (): JsonErrorLocation | null => {
    const start = i;
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return null;
      }
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === undefined) break;
        if (e === 'u') {
          if (!HEX4.test(text.slice(i + 2, i + 6))) return fail(i, 'bad \\u escape in string (want 4 hex digits)');
          i += 6;
        } else if ('"\\/bfnrt'.includes(e)) i += 2;
        else return fail(i, `bad escape '\\${e}' in string`);
        continue;
      }
      if (c < 0x20) return fail(i, `unescaped control character U+${c.toString(16).padStart(4, '0')} in string`);
      i++;
    }
    return fail(start, 'unterminated string');
  };

  type State = 'value' | 'key' | 'after';
  let state: State = 'value';
  for (;;) {
    ws();
    if (state === 'value') {
      if (i >= n) return fail(i, 'unexpected end of input: expected a value');
      const c = text[i]!;
      if (c === '{' || c === '[') {
        stack.push(c.charCodeAt(0));
        i++;
        ws();
        if (text[i] === (c === '{' ? '}' : ']')) {
          stack.pop();
          i++;
          state = 'after';
        } else state = c === '{' ? 'key' : 'value';
        continue;
      }
      if (c === '"') {
        const err = string();
        if (err) return err;
        state = 'after';
        continue;
      }
      if (c === '-' || (c >= '0' && c <= '9')) {
        NUMBER.lastIndex = i;
        const m = NUMBER.exec(text);
        if (m === null) return fail(i, 'bad number');
        i += m[0].length;
        state = 'after';
        continue;
      }
      const literal = ['true', 'false', 'null'].find((w) => text.startsWith(w, i));
      if (literal !== undefined) {
        i += literal.length;
        state = 'after';
        continue;
      }
      return fail(i, `unexpected ${describe(text, i)}: expected a value`);
    }
    if (state === 'key') {
      if (text[i] !== '"') return fail(i, `unexpected ${describe(text, i)}: expected a property name in double quotes`);
      const err = string();
      if (err) return err;
      ws();
      if (text[i] !== ':') return fail(i, `unexpected ${describe(text, i)}: expected ':' after the property name`);
      i++;
      state = 'value';
      continue;
    }
    // after a value
    if (stack.length === 0) return i < n ? fail(i, `unexpected ${describe(text, i)} after the JSON value`) : null;
    const top = stack[stack.length - 1]!;
    const close = top === 0x7b ? '}' : ']';
    if (text[i] === ',') {
      i++;
      state = top === 0x7b ? 'key' : 'value';
    } else if (text[i] === close) {
      stack.pop();
      i++;
    } else return fail(i, `unexpected ${describe(text, i)}: expected ',' or '${close}'`);
  }
}
