// Test helpers for the compiler: a tiny expression parser that builds the AST of src/dsl/ast.ts
// with real spans (single-line sources), events, bound-event chains and scopes.
//
// The real parser (src/dsl/parser.ts) is written elsewhere; this one only needs to follow
// language §7 closely enough to make the compiler tests readable. It throws on bad input (tests only).

import type { Span } from '../../src/core/diagnostics.js';
import type { BoundNode, EvalScope, Json, StreamEvent } from '../../src/core/event.js';
import type { BinaryOp, Expr, Template } from '../../src/dsl/ast.js';
import {
  compileCondition,
  compileTemplate,
  compileValue,
  type ExprContext,
  type ExprPlace,
} from '../../src/compiler/expressions.js';
import type { Diagnostic } from '../../src/core/diagnostics.js';

export function span(offset: number, endOffset: number, line = 1, col = offset + 1): Span {
  return { offset, endOffset, line, col };
}

type Tok = { t: string; v: string; s: number; e: number };

const TOKEN =
  /\s+|(\d+(?:\.\d+)?(?:ms|s|m|h|d)(?![A-Za-z0-9_]))|(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|[<>+\-*/%(){}\[\],.$])/y;

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    // A regex literal right after `matches`.
    const prev = out[out.length - 1];
    if (prev?.t === 'id' && prev.v === 'matches' && src[i] === '/') {
      const m = /\/((?:[^/\\]|\\.)*)\/([A-Za-z]*)/y;
      m.lastIndex = i;
      const r = m.exec(src)!;
      out.push({ t: 're', v: r[0], s: i, e: i + r[0].length });
      i += r[0].length;
      continue;
    }
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(src);
    if (m === null) throw new Error(`lex error at ${i} in ${src}`);
    const t = m[1] ? 'dur' : m[2] ? 'num' : m[3] ? 'str' : m[4] ? 'id' : m[5] ? 'op' : 'ws';
    if (t !== 'ws') out.push({ t, v: m[0], s: i, e: i + m[0].length });
    i += m[0].length;
  }
  return out;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses one expression (language §7 precedence). `base` shifts offsets (for template holes). */
export function parseExpr(src: string, base = 0): Expr {
  const toks = lex(src);
  let p = 0;
  const sp = (s: number, e: number) => span(base + s, base + e);
  const peek = (v?: string) => (p < toks.length && (v === undefined || toks[p]!.v === v) ? toks[p] : undefined);
  const take = (v: string) => {
    if (peek(v) === undefined) throw new Error(`expected ${v} at ${toks[p]?.s} in ${src}`);
    return toks[p++]!;
  };
  const bin = (op: BinaryOp, l: Expr, r: Expr): Expr => ({
    kind: 'binary',
    op,
    left: l,
    right: r,
    span: span(l.span.offset, r.span.endOffset, 1, l.span.col),
  });
  const or = (): Expr => {
    let l = and();
    while (peek('or')) {
      p++;
      l = bin('or', l, and());
    }
    return l;
  };
  const and = (): Expr => {
    let l = not();
    while (peek('and')) {
      p++;
      l = bin('and', l, not());
    }
    return l;
  };
  const not = (): Expr => {
    const t = peek('not');
    if (t) {
      p++;
      const o = not();
      return { kind: 'unary', op: 'not', operand: o, span: sp(t.s, o.span.endOffset - base) };
    }
    return cmp();
  };
  const cmp = (): Expr => {
    const l = additive();
    const t = peek();
    if (!t) return l;
    if (['==', '!=', '<', '<=', '>', '>=', 'in', 'contains', 'startswith', 'endswith'].includes(t.v)) {
      p++;
      return bin(t.v as BinaryOp, l, additive());
    }
    if (t.v === 'not' && toks[p + 1]?.v === 'in') {
      p += 2;
      return bin('not in', l, additive());
    }
    if (t.v === 'matches') {
      p++;
      const r = toks[p++]!;
      const m = /^\/((?:[^/\\]|\\.)*)\/([A-Za-z]*)$/.exec(r.v)!;
      return {
        kind: 'matches',
        subject: l,
        regex: { source: m[1]!, flags: m[2]!, span: sp(r.s, r.e) },
        span: span(l.span.offset, base + r.e, 1, l.span.col),
      };
    }
    return l;
  };
  const additive = (): Expr => {
    let l = mult();
    while (peek('+') || peek('-')) l = bin(toks[p++]!.v as BinaryOp, l, mult());
    return l;
  };
  const mult = (): Expr => {
    let l = unary();
    while (peek('*') || peek('/') || peek('%')) l = bin(toks[p++]!.v as BinaryOp, l, unary());
    return l;
  };
  const unary = (): Expr => {
    const t = peek('-');
    if (t) {
      p++;
      const o = unary();
      return { kind: 'unary', op: '-', operand: o, span: sp(t.s, o.span.endOffset - base) };
    }
    return postfix();
  };
  const postfix = (): Expr => {
    let e = primary();
    for (;;) {
      if (peek('.')) {
        p++;
        const id = toks[p++]!;
        e = {
          kind: 'member',
          object: e,
          property: id.v,
          propertySpan: sp(id.s, id.e),
          span: span(e.span.offset, base + id.e, 1, e.span.col),
        };
      } else if (peek('[')) {
        p++;
        const i = or();
        const close = take(']');
        e = { kind: 'index', object: e, index: i, span: span(e.span.offset, base + close.e, 1, e.span.col) };
      } else if (peek('(') && e.kind === 'name') {
        p++;
        const args: Expr[] = [];
        while (!peek(')')) {
          args.push(or());
          if (peek(',')) p++;
        }
        const close = take(')');
        e = {
          kind: 'call',
          callee: { name: e.name, span: e.span },
          args,
          span: span(e.span.offset, base + close.e, 1, e.span.col),
        };
      } else return e;
    }
  };
  const primary = (): Expr => {
    const t = toks[p++];
    if (!t) throw new Error(`unexpected end in ${src}`);
    const s = sp(t.s, t.e);
    if (t.t === 'num') return { kind: 'number', value: Number(t.v), span: s };
    if (t.t === 'dur') {
      const m = /^([\d.]+)(ms|s|m|h|d)$/.exec(t.v)!;
      return { kind: 'duration', ms: Number(m[1]) * UNITS[m[2]!]!, text: t.v, span: s };
    }
    if (t.t === 'str') return { kind: 'string', value: JSON.parse(t.v) as string, span: s };
    if (t.v === '$') return { kind: 'event', span: s };
    if (t.v === 'true' || t.v === 'false') return { kind: 'bool', value: t.v === 'true', span: s };
    if (t.v === 'null') return { kind: 'null', span: s };
    if (t.v === '(') {
      const e = or();
      take(')');
      return e;
    }
    if (t.v === '[') {
      const items: Expr[] = [];
      while (!peek(']')) {
        items.push(or());
        if (peek(',')) p++;
      }
      const close = take(']');
      return { kind: 'list', items, span: sp(t.s, close.e) };
    }
    if (t.t === 'id') return { kind: 'name', name: t.v, span: s };
    throw new Error(`unexpected ${t.v} at ${t.s} in ${src}`);
  };
  const e = or();
  if (p !== toks.length) throw new Error(`trailing input at ${toks[p]!.s} in ${src}`);
  return e;
}

/** A template from its text (without the surrounding quotes): `{expr}` holes, `{{`/`}}` literal braces. */
export function parseTemplate(src: string): Template {
  const parts: (string | Expr)[] = [];
  let lit = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if ((c === '{' || c === '}') && src[i + 1] === c) {
      lit += c;
      i += 2;
    } else if (c === '{') {
      const end = src.indexOf('}', i);
      if (lit !== '') parts.push(lit);
      lit = '';
      parts.push(parseExpr(src.slice(i + 1, end), i + 1));
      i = end + 1;
    } else {
      lit += c;
      i++;
    }
  }
  if (lit !== '') parts.push(lit);
  return { kind: 'template', parts, span: span(0, src.length) };
}

// ---------------------------------------------------------------- events and scopes

let seq = 0;
export function event(
  data: { [k: string]: Json },
  time = 1_000,
  opts: { stream?: string; topic?: string } = {},
): StreamEvent {
  return { data, time, seq: seq++, stream: opts.stream ?? 'tx', topic: opts.topic };
}

/** A bound chain from oldest to newest: `chain(ids, ['small', {...}], ['big', {...}, time])`. */
export function chain(
  ids: ReadonlyMap<string, number>,
  ...items: [string, { [k: string]: Json }, number?][]
): BoundNode | null {
  let prev: BoundNode | null = null;
  let t = 1_000;
  for (const [name, data, time] of items) {
    const id = ids.get(name);
    if (id === undefined) throw new Error(`no step ${name}`);
    t = time ?? t + 1_000;
    prev = { nameId: id, event: event(data, t), prev, length: (prev === null ? 0 : (prev as BoundNode).length) + 1 };
  }
  return prev;
}

export function scope(candidate: StreamEvent | null, bound: BoundNode | null = null, key: Json = null, time?: number): EvalScope {
  return { candidate, bound, key, time: time ?? candidate?.time ?? bound?.event.time ?? 0 };
}

export const STEPS: ReadonlyMap<string, number> = new Map([
  ['small', 0],
  ['big', 1],
  ['a', 2],
  ['b', 3],
]);

export function ctx(place: ExprPlace, stepNames: ReadonlyMap<string, number> = STEPS): ExprContext & { diagnostics: Diagnostic[] } {
  return { file: 'test.vigil', diagnostics: [], stepNames, place };
}

/** The condition of step `step` (steps in `bound` come before it). */
export function condPlace(step = 'big', bound: string[] = ['small']): ExprPlace {
  return { kind: 'condition', step, bound: new Set(bound) };
}

/** Compiles `src` as a condition with no steps bound and evaluates it on one candidate with `data`. */
export function check(src: string, data: { [k: string]: Json }): boolean {
  const c = ctx({ kind: 'event' }, new Map());
  const f = compileCondition(parseExpr(src), c);
  if (c.diagnostics.some((d) => d.severity === 'error')) throw new Error(JSON.stringify(c.diagnostics));
  return f(scope(event(data)));
}

/** Compiles `src` as a value in the event place and evaluates it on one candidate. */
export function value(src: string, data: { [k: string]: Json } = {}, ev?: Partial<StreamEvent>): Json {
  const c = ctx({ kind: 'event' }, new Map());
  const f = compileValue(parseExpr(src), c);
  if (c.diagnostics.filter((d) => d.severity === 'error').length > 0) throw new Error(JSON.stringify(c.diagnostics));
  const e = { ...event(data), ...ev };
  return f(scope(e));
}

/** The diagnostics of compiling `src` in `place`. */
export function diags(src: string, place: ExprPlace, stepNames: ReadonlyMap<string, number> = STEPS): Diagnostic[] {
  const c = ctx(place, stepNames);
  compileValue(parseExpr(src), c);
  return c.diagnostics;
}

export function render(src: string, s: EvalScope, stepNames: ReadonlyMap<string, number> = STEPS): string {
  const c = ctx({ kind: 'template' }, stepNames);
  const r = compileTemplate(parseTemplate(src), c);
  if (c.diagnostics.length > 0) throw new Error(JSON.stringify(c.diagnostics));
  return r(s);
}
