// Compiles `stream` declarations (language §3) and checks incoming events against them.
//
// compileStreams merges the declarations of all loaded files (identical duplicates are fine,
// conflicting ones are errors), reports clause-level errors with positions, and builds the
// per-stream accessors. checkEvent is on the ingest hot path: it must never throw, never use
// luxon, and never half-accept an event (it only reads; the caller applies).

import type { Expr, FieldDecl, FieldType, Program, StreamClause, StreamDecl } from '../dsl/ast.js';
import { diagnostic, type Diagnostic, type Span } from '../core/diagnostics.js';
import type { EvalScope, Json, StreamEvent } from '../core/event.js';
import { compileValue, type Evaluator } from './expressions.js';
import { getPath, isObject, parseEventTime as parseTime, type Segment } from './values.js';

export interface CompiledStream {
  name: string;
  declared: boolean;
  keyOf: Evaluator | null;
  timeOf: ((data: { [k: string]: Json }) => Json) | null;
  idOf: ((data: { [k: string]: Json }) => Json) | null;
  watermarkMs: number;
  idleMs: number | null;
  /** `max lead D`: how far event time may be ahead of the arrival wall clock; null: the service's setting. */
  maxLeadMs: number | null;
  /** `max size N`: largest event in bytes (UTF-8 JSON as sent); null: the service's setting. */
  maxEventBytes: number | null;
  validate: ((data: { [k: string]: Json }) => string | null) | null;
  sources: string[];
  decl: StreamDecl | null;
}

/** Event time of an accepted event: epoch ms number, or ISO-8601 text WITH a zone (Z or ±hh:mm); anything else → error text. */
export function parseEventTime(raw: Json): number | string {
  return parseTime(raw);
}

export function implicitStream(name: string): CompiledStream {
  return {
    name,
    declared: false,
    keyOf: null,
    timeOf: null,
    idOf: null,
    watermarkMs: 0,
    idleMs: null,
    maxLeadMs: null,
    maxEventBytes: null,
    validate: null,
    sources: [],
    decl: null,
  };
}

// ---------------------------------------------------------------- field paths

/**
 * The constant path a `time`/`id` clause names: `ts`, `meta.ts`, `$["event-time"]`,
 * `meta["x"][0]`. Null when the expression is not such a path.
 */
export function fieldPath(e: Expr): Segment[] | null {
  switch (e.kind) {
    case 'name':
      return [e.name];
    case 'event':
      return [];
    case 'member': {
      const p = fieldPath(e.object);
      return p === null ? null : [...p, e.property];
    }
    case 'index': {
      const p = fieldPath(e.object);
      const i = e.index;
      if (p === null) return null;
      if (i.kind === 'string') return [...p, i.value];
      if (i.kind === 'number' && Number.isInteger(i.value)) return [...p, i.value];
      return null;
    }
    default:
      return null;
  }
}

/** How a path reads in messages: `meta.ts`, `$["event-time"]`. */
export function pathText(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += out === '' ? `$[${JSON.stringify(seg)}]` : `[${JSON.stringify(seg)}]`;
  }
  return out === '' ? '$' : out;
}

function pathGetter(path: Segment[]): (data: { [k: string]: Json }) => Json {
  return (data) => getPath(data, path);
}

// ---------------------------------------------------------------- schema

function typeName(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

function fits(type: FieldType, v: Json): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'time':
      return typeof parseTime(v) === 'number';
    case 'object':
      return isObject(v);
    case 'list':
      return Array.isArray(v);
    case 'any':
      return true;
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The schema check. Open schema: fields not declared are allowed. A required field must be present
 * and not null; an optional one may be absent or null; a `time` field takes epoch ms or ISO text with a zone.
 */
function schemaValidator(fields: FieldDecl[]): (data: { [k: string]: Json }) => string | null {
  const list = fields.map((f) => ({ name: f.name, type: f.type, optional: f.optional, shown: pathText([f.name]) }));
  return (data) => {
    for (let i = 0; i < list.length; i++) {
      const f = list[i]!;
      const v = hasOwn.call(data, f.name) ? data[f.name] : undefined;
      if (v === undefined || v === null) {
        if (f.optional) continue;
        return v === undefined ? `missing field '${f.shown}' (${f.type})` : `field '${f.shown}' must be ${f.type}, got null`;
      }
      if (!fits(f.type, v)) {
        return f.type === 'time'
          ? `field '${f.shown}' must be a time (epoch ms or ISO-8601 with a zone), got ${typeof v === 'string' ? JSON.stringify(v.length > 60 ? v.slice(0, 60) + '…' : v) : typeName(v)}`
          : `field '${f.shown}' must be ${f.type}, got ${typeName(v)}`;
      }
    }
    return null;
  };
}

// ---------------------------------------------------------------- declarations

/** A declaration's meaning without positions or clause order: equal signatures are the same stream. */
function signature(d: StreamDecl): string {
  const strip = (v: unknown): unknown =>
    JSON.parse(JSON.stringify(v, (k, x: unknown) => (k === 'span' || k === 'propertySpan' ? undefined : x)));
  // Fixed key order, so that clause order does not change the signature.
  const out: Record<string, unknown> = { key: null, time: null, id: null, watermark: 0, idle: null, fields: null, sources: null, maxLead: null, maxSize: null };
  const sources: string[] = [];
  for (const c of d.clauses) {
    switch (c.kind) {
      case 'key':
        out.key = strip(c.expr);
        break;
      case 'time':
        out.time = strip(c.field);
        break;
      case 'id':
        out.id = strip(c.field);
        break;
      case 'watermark':
      case 'idle':
        out[c.kind] = c.duration.ms;
        break;
      case 'fields':
        out.fields = c.fields
          .map((f) => ({ name: f.name, type: f.type, optional: f.optional }))
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        break;
      case 'source':
        sources.push(c.filter.value);
        break;
      case 'maxLead':
        out.maxLead = c.duration.ms;
        break;
      case 'maxSize':
        out.maxSize = c.bytes.value;
        break;
    }
  }
  out.sources = [...new Set(sources)].sort();
  return JSON.stringify(out);
}

/** MQTT topic filter rules: `+` and `#` fill a whole level, `#` only last; no empty filter. */
function mqttFilterError(f: string): string | null {
  if (f.length === 0) return 'an MQTT topic filter cannot be empty';
  if (f.includes('\u0000')) return 'an MQTT topic filter cannot contain NUL';
  const levels = f.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return "'#' must be a whole level and the last one";
    if (l.includes('+') && l !== '+') return "'+' must be a whole level";
  }
  return null;
}

function clauseName(c: StreamClause): string {
  return c.kind === 'source' ? 'source mqtt' : c.kind === 'maxLead' ? 'max lead' : c.kind === 'maxSize' ? 'max size' : c.kind;
}

/** The largest `max size` a stream may declare (LMDB values and commits must stay workable). */
export const MAX_EVENT_BYTES_CEILING = 64 * 1024 * 1024;

function compileDecl(d: StreamDecl, file: string, diagnostics: Diagnostic[]): CompiledStream {
  const err = (code: string, message: string, span: Span): void => {
    diagnostics.push(diagnostic('error', code, message, file, span));
  };
  const s = implicitStream(d.name.name);
  s.declared = true;
  s.decl = d;
  const seen = new Map<string, StreamClause>();
  for (const c of d.clauses) {
    // `source` is repeatable; every other clause may appear once.
    if (c.kind !== 'source') {
      if (seen.has(c.kind)) {
        err('compile/duplicate-clause', `stream '${d.name.name}' has more than one '${clauseName(c)}' clause`, c.span);
        continue;
      }
      seen.set(c.kind, c);
    }
    switch (c.kind) {
      case 'key':
        s.keyOf = compileValue(c.expr, {
          file,
          diagnostics,
          stepNames: new Map(),
          place: { kind: 'event' },
        });
        break;
      case 'time':
      case 'id': {
        const path = fieldPath(c.field);
        if (path === null || path.length === 0) {
          err(
            c.kind === 'time' ? 'compile/time-field' : 'compile/id-field',
            `'${c.kind}' takes a field name, like ${c.kind === 'time' ? 'ts, meta.ts or $["event-time"]' : 'event_id or meta.id'}`,
            c.field.span,
          );
          break;
        }
        if (c.kind === 'time') s.timeOf = pathGetter(path);
        else s.idOf = pathGetter(path);
        break;
      }
      case 'watermark':
      case 'idle': {
        const dur = c.duration as { kind?: string; ms?: unknown; span?: Span };
        if (dur.kind !== 'duration' || typeof dur.ms !== 'number' || !Number.isFinite(dur.ms) || dur.ms < 0) {
          err(
            'compile/expected-duration',
            `'${c.kind}' takes a duration, like ${c.kind === 'watermark' ? '5s' : '30s'}`,
            dur.span ?? c.span,
          );
          break;
        }
        if (c.kind === 'watermark') s.watermarkMs = dur.ms;
        else s.idleMs = dur.ms;
        break;
      }
      case 'fields': {
        const names = new Set<string>();
        const kept: FieldDecl[] = [];
        for (const f of c.fields) {
          if (names.has(f.name)) {
            err('compile/duplicate-field', `field '${f.name}' is declared twice in stream '${d.name.name}'`, f.nameSpan);
            continue;
          }
          names.add(f.name);
          kept.push(f);
        }
        s.validate = schemaValidator(kept);
        break;
      }
      case 'maxLead': {
        const dur = c.duration as { kind?: string; ms?: unknown; span?: Span };
        if (dur.kind !== 'duration' || typeof dur.ms !== 'number' || !Number.isFinite(dur.ms) || dur.ms < 0) {
          err('compile/expected-duration', `'max lead' takes a duration, like 10m`, dur.span ?? c.span);
          break;
        }
        s.maxLeadMs = dur.ms;
        break;
      }
      case 'maxSize': {
        const n = c.bytes.value;
        if (!Number.isInteger(n) || n < 1 || n > MAX_EVENT_BYTES_CEILING) {
          err('compile/max-size', `'max size' takes a whole number of bytes from 1 to ${MAX_EVENT_BYTES_CEILING} (64 MiB), like 65536`, c.bytes.span);
          break;
        }
        s.maxEventBytes = n;
        break;
      }
      case 'source': {
        const why = mqttFilterError(c.filter.value);
        if (why !== null) err('compile/mqtt-filter', `invalid MQTT topic filter ${JSON.stringify(c.filter.value)}: ${why}`, c.filter.span);
        else if (!s.sources.includes(c.filter.value)) s.sources.push(c.filter.value);
        break;
      }
    }
  }
  return s;
}

export function compileStreams(programs: Program[], diagnostics: Diagnostic[]): Map<string, CompiledStream> {
  const out = new Map<string, CompiledStream>();
  const first = new Map<string, { decl: StreamDecl; file: string; sig: string }>();
  for (const p of programs) {
    for (const d of p.decls) {
      if (d.kind !== 'stream') continue;
      const name = d.name.name;
      const sig = signature(d);
      const prev = first.get(name);
      if (prev !== undefined) {
        if (prev.sig !== sig) {
          const at = prev.decl.name.span;
          diagnostics.push(
            diagnostic(
              'error',
              'compile/stream-conflict',
              `stream '${name}' is declared again with different settings (first declared at ${prev.file}:${at.line}:${at.col})`,
              p.file,
              d.name.span,
            ),
          );
        }
        // An identical copy adds nothing; its clause errors were reported with the first one.
        continue;
      }
      first.set(name, { decl: d, file: p.file, sig });
      out.set(name, compileDecl(d, p.file, diagnostics));
    }
  }
  return out;
}

// ---------------------------------------------------------------- incoming events

/**
 * Validates one incoming event for a stream without allocating: must be a JSON object; time
 * field present and parseable (when the stream has `time`); key present and not null (when the
 * stream has `key`); schema. Fills `probe` (data, time, stream) and uses it as the candidate
 * for the key, leaving `scope.candidate` pointing at `probe`. Returns the event time (the
 * arrival time when the stream has no `time`), or the rejection reason.
 */
export function checkEventInto(
  stream: CompiledStream,
  data: unknown,
  arrivalTime: number,
  scope: EvalScope,
  probe: StreamEvent,
): number | string {
  if (!isObject(data)) return `an event must be a JSON object, got ${data === undefined ? 'nothing' : typeName(data as Json)}`;
  const obj = data as { [k: string]: Json };
  let time = arrivalTime;
  if (stream.timeOf !== null) {
    const raw = stream.timeOf(obj);
    // The field's name is worked out only for a rejection, off the hot path.
    if (raw === null) return `missing time field '${timeFieldText(stream)}'`;
    const t = parseTime(raw);
    if (typeof t === 'string') return `bad time field '${timeFieldText(stream)}': ${t}`;
    time = t;
  }
  probe.data = obj;
  probe.time = time;
  probe.stream = stream.name;
  if (stream.keyOf !== null) {
    scope.candidate = probe;
    scope.bound = null;
    scope.time = time;
    const k = stream.keyOf(scope);
    if (k === null || k === undefined) return `missing key '${keyText(stream)}'`;
  }
  if (stream.validate !== null) {
    const why = stream.validate(obj);
    if (why !== null) return why;
  }
  return time;
}

/** How deep objects and lists may nest in an event (stored state must stay encodable). */
export const MAX_EVENT_DEPTH = 64;

/** Does `v` nest objects or lists more than `left` levels below it? (Checked by the engine for events it stores.) */
export function nestedDeeperThan(v: { [k: string]: Json } | Json[], left: number): boolean {
  if (left === 0) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x !== null && typeof x === 'object' && nestedDeeperThan(x, left - 1)) return true;
    }
    return false;
  }
  for (const k in v) {
    const x = v[k];
    if (x !== null && typeof x === 'object' && nestedDeeperThan(x as { [k: string]: Json } | Json[], left - 1)) return true;
  }
  return false;
}

/** `checkEventInto` with a result object and the scope left as it was, for callers off the hot path. */
export function checkEvent(
  stream: CompiledStream,
  data: unknown,
  arrivalTime: number,
  scope: EvalScope,
): { ok: true; time: number } | { ok: false; error: string } {
  const saved = { ...scope };
  const probe: StreamEvent = { data: {}, time: 0, seq: -1, stream: stream.name, topic: undefined };
  const r = checkEventInto(stream, data, arrivalTime, scope, probe);
  Object.assign(scope, saved);
  return typeof r === 'number' ? { ok: true, time: r } : { ok: false, error: r };
}

function timeFieldText(stream: CompiledStream): string {
  const c = stream.decl?.clauses.find((x) => x.kind === 'time');
  const p = c !== undefined && c.kind === 'time' ? fieldPath(c.field) : null;
  return p === null ? 'time' : pathText(p);
}

function keyText(stream: CompiledStream): string {
  const c = stream.decl?.clauses.find((x) => x.kind === 'key');
  const p = c !== undefined && c.kind === 'key' ? fieldPath(c.expr) : null;
  return p === null ? 'key' : pathText(p);
}
