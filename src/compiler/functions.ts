// The function table of the expression language (language §7): names, arities, and the
// implementations of the pure scalar functions.
//
// Functions that read the scope or the bound events (count, first, last, sum, avg, one-argument
// min/max, time, stream, topic, key) are marked `special` and compiled by expressions.ts; the
// rest are total functions of JSON values, safe to constant-fold. Nothing here may throw, read the
// environment or the clock, or depend on the host's time zone: zone-aware functions default to UTC.

import { DateTime, Info, type Zone } from 'luxon';
import type { Json } from '../core/event.js';
import { parseEventTime } from './values.js';

export type Special =
  | 'count'
  | 'first'
  | 'last'
  | 'aggregate' // sum avg, and min/max with one argument
  | 'time'
  | 'stream'
  | 'topic'
  | 'key'
  | 'coalesce'
  | 'env';

export interface FunctionSpec {
  name: string;
  minArgs: number;
  maxArgs: number;
  /** The arity as the `compile/arity` message says it. */
  arityText: string;
  /** Pure implementation over evaluated arguments (missing optional arguments are filled by `defaults`). */
  impl?: (a: Json, b: Json, c: Json) => Json;
  /** Constants appended for omitted trailing optional arguments (the time zone: "UTC"). */
  defaults?: Json[];
  special?: Special;
}

// ---------------------------------------------------------------- numbers and strings

function abs(a: Json): Json {
  return typeof a === 'number' ? Math.abs(a) : null;
}
/** Half away from zero (2.5 → 3, -2.5 → -3), what people expect; Math.round rounds -2.5 to -2. */
function round(a: Json): Json {
  if (typeof a !== 'number') return null;
  const r = a < 0 ? -Math.round(-a) : Math.round(a);
  return r === 0 ? 0 : r;
}
function floor(a: Json): Json {
  return typeof a === 'number' ? Math.floor(a) : null;
}
function ceil(a: Json): Json {
  if (typeof a !== 'number') return null;
  const r = Math.ceil(a);
  return r === 0 ? 0 : r;
}
/** Length in code points for strings (an emoji is 1), elements for lists, keys for objects. */
function len(a: Json): Json {
  if (typeof a === 'string') {
    let n = 0;
    for (let i = 0; i < a.length; i++) {
      const c = a.charCodeAt(i);
      // A high surrogate followed by a low one is one code point.
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < a.length) {
        const d = a.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) i++;
      }
      n++;
    }
    return n;
  }
  if (Array.isArray(a)) return a.length;
  if (typeof a === 'object' && a !== null) return Object.keys(a).length;
  return null;
}
function lower(a: Json): Json {
  return typeof a === 'string' ? a.toLowerCase() : null;
}
function upper(a: Json): Json {
  return typeof a === 'string' ? a.toUpperCase() : null;
}
function exists(a: Json): Json {
  return a !== null && a !== undefined;
}
/** Two-argument min/max: two numbers or two strings; anything else is null. */
function min2(a: Json, b: Json): Json {
  if (typeof a === 'number' && typeof b === 'number') return a <= b ? a : b;
  if (typeof a === 'string' && typeof b === 'string') return a <= b ? a : b;
  return null;
}
function max2(a: Json, b: Json): Json {
  if (typeof a === 'number' && typeof b === 'number') return a >= b ? a : b;
  if (typeof a === 'string' && typeof b === 'string') return a >= b ? a : b;
  return null;
}

// ---------------------------------------------------------------- time zones

const MS_MINUTE = 60_000;
const MS_HOUR = 3_600_000;
const MS_DAY = 86_400_000;
/** Offsets are cached per 15-minute bucket of UTC time; tz transitions are never closer than that. */
const BUCKET_MS = 15 * MS_MINUTE;
const MAX_BUCKETS = 4096;
const MAX_ZONES = 256;

interface ZoneInfo {
  zone: Zone;
  /** Offset (minutes) by 15-minute bucket; only buckets with one offset throughout are stored. */
  offsets: Map<number, number>;
}

const zones = new Map<string, ZoneInfo | null>();

/** The zone named `name` (IANA name, "UTC", "UTC+2" ...), or null. Host-dependent zones ("local", "system") are refused. */
export function zoneFor(name: Json): ZoneInfo | null {
  if (typeof name !== 'string' || name.length === 0 || name.length > 64) return null;
  const cached = zones.get(name);
  if (cached !== undefined) return cached;
  const lower = name.toLowerCase();
  let info: ZoneInfo | null = null;
  if (lower !== 'local' && lower !== 'system' && lower !== 'default') {
    const zone = Info.normalizeZone(name);
    if (zone.isValid && zone.type !== 'system') info = { zone, offsets: new Map() };
  }
  if (zones.size >= MAX_ZONES) zones.clear();
  zones.set(name, info);
  return info;
}

/** UTC offset of `z` at `t`, in minutes. */
function offsetMinutes(z: ZoneInfo, t: number): number {
  if (z.zone.isUniversal) return z.zone.offset(t);
  const bucket = Math.floor(t / BUCKET_MS);
  const hit = z.offsets.get(bucket);
  if (hit !== undefined) return hit;
  const start = bucket * BUCKET_MS;
  const a = z.zone.offset(start);
  const b = z.zone.offset(start + BUCKET_MS - 1);
  if (a === b) {
    if (z.offsets.size >= MAX_BUCKETS) z.offsets.clear();
    z.offsets.set(bucket, a);
    return a;
  }
  return z.zone.offset(t);
}

/** Epoch ms from a time value: a number, or ISO-8601 text with a zone; else null. */
function toMillis(t: Json): number | null {
  if (typeof t === 'number') return Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? t : null;
  if (typeof t === 'string') {
    const ms = parseEventTime(t);
    return typeof ms === 'number' ? ms : null;
  }
  return null;
}

/** Local wall-clock ms (epoch-based) of `t` in `zone`, or null for a bad time or zone. */
function localMillis(t: Json, zone: Json): number | null {
  const ms = toMillis(t);
  if (ms === null) return null;
  const z = zoneFor(zone);
  if (z === null) return null;
  const off = offsetMinutes(z, ms);
  return Number.isFinite(off) ? ms + off * MS_MINUTE : null;
}

function posMod(a: number, m: number): number {
  const r = a % m;
  return r < 0 ? r + m : r;
}

function hour(t: Json, zone: Json): Json {
  const l = localMillis(t, zone);
  return l === null ? null : Math.floor(posMod(l, MS_DAY) / MS_HOUR);
}
function minute(t: Json, zone: Json): Json {
  const l = localMillis(t, zone);
  return l === null ? null : Math.floor(posMod(l, MS_HOUR) / MS_MINUTE);
}
/** ISO weekday: 1 = Monday … 7 = Sunday (1970-01-01 was a Thursday). */
function weekday(t: Json, zone: Json): Json {
  const l = localMillis(t, zone);
  return l === null ? null : posMod(Math.floor(l / MS_DAY) + 3, 7) + 1;
}
/** "yyyy-LL-dd" of the local date (civil-from-days, H. Hinnant). */
function date(t: Json, zone: Json): Json {
  const l = localMillis(t, zone);
  if (l === null) return null;
  const z = Math.floor(l / MS_DAY) + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const yy = y < 0 ? '-' + String(-y).padStart(6, '0') : y > 9999 ? '+' + String(y).padStart(6, '0') : String(y).padStart(4, '0');
  return `${yy}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}
/** luxon `toFormat` tokens (e.g. "yyyy-LL-dd HH:mm"); a bad time, pattern or zone gives null. */
function format(t: Json, pattern: Json, zone: Json): Json {
  if (typeof pattern !== 'string' || pattern.length > 1000) return null;
  const ms = toMillis(t);
  const z = zoneFor(zone);
  if (ms === null || z === null) return null;
  const dt = DateTime.fromMillis(ms, { zone: z.zone });
  if (!dt.isValid) return null;
  return dt.toFormat(pattern);
}

// ---------------------------------------------------------------- the table

function spec(
  name: string,
  minArgs: number,
  maxArgs: number,
  rest: Partial<FunctionSpec> = {},
): FunctionSpec {
  const arityText =
    maxArgs === Infinity
      ? `at least ${minArgs} argument${minArgs === 1 ? '' : 's'}`
      : minArgs === maxArgs
        ? `${minArgs} argument${minArgs === 1 ? '' : 's'}`
        : maxArgs === minArgs + 1
          ? `${minArgs} or ${maxArgs} arguments`
          : `${minArgs} to ${maxArgs} arguments`;
  return { name, minArgs, maxArgs, arityText, ...rest };
}

const UTC: Json[] = ['UTC'];

export const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = new Map(
  [
    spec('abs', 1, 1, { impl: abs }),
    spec('round', 1, 1, { impl: round }),
    spec('floor', 1, 1, { impl: floor }),
    spec('ceil', 1, 1, { impl: ceil }),
    spec('len', 1, 1, { impl: len }),
    spec('lower', 1, 1, { impl: lower }),
    spec('upper', 1, 1, { impl: upper }),
    spec('exists', 1, 1, { impl: exists }),
    spec('coalesce', 1, Infinity, { special: 'coalesce' }),
    // min/max: two arguments are scalar (impl); one argument is an aggregate (special).
    spec('min', 1, 2, { impl: min2, special: 'aggregate' }),
    spec('max', 1, 2, { impl: max2, special: 'aggregate' }),
    spec('sum', 1, 1, { special: 'aggregate' }),
    spec('avg', 1, 1, { special: 'aggregate' }),
    spec('count', 1, 1, { special: 'count' }),
    spec('first', 1, 1, { special: 'first' }),
    spec('last', 1, 1, { special: 'last' }),
    spec('time', 0, 1, { special: 'time' }),
    spec('stream', 0, 0, { special: 'stream' }),
    spec('topic', 0, 1, { special: 'topic' }),
    spec('key', 0, 0, { special: 'key' }),
    spec('hour', 1, 2, { impl: hour, defaults: UTC }),
    spec('minute', 1, 2, { impl: minute, defaults: UTC }),
    spec('weekday', 1, 2, { impl: weekday, defaults: UTC }),
    spec('date', 1, 2, { impl: date, defaults: UTC }),
    spec('format', 2, 3, { impl: format, defaults: UTC }),
    spec('env', 1, 1, { special: 'env' }),
  ].map((s) => [s.name, s] as const),
);

/** Exposed for tests and for other modules that render times the same way. */
export const timeFunctions = { hour, minute, weekday, date, format };
