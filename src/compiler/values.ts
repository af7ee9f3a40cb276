// Total operations on JSON values for the expression compiler (language §7, decisions 1–4).
//
// Every function here is total: whatever JSON the event holds (or whatever a buggy caller passes),
// it returns a value and never throws, recurses without bound, or reads inherited properties
// (`constructor`, `__proto__`, ...) that are not part of the event. Comparisons involving null or
// mixed types are false; arithmetic outside numbers (and string `+`) is null.

import type { Json } from '../core/event.js';

export type JsonObject = { [key: string]: Json };

const hasOwn = Object.prototype.hasOwnProperty;

/** True for names an ordinary object inherits from Object.prototype: those need an own-property check. */
export function isInheritedName(name: string): boolean {
  return name in Object.prototype;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Field `name` of `v` when `v` is an object that has it as its own property; otherwise null. */
export function getField(v: Json, name: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  if (!hasOwn.call(v, name)) return null;
  const r = v[name];
  return r === undefined ? null : r;
}

/** Element `i` of a list (negative counts from the end), field `i` of an object for a string; else null. */
export function getIndex(v: Json, i: Json): Json {
  if (typeof i === 'string') return getField(v, i);
  if (typeof i !== 'number' || !Array.isArray(v) || !Number.isInteger(i)) return null;
  const k = i < 0 ? v.length + i : i;
  if (k < 0 || k >= v.length) return null;
  const r = v[k];
  return r === undefined ? null : r;
}

/** A constant access path: a string segment is an object field, a number a list index. */
export type Segment = string | number;

export function getPath(v: Json, path: readonly Segment[]): Json {
  let cur: Json = v;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    cur = typeof seg === 'string' ? getField(cur, seg) : getIndex(cur, seg);
    if (cur === null) return null;
  }
  return cur;
}

// ---------------------------------------------------------------- equality and order

/**
 * Structural equality of two JSON values. Iterative (an explicit stack), so a deeply nested event
 * cannot overflow the call stack. Nested nulls compare equal structurally (`[null] == [null]`);
 * the "null is never equal" rule applies only at the top (see `eq`).
 */
export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const stack: Json[] = [a, b];
  while (stack.length > 0) {
    const y = stack.pop()!;
    const x = stack.pop()!;
    if (x === y) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
    const xa = Array.isArray(x);
    if (xa !== Array.isArray(y)) return false;
    if (xa) {
      const ya = y as Json[];
      if (x.length !== ya.length) return false;
      for (let i = 0; i < x.length; i++) {
        const xi = x[i]!;
        const yi = ya[i]!;
        if (xi === yi) continue;
        if (typeof xi !== 'object' || typeof yi !== 'object') return false;
        stack.push(xi, yi);
      }
    } else {
      const xo = x as JsonObject;
      const yo = y as JsonObject;
      const keys = Object.keys(xo);
      if (keys.length !== Object.keys(yo).length) return false;
      for (const k of keys) {
        if (!hasOwn.call(yo, k)) return false;
        const xi = xo[k]!;
        const yi = yo[k]!;
        if (xi === yi) continue;
        if (typeof xi !== 'object' || typeof yi !== 'object') return false;
        stack.push(xi, yi);
      }
    }
  }
  return true;
}

/** `==`: false when either side is null or the types differ; deep on lists and objects. */
export function eq(a: Json, b: Json): boolean {
  if (a === null || b === null) return false;
  if (typeof a !== 'object') return a === b;
  return deepEqual(a, b);
}

/** `!=`: false when either side is null or the types differ (list vs object differ too). */
export function ne(a: Json, b: Json): boolean {
  if (a === null || b === null) return false;
  const ta = typeof a;
  if (ta !== typeof b) return false;
  if (ta !== 'object') return a !== b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  return !deepEqual(a, b);
}

// Order: numbers with numbers, strings with strings (UTF-16 code unit order); anything else is false.
export function lt(a: Json, b: Json): boolean {
  return (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string')
    ? a < b
    : false;
}
export function le(a: Json, b: Json): boolean {
  return (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string')
    ? a <= b
    : false;
}
export function gt(a: Json, b: Json): boolean {
  return (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string')
    ? a > b
    : false;
}
export function ge(a: Json, b: Json): boolean {
  return (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string')
    ? a >= b
    : false;
}

// ---------------------------------------------------------------- membership and strings

/** `x in c`: list membership by `eq` (so null is never a member), or substring of two strings. */
export function isIn(x: Json, c: Json): boolean {
  if (Array.isArray(c)) {
    if (x === null) return false;
    if (typeof x !== 'object') {
      for (let i = 0; i < c.length; i++) if (c[i] === x) return true;
      return false;
    }
    for (let i = 0; i < c.length; i++) if (eq(x, c[i]!)) return true;
    return false;
  }
  if (typeof c === 'string' && typeof x === 'string') return c.includes(x);
  return false;
}

/**
 * `x not in c`: like every comparison, false when `x` is null or of another type (language §7):
 * `x != e` for every element of the list (so a list holding null or values of another type
 * than `x` gives false, as in SQL), or, with two strings, `x` is not a substring of `c`.
 */
export function isNotIn(x: Json, c: Json): boolean {
  if (x === null) return false;
  if (Array.isArray(c)) {
    for (let i = 0; i < c.length; i++) if (!ne(x, c[i]!)) return false;
    return true;
  }
  if (typeof c === 'string' && typeof x === 'string') return !c.includes(x);
  return false;
}

export function startsWith(a: Json, b: Json): boolean {
  return typeof a === 'string' && typeof b === 'string' && a.startsWith(b);
}
export function endsWith(a: Json, b: Json): boolean {
  return typeof a === 'string' && typeof b === 'string' && a.endsWith(b);
}

// ---------------------------------------------------------------- arithmetic

/** Keeps results JSON: an overflow to ±Infinity (or NaN) becomes null. */
function num(n: number): Json {
  return Number.isFinite(n) ? n : null;
}

export function add(a: Json, b: Json): Json {
  if (typeof a === 'number' && typeof b === 'number') return num(a + b);
  if (typeof a === 'string' && typeof b === 'string') return a + b;
  return null;
}
export function sub(a: Json, b: Json): Json {
  return typeof a === 'number' && typeof b === 'number' ? num(a - b) : null;
}
export function mul(a: Json, b: Json): Json {
  return typeof a === 'number' && typeof b === 'number' ? num(a * b) : null;
}
export function div(a: Json, b: Json): Json {
  return typeof a === 'number' && typeof b === 'number' && b !== 0 ? num(a / b) : null;
}
/** JavaScript remainder: the result has the sign of the dividend. */
export function mod(a: Json, b: Json): Json {
  return typeof a === 'number' && typeof b === 'number' && b !== 0 ? num(a % b) : null;
}
export function neg(a: Json): Json {
  return typeof a === 'number' ? (a === 0 ? 0 : -a) : null;
}

// ---------------------------------------------------------------- rendering

/**
 * How a value appears in a template: strings as-is, null as "", numbers and booleans via
 * String(), lists and objects as JSON. JSON.stringify may throw on pathological nesting; the
 * template renderer catches around a whole render for that.
 */
export function renderValue(v: Json): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

// ---------------------------------------------------------------- event time

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
// Dates outside ±8.64e15 ms are not representable by Date.
const MAX_TIME_MS = 8.64e15;

function digits(s: string, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Event time from a raw JSON value: a finite epoch-ms number, or ISO-8601 text with a zone
 * (`YYYY-MM-DDTHH:MM[:SS[.fraction]]` then `Z` or `±hh:mm`). Returns ms, or the error text.
 * Hot path: a hand-written shape check (Date.parse alone accepts zone-less text, `Feb 30` and
 * other forms), then Date.parse. Never luxon.
 */
export function parseEventTime(raw: Json): number | string {
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw) || raw > MAX_TIME_MS || raw < -MAX_TIME_MS) return `time ${raw} is out of range`;
    return raw;
  }
  if (typeof raw !== 'string') {
    if (raw === null || raw === undefined) return 'time is missing';
    return `time must be epoch milliseconds or ISO-8601 text, got ${Array.isArray(raw) ? 'a list' : typeof raw}`;
  }
  const s = raw;
  const bad = (): string =>
    `time ${JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s)} is not ISO-8601 with a zone (e.g. 2026-11-20T10:00:07Z or +01:00)`;
  const n = s.length;
  if (n < 17 || n > 40) return bad();
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const t = s.charCodeAt(10);
  if (year < 0 || s[4] !== '-' || month < 1 || month > 12 || s[7] !== '-' || day < 1) return bad();
  if (t !== 84 /* T */ && t !== 116 /* t */) return bad();
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!)) return bad();
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  if (hour < 0 || hour > 23 || s[13] !== ':' || minute < 0 || minute > 59) return bad();
  let i = 16;
  if (s[i] === ':') {
    const sec = digits(s, i + 1, 2);
    if (sec < 0 || sec > 59) return bad();
    i += 3;
    if (s[i] === '.' || s[i] === ',') {
      const start = ++i;
      while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
      if (i === start || i - start > 9) return bad();
    }
  }
  const z = s[i];
  if (z === 'Z' || z === 'z') {
    if (i + 1 !== n) return bad();
  } else if (z === '+' || z === '-') {
    const oh = digits(s, i + 1, 2);
    const om = digits(s, i + 4, 2);
    if (i + 6 !== n || s[i + 3] !== ':' || oh < 0 || oh > 23 || om < 0 || om > 59) return bad();
  } else if (i === n) {
    return `time ${JSON.stringify(s)} has no zone (add Z or ±hh:mm)`;
  } else {
    return bad();
  }
  // Date.parse does not accept a comma before the fraction.
  const ms = Date.parse(s.includes(',') ? s.replace(',', '.') : s);
  if (!Number.isFinite(ms)) return bad();
  return ms;
}
