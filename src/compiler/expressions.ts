// Compiles expression and template ASTs (language §7, decisions 1–8) into closures over EvalScope.
//
// Compilation resolves every name once (candidate field, step reference, `$`), checks functions,
// arities and step visibility (diagnostics, never exceptions), folds constants and picks closures
// specialised by AST shape, so the common conditions (`amount > 500`, `a and b`, `cur in ["EUR","USD"]`)
// run as one small monomorphic closure with a direct property read and no allocation.
//
// What a compiled closure must never do: throw, loop without bound, allocate on the common
// shapes, read anything but the scope (no environment, clock or inherited object properties),
// or keep a reference to the scope (the engine reuses one object for every evaluation).

import type { Expr, Template } from '../dsl/ast.js';
import type { Span } from '../core/diagnostics.js';
import { diagnostic, type Diagnostic } from '../core/diagnostics.js';
import type { BoundNode, EvalScope, Json } from '../core/event.js';
import { FUNCTIONS } from './functions.js';
import { compileRegex } from './regex.js';
import { didYouMean } from './suggest.js';
import {
  add,
  div,
  eq,
  endsWith,
  ge,
  getField,
  getIndex,
  getPath,
  gt,
  isIn,
  isNotIn,
  isInheritedName,
  le,
  lt,
  mod,
  mul,
  ne,
  neg,
  parseEventTime,
  renderValue,
  startsWith,
  sub,
  type JsonObject,
  type Segment,
} from './values.js';

export type Condition = (scope: EvalScope) => boolean;
export type Evaluator = (scope: EvalScope) => Json; // never undefined: missing → null
export type TemplateRenderer = (scope: EvalScope) => string;
export type ExprPlace =
  | { kind: 'condition'; step: string; bound: ReadonlySet<string> }
  | { kind: 'until'; step: string; bound: ReadonlySet<string> }
  | { kind: 'template' }
  | { kind: 'event' };
export interface ExprContext {
  file: string;
  diagnostics: Diagnostic[];
  stepNames: ReadonlyMap<string, number>;
  place: ExprPlace;
  /**
   * Templates: the paths (as `timePathKey`) of the event fields that hold times (the streams'
   * `time` fields and fields declared `time`). A hole that is such a field, or `time(...)`, renders as ISO-8601
   * (language §4: "Times format as ISO-8601 unless format(...) says otherwise").
   */
  timeFields?: ReadonlySet<string>;
}

// ---------------------------------------------------------------- compiled nodes

/** A step as an expression refers to it. `withCandidate`: the own step in its condition (running aggregates). */
interface StepRef {
  name: string;
  id: number;
  withCandidate: boolean;
}

/**
 * The compile-time form of an expression, kept symbolic as long as possible so that parents can
 * specialise: a constant, a constant path into the place's current event (the candidate; in a
 * template the match's last event), a constant path into a step's last event (empty path = the
 * step's events), or an opaque closure (`cond` when it is known to give a boolean).
 */
type CNode =
  | { t: 'const'; v: Json }
  | { t: 'path'; path: Segment[] }
  | { t: 'step'; ref: StepRef; path: Segment[] }
  | { t: 'dyn'; ev: Evaluator; cond?: Condition };

const NULL_NODE: CNode = { t: 'const', v: null };
const ALWAYS: Condition = () => true;
const NEVER: Condition = () => false;
const EMPTY: JsonObject = Object.freeze({}) as JsonObject;
/** Constant folding runs pure closures on constants; they never read this scope. */
const FOLD_SCOPE: EvalScope = { candidate: null, bound: null, key: null, time: 0 };

function constEv(v: Json): Evaluator {
  return () => v;
}

function isConst(n: CNode): n is { t: 'const'; v: Json } {
  return n.t === 'const';
}

// ---------------------------------------------------------------- walking the bound chain

function lastBound(b: BoundNode | null, id: number): BoundNode | null {
  for (let n = b; n !== null; n = n.prev) if (n.nameId === id) return n;
  return null;
}
function firstBound(b: BoundNode | null, id: number): BoundNode | null {
  let found: BoundNode | null = null;
  for (let n = b; n !== null; n = n.prev) if (n.nameId === id) found = n;
  return found;
}
function countBound(b: BoundNode | null, id: number): number {
  let c = 0;
  for (let n = b; n !== null; n = n.prev) if (n.nameId === id) c++;
  return c;
}
/** The k-th event bound to `id` counting from the newest (k = 0), or null. */
function nthNewest(b: BoundNode | null, id: number, k: number): BoundNode | null {
  for (let n = b; n !== null; n = n.prev) {
    if (n.nameId === id) {
      if (k === 0) return n;
      k--;
    }
  }
  return null;
}

/** Data of event `i` (0-based, negative from the end) among a step's events; a string index reads the last event's field. */
function stepEventAt(s: EvalScope, ref: StepRef, i: Json): Json {
  if (typeof i === 'string') {
    const last = ref.withCandidate ? s.candidate!.data : (lastBound(s.bound, ref.id)?.event.data ?? null);
    return getField(last, i);
  }
  if (typeof i !== 'number' || !Number.isInteger(i)) return null;
  const bound = countBound(s.bound, ref.id);
  const total = ref.withCandidate ? bound + 1 : bound;
  const k = i < 0 ? total + i : i;
  if (k < 0 || k >= total) return null;
  if (k === bound) return s.candidate!.data; // only reachable with the candidate
  const n = nthNewest(s.bound, ref.id, bound - 1 - k);
  return n === null ? null : n.event.data;
}

// ---------------------------------------------------------------- the compiler

class ExprCompiler {
  readonly template: boolean;
  readonly ownStep: string | null;

  constructor(readonly ctx: ExprContext) {
    this.template = ctx.place.kind === 'template';
    this.ownStep = ctx.place.kind === 'condition' || ctx.place.kind === 'until' ? ctx.place.step : null;
  }

  error(code: string, message: string, span: Span): CNode {
    this.ctx.diagnostics.push(diagnostic('error', code, message, this.ctx.file, span));
    return NULL_NODE;
  }

  warn(code: string, message: string, span: Span): void {
    this.ctx.diagnostics.push(diagnostic('warning', code, message, this.ctx.file, span));
  }

  // ------------------------------------------------------------ node → closure

  /** The single, safe field name a node reads directly from the candidate, or null. */
  candKey(n: CNode): string | null {
    if (this.template) return null;
    let path: Segment[];
    if (n.t === 'path') path = n.path;
    else if (n.t === 'step' && n.ref.withCandidate && n.path.length > 0) path = n.path;
    else return null;
    if (path.length !== 1) return null;
    const k = path[0]!;
    return typeof k === 'string' && !isInheritedName(k) ? k : null;
  }

  ev(n: CNode): Evaluator {
    switch (n.t) {
      case 'const':
        return constEv(n.v);
      case 'dyn':
        return n.ev;
      case 'path':
        return this.pathEv(n.path);
      case 'step':
        return this.stepEv(n.ref, n.path);
    }
  }

  cond(n: CNode): Condition {
    if (n.t === 'const') return n.v === true ? ALWAYS : NEVER;
    if (n.t === 'dyn' && n.cond !== undefined) return n.cond;
    const k = this.candKey(n);
    if (k !== null) return (s) => s.candidate!.data[k] === true;
    const f = this.ev(n);
    return (s) => f(s) === true;
  }

  /** A path into the place's current event: the candidate, or in a template the match's last event. */
  pathEv(path: Segment[]): Evaluator {
    if (this.template) {
      return (s) => getPath(s.bound === null ? EMPTY : s.bound.event.data, path);
    }
    if (path.length === 0) return (s) => s.candidate!.data;
    const [a, b] = path;
    if (path.length === 1 && typeof a === 'string' && !isInheritedName(a)) {
      return (s) => {
        const v = s.candidate!.data[a];
        return v === undefined ? null : v;
      };
    }
    if (
      path.length === 2 &&
      typeof a === 'string' &&
      typeof b === 'string' &&
      !isInheritedName(a) &&
      !isInheritedName(b)
    ) {
      return (s) => {
        const o = s.candidate!.data[a];
        if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
        const v = o[b];
        return v === undefined ? null : v;
      };
    }
    return (s) => getPath(s.candidate!.data, path);
  }

  /** A step's events (empty path: their data as a list, null when none) or a path into its last event. */
  stepEv(ref: StepRef, path: Segment[]): Evaluator {
    const id = ref.id;
    if (path.length === 0) {
      const wc = ref.withCandidate;
      return (s) => {
        const out: Json[] = [];
        for (let n = s.bound; n !== null; n = n.prev) if (n.nameId === id) out.push(n.event.data);
        out.reverse();
        if (wc) out.push(s.candidate!.data);
        return out.length === 0 ? null : out;
      };
    }
    if (ref.withCandidate) return this.pathEv(path);
    return (s) => {
      const n = lastBound(s.bound, id);
      return n === null ? null : getPath(n.event.data, path);
    };
  }

  /** Folds a node whose operands are all constants and whose operation is pure. */
  fold(n: CNode, operands: CNode[]): CNode {
    if (n.t !== 'dyn' || !operands.every(isConst)) return n;
    return { t: 'const', v: n.ev(FOLD_SCOPE) };
  }

  // ------------------------------------------------------------ expressions

  node(e: Expr): CNode {
    switch (e.kind) {
      case 'null':
        return NULL_NODE;
      case 'bool':
        return { t: 'const', v: e.value };
      case 'number':
        return { t: 'const', v: Number.isFinite(e.value) ? e.value : null };
      case 'string':
        return { t: 'const', v: e.value };
      case 'duration':
        return { t: 'const', v: Number.isFinite(e.ms) ? e.ms : null };
      case 'list': {
        const items = e.items.map((i) => this.node(i));
        if (items.every(isConst)) return { t: 'const', v: items.map((i) => i.v) };
        const evs = items.map((i) => this.ev(i));
        return {
          t: 'dyn',
          ev: (s) => {
            const out: Json[] = new Array(evs.length);
            for (let i = 0; i < evs.length; i++) out[i] = evs[i]!(s);
            return out;
          },
        };
      }
      case 'name':
        return this.name(e.name, e.span);
      case 'event':
        return { t: 'path', path: [] };
      case 'member': {
        const o = this.node(e.object);
        return this.access(o, { t: 'const', v: e.property });
      }
      case 'index': {
        const o = this.node(e.object);
        const i = this.node(e.index);
        return this.access(o, i);
      }
      case 'call':
        return this.call(e);
      case 'unary': {
        const o = this.node(e.operand);
        if (e.op === 'not') {
          if (o.t === 'const') return { t: 'const', v: o.v !== true };
          const c = this.cond(o);
          const f: Condition = (s) => !c(s);
          return { t: 'dyn', ev: f, cond: f };
        }
        const f = this.ev(o);
        return this.fold({ t: 'dyn', ev: (s) => neg(f(s)) }, [o]);
      }
      case 'binary':
        return this.binary(e.op, e.left, e.right, e.span);
      case 'matches': {
        const subject = this.node(e.subject);
        const test = compileRegex(e.regex, this.ctx.file, this.ctx.diagnostics);
        if (test === null) return { t: 'const', v: false };
        const k = this.candKey(subject);
        let f: Condition;
        if (k !== null) {
          f = (s) => {
            const v = s.candidate!.data[k];
            return typeof v === 'string' && test(v);
          };
        } else {
          const g = this.ev(subject);
          f = (s) => {
            const v = g(s);
            return typeof v === 'string' && test(v);
          };
        }
        return this.fold({ t: 'dyn', ev: f, cond: f }, [subject]);
      }
    }
  }

  /** A bare name: a step reference (checked against the place), else a field of the current event. */
  name(name: string, span: Span): CNode {
    const id = this.ctx.stepNames.get(name);
    if (id === undefined) return { t: 'path', path: [name] };
    const place = this.ctx.place;
    switch (place.kind) {
      case 'event':
        return this.error(
          'compile/step-not-allowed',
          `step '${name}' cannot be used here: this expression is evaluated on one event (write $.${name} for a field)`,
          span,
        );
      case 'template':
        return { t: 'step', ref: { name, id, withCandidate: false }, path: [] };
      case 'condition':
      case 'until':
        if (name === place.step) {
          return { t: 'step', ref: { name, id, withCandidate: place.kind === 'condition' }, path: [] };
        }
        if (!place.bound.has(name)) {
          return this.error(
            'compile/step-not-bound',
            `step '${name}' is not bound before step '${place.step}'`,
            span,
          );
        }
        return { t: 'step', ref: { name, id, withCandidate: false }, path: [] };
    }
  }

  /** `o.f` and `o[i]`: extends constant paths, indexes a step's events, or reads a value at run time. */
  access(o: CNode, i: CNode): CNode {
    const seg: Segment | null =
      i.t === 'const' && (typeof i.v === 'string' || (typeof i.v === 'number' && Number.isInteger(i.v))) ? i.v : null;
    if (o.t === 'const' && i.t === 'const') return { t: 'const', v: getIndex(o.v, i.v) };
    if (o.t === 'path' && seg !== null) return { t: 'path', path: [...o.path, seg] };
    if (o.t === 'step') {
      if (o.path.length > 0 && seg !== null) return { t: 'step', ref: o.ref, path: [...o.path, seg] };
      // On the step itself a string is a field of its last event (`v["x-id"]`); a number indexes its events.
      if (o.path.length === 0 && typeof seg === 'string') return { t: 'step', ref: o.ref, path: [seg] };
      if (o.path.length === 0) {
        const ref = o.ref;
        if (i.t === 'const') {
          const iv = i.v;
          if (ref.withCandidate && iv === -1) return { t: 'path', path: [] };
          if (!ref.withCandidate && iv === -1) {
            const id = ref.id;
            return {
              t: 'dyn',
              ev: (s) => {
                const n = lastBound(s.bound, id);
                return n === null ? null : n.event.data;
              },
            };
          }
          return { t: 'dyn', ev: (s) => stepEventAt(s, ref, iv) };
        }
        const f = this.ev(i);
        return { t: 'dyn', ev: (s) => stepEventAt(s, ref, f(s)) };
      }
    }
    const of = this.ev(o);
    if (seg !== null) {
      return typeof seg === 'string'
        ? { t: 'dyn', ev: (s) => getField(of(s), seg) }
        : { t: 'dyn', ev: (s) => getIndex(of(s), seg) };
    }
    const f = this.ev(i);
    return { t: 'dyn', ev: (s) => getIndex(of(s), f(s)) };
  }

  // ------------------------------------------------------------ operators

  binary(op: string, le_: Expr, re_: Expr, span: Span): CNode {
    const l = this.node(le_);
    const r = this.node(re_);
    switch (op) {
      case 'and':
      case 'or': {
        const and = op === 'and';
        // Folding keeps only the side that decides: `true and X` is X, `false and X` is false.
        if (l.t === 'const') {
          if ((l.v === true) !== and) return { t: 'const', v: !and };
          return this.boolNode(r);
        }
        if (r.t === 'const') {
          if ((r.v === true) !== and) {
            // X and false: always false, but X still compiles (and reports its errors) above.
            return { t: 'const', v: !and };
          }
          return this.boolNode(l);
        }
        const a = this.cond(l);
        const b = this.cond(r);
        const f: Condition = and ? (s) => a(s) && b(s) : (s) => a(s) || b(s);
        return { t: 'dyn', ev: f, cond: f };
      }
      case '==':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        // Only a written `null` warns; an operand that failed to compile is already an error.
        if (le_.kind === 'null' || re_.kind === 'null') {
          this.warn(
            'compile/null-comparison',
            `a comparison with null is always false; use exists(x) to test for a missing field`,
            span,
          );
          return { t: 'const', v: false };
        }
        return this.compare(op, l, r);
      case 'in':
        return this.membership(l, r, false);
      case 'not in':
        return this.membership(l, r, true);
      case 'contains':
        return this.membership(r, l, false);
      case 'startswith':
      case 'endswith':
        return this.affix(op === 'startswith', l, r);
      case '+':
      case '-':
      case '*':
      case '/':
      case '%': {
        const fn = op === '+' ? add : op === '-' ? sub : op === '*' ? mul : op === '/' ? div : mod;
        const a = this.ev(l);
        const b = this.ev(r);
        return this.fold({ t: 'dyn', ev: (s) => fn(a(s), b(s)) }, [l, r]);
      }
      default:
        return this.error('compile/unknown-operator', `unknown operator '${op}'`, span);
    }
  }

  boolNode(n: CNode): CNode {
    if (n.t === 'const') return { t: 'const', v: n.v === true };
    const c = this.cond(n);
    return { t: 'dyn', ev: c, cond: c };
  }

  compare(op: string, l: CNode, r: CNode): CNode {
    const generic = op === '==' ? eq : op === '!=' ? ne : op === '<' ? lt : op === '<=' ? le : op === '>' ? gt : ge;
    if (l.t === 'const' && r.t === 'const') return { t: 'const', v: generic(l.v, r.v) };
    // Put the constant on the right: `500 < amount` is `amount > 500`.
    if (l.t === 'const') {
      const mirrored = op === '<' ? '>' : op === '<=' ? '>=' : op === '>' ? '<' : op === '>=' ? '<=' : op;
      return this.compare(mirrored, r, l);
    }
    if (r.t === 'const') {
      const c = r.v;
      const k = this.candKey(l);
      const f = k !== null ? cmpCandConst(op, k, c) : cmpConst(op, this.ev(l), c);
      if (f !== null) return f === NEVER ? { t: 'const', v: false } : { t: 'dyn', ev: f, cond: f };
    }
    const a = this.ev(l);
    const b = this.ev(r);
    const f: Condition = (s) => generic(a(s), b(s));
    return { t: 'dyn', ev: f, cond: f };
  }

  /** `x in c` (negated for `not in`). A constant list of primitives becomes a Set built here. */
  membership(x: CNode, c: CNode, negate: boolean): CNode {
    if (negate) return this.nonMembership(x, c);
    let f: Condition;
    if (x.t === 'const' && c.t === 'const') return { t: 'const', v: isIn(x.v, c.v) };
    if (c.t === 'const') {
      const cv = c.v;
      const k = this.candKey(x);
      if (Array.isArray(cv) && cv.every((i) => i === null || typeof i !== 'object')) {
        // Null is never a member (a comparison with null is false), so it is left out of the set.
        const set = new Set<Json>(cv.filter((i) => i !== null));
        if (k !== null) f = (s) => set.has(s.candidate!.data[k] as Json);
        else {
          const g = this.ev(x);
          f = (s) => set.has(g(s));
        }
      } else if (typeof cv === 'string') {
        if (k !== null) {
          f = (s) => {
            const v = s.candidate!.data[k];
            return typeof v === 'string' && cv.includes(v);
          };
        } else {
          const g = this.ev(x);
          f = (s) => {
            const v = g(s);
            return typeof v === 'string' && cv.includes(v);
          };
        }
      } else if (Array.isArray(cv)) {
        const g = this.ev(x);
        f = (s) => isIn(g(s), cv);
      } else {
        f = NEVER;
      }
    } else {
      const g = this.ev(x);
      const h = this.ev(c);
      f = (s) => isIn(g(s), h(s));
    }
    return f === NEVER ? { t: 'const', v: false } : { t: 'dyn', ev: f, cond: f };
  }

  /**
   * `x not in c`: false when x is null or its type does not fit, like every comparison
   * (language §7). A constant list of primitives of one type becomes a Set built here; a
   * constant list holding null or values of two types makes the test always false.
   */
  nonMembership(x: CNode, c: CNode): CNode {
    if (x.t === 'const' && c.t === 'const') return { t: 'const', v: isNotIn(x.v, c.v) };
    let f: Condition;
    const g = this.ev(x);
    if (c.t === 'const') {
      const cv = c.v;
      if (Array.isArray(cv) && cv.length > 0 && cv.every((i) => i !== null && typeof i !== 'object')) {
        const type = typeof cv[0];
        if (!cv.every((i) => typeof i === type)) return { t: 'const', v: false };
        const set = new Set<Json>(cv);
        f = (s) => {
          const v = g(s);
          return typeof v === type && !set.has(v);
        };
      } else if (Array.isArray(cv) || typeof cv === 'string') {
        f = (s) => isNotIn(g(s), cv);
      } else return { t: 'const', v: false };
    } else {
      const h = this.ev(c);
      f = (s) => isNotIn(g(s), h(s));
    }
    return { t: 'dyn', ev: f, cond: f };
  }

  affix(starts: boolean, l: CNode, r: CNode): CNode {
    const fn = starts ? startsWith : endsWith;
    if (l.t === 'const' && r.t === 'const') return { t: 'const', v: fn(l.v, r.v) };
    let f: Condition;
    if (r.t === 'const') {
      const c = r.v;
      if (typeof c !== 'string') return { t: 'const', v: false };
      const g = this.ev(l);
      f = starts
        ? (s) => {
            const v = g(s);
            return typeof v === 'string' && v.startsWith(c);
          }
        : (s) => {
            const v = g(s);
            return typeof v === 'string' && v.endsWith(c);
          };
    } else {
      const a = this.ev(l);
      const b = this.ev(r);
      f = (s) => fn(a(s), b(s));
    }
    return { t: 'dyn', ev: f, cond: f };
  }

  // ------------------------------------------------------------ calls

  call(e: Extract<Expr, { kind: 'call' }>): CNode {
    const name = e.callee.name;
    const spec = FUNCTIONS.get(name);
    if (spec === undefined) {
      for (const a of e.args) this.node(a);
      return this.error('compile/unknown-function', `unknown function '${name}'${didYouMean(name, FUNCTIONS.keys())}`, e.callee.span);
    }
    if (spec.special === 'env') {
      return this.error('compile/env-outside-sink', 'env() is allowed only in sink settings', e.span);
    }
    const n = e.args.length;
    if (n < spec.minArgs || n > spec.maxArgs) {
      for (const a of e.args) this.node(a);
      return this.error('compile/arity', `${name}() takes ${spec.arityText}, got ${n}`, e.span);
    }
    const place = this.ctx.place.kind;
    switch (spec.special) {
      case 'key':
        if (place !== 'template') {
          return this.error(
            'compile/key-outside-template',
            'key() is allowed only in alert templates and throttle `by`',
            e.span,
          );
        }
        return { t: 'dyn', ev: (s) => (s.key === undefined ? null : s.key) };
      case 'stream':
        if (this.template) return { t: 'dyn', ev: (s) => (s.bound === null ? null : s.bound.event.stream) };
        return { t: 'dyn', ev: (s) => s.candidate!.stream };
      case 'topic':
        return this.topic(e.args);
      case 'time':
        return this.time(e);
      case 'count':
      case 'first':
      case 'last':
        return this.stepFunction(spec.special, e);
      case 'coalesce': {
        const args = e.args.map((a) => this.node(a));
        // Constants decide at compile time: a leading null drops out, a non-null constant ends the list.
        const kept: CNode[] = [];
        for (const a of args) {
          if (a.t === 'const' && a.v === null) continue;
          kept.push(a);
          if (a.t === 'const') break;
        }
        if (kept.length === 0) return NULL_NODE;
        if (kept.length === 1) return kept[0]!;
        const evs = kept.map((a) => this.ev(a));
        return {
          t: 'dyn',
          ev: (s) => {
            for (let i = 0; i < evs.length; i++) {
              const v = evs[i]!(s);
              if (v !== null) return v;
            }
            return null;
          },
        };
      }
      case 'aggregate':
        if (n === 1) return this.aggregate(name, e);
        break;
      default:
        break;
    }
    // A pure scalar function; omitted optional arguments take their defaults (the zone: UTC).
    const impl = spec.impl!;
    const args = e.args.map((a) => this.node(a));
    const missing = spec.maxArgs - n;
    if (spec.defaults !== undefined && missing > 0) {
      for (const d of spec.defaults.slice(spec.defaults.length - missing)) args.push({ t: 'const', v: d });
    }
    const [a, b, c] = args.map((x) => this.ev(x));
    let ev: Evaluator;
    if (args.length === 1) ev = (s) => impl(a!(s), null, null);
    else if (args.length === 2) ev = (s) => impl(a!(s), b!(s), null);
    else ev = (s) => impl(a!(s), b!(s), c!(s));
    return this.fold({ t: 'dyn', ev }, args);
  }

  /** The step named by a one-argument call like count(v), or null after an error. */
  stepArg(fn: string, arg: Expr): StepRef | null {
    if (arg.kind === 'name' && this.ctx.stepNames.has(arg.name)) {
      const n = this.name(arg.name, arg.span);
      return n.t === 'step' ? n.ref : null;
    }
    if (arg.kind === 'name') {
      this.notAStep(fn, 'a step name', arg.name, arg.span);
      return null;
    }
    this.node(arg);
    this.error('compile/expected-step', `${fn}() takes a step name`, arg.span);
    return null;
  }

  /** A bare name where a step is expected (`first(smal)`, `sum(smal.amount)`) that is no step of the rule. */
  notAStep(fn: string, what: string, name: string, span: Span): CNode {
    const steps = [...this.ctx.stepNames.keys()];
    const hint = didYouMean(name, steps);
    const known = hint !== '' || steps.length === 0 ? '' : ` (its steps: ${steps.map((s) => `'${s}'`).join(', ')})`;
    return this.error('compile/expected-step', `${fn}() takes ${what}: '${name}' is not a step of this rule${hint}${known}`, span);
  }

  /** The bare name a step-function argument starts from (`smal` in `smal.amount`, `smal[0].f`), or null. */
  rootName(e: Expr): Extract<Expr, { kind: 'name' }> | null {
    let x = e;
    while (x.kind === 'member' || x.kind === 'index') x = x.object;
    return x.kind === 'name' ? x : null;
  }

  stepFunction(fn: 'count' | 'first' | 'last', e: Extract<Expr, { kind: 'call' }>): CNode {
    const arg = e.args[0]!;
    // A bare name is a step reference (a list field is written first($.items)); in a place
    // that sees one event there are no steps, so a name there is a field.
    if (fn !== 'count' && arg.kind === 'name' && !this.ctx.stepNames.has(arg.name) && this.ctx.place.kind !== 'event') {
      return this.notAStep(fn, 'a step name', arg.name, arg.span);
    }
    // first/last also work on a list value: first($.items).
    if (fn !== 'count' && !(arg.kind === 'name' && this.ctx.stepNames.has(arg.name))) {
      const l = this.node(arg);
      const g = this.ev(l);
      const idx = fn === 'first' ? 0 : -1;
      return this.fold({ t: 'dyn', ev: (s) => getIndex(g(s), idx) }, [l]);
    }
    const ref = this.stepArg(fn, arg);
    if (ref === null) return NULL_NODE;
    const id = ref.id;
    const wc = ref.withCandidate;
    if (fn === 'count') return { t: 'dyn', ev: wc ? (s) => countBound(s.bound, id) + 1 : (s) => countBound(s.bound, id) };
    if (fn === 'last') {
      // Running: in the step's own condition its last event is the candidate.
      if (wc) return { t: 'path', path: [] };
      return {
        t: 'dyn',
        ev: (s) => {
          const n = lastBound(s.bound, id);
          return n === null ? null : n.event.data;
        },
      };
    }
    return {
      t: 'dyn',
      ev: (s) => {
        const n = firstBound(s.bound, id);
        return n !== null ? n.event.data : wc ? s.candidate!.data : null;
      },
    };
  }

  time(e: Extract<Expr, { kind: 'call' }>): CNode {
    if (e.args.length === 0) return { t: 'dyn', ev: (s) => s.time };
    const ref = this.stepArg('time', e.args[0]!);
    if (ref === null) return NULL_NODE;
    if (ref.withCandidate) return { t: 'dyn', ev: (s) => s.time };
    const id = ref.id;
    return {
      t: 'dyn',
      ev: (s) => {
        const n = lastBound(s.bound, id);
        return n === null ? null : n.event.time;
      },
    };
  }

  topic(args: Expr[]): CNode {
    const topicOf: (s: EvalScope) => string | undefined = this.template
      ? (s) => (s.bound === null ? undefined : s.bound.event.topic)
      : (s) => s.candidate!.topic;
    if (args.length === 0) {
      return {
        t: 'dyn',
        ev: (s) => {
          const t = topicOf(s);
          return typeof t === 'string' ? t : null;
        },
      };
    }
    const i = this.node(args[0]!);
    const f = this.ev(i);
    return {
      t: 'dyn',
      ev: (s) => {
        const t = topicOf(s);
        if (typeof t !== 'string') return null;
        return getIndex(t.split('/'), f(s));
      },
    };
  }

  /** sum/avg/min/max of one argument: over a step path `v.f.g` (running), or over a list value. */
  aggregate(fn: string, e: Extract<Expr, { kind: 'call' }>): CNode {
    const argExpr = e.args[0]!;
    // `sum(v.f)`: the name a field path starts from is a step (a list inside an event is
    // written sum($.order.amounts)); a bare list field `sum(amounts)` stays a list.
    const root = argExpr.kind === 'member' || argExpr.kind === 'index' ? this.rootName(argExpr) : null;
    if (root !== null && !this.ctx.stepNames.has(root.name) && this.ctx.place.kind !== 'event') {
      return this.notAStep(fn, `a step field like ${fn}(v.amount)`, root.name, root.span);
    }
    const errorsBefore = this.ctx.diagnostics.length;
    const arg = this.node(argExpr);
    const kind = fn === 'sum' ? 0 : fn === 'avg' ? 1 : fn === 'min' ? 2 : 3;
    if (arg.t !== 'step') {
      // A step reference that already failed (not bound, not allowed here) needs no second error.
      if (this.ctx.diagnostics.slice(errorsBefore).some((d) => d.severity === 'error')) return NULL_NODE;
      if (referencedSteps(argExpr, this.ctx.stepNames).size > 0) {
        return this.error(
          'compile/aggregate-arg',
          `${fn}() takes a step field like ${fn}(v.amount), or a list`,
          argExpr.span,
        );
      }
      const g = this.ev(arg);
      return this.fold({ t: 'dyn', ev: (s) => aggregateList(kind, g(s)) }, [arg]);
    }
    const { id, withCandidate } = arg.ref;
    const path = arg.path;
    const k0 = path[0];
    if (path.length === 1 && typeof k0 === 'string' && !isInheritedName(k0)) {
      // The common `sum(v.amount)`: the field read inline, no getter call per event.
      return {
        t: 'dyn',
        ev: (s) => {
          let acc = kind === 2 ? Infinity : kind === 3 ? -Infinity : 0;
          let n = 0;
          for (let b = s.bound; b !== null; b = b.prev) {
            if (b.nameId !== id) continue;
            const v = b.event.data[k0];
            if (typeof v !== 'number') continue;
            n++;
            acc = kind <= 1 ? acc + v : kind === 2 ? (v < acc ? v : acc) : v > acc ? v : acc;
          }
          if (withCandidate) {
            const v = s.candidate!.data[k0];
            if (typeof v === 'number') {
              n++;
              acc = kind <= 1 ? acc + v : kind === 2 ? (v < acc ? v : acc) : v > acc ? v : acc;
            }
          }
          if (n === 0) return null;
          const r = kind === 1 ? acc / n : acc;
          return Number.isFinite(r) ? r : null;
        },
      };
    }
    const get = (d: JsonObject): Json => getPath(d, path);
    return {
      t: 'dyn',
      ev: (s) => {
        let acc = kind === 2 ? Infinity : kind === 3 ? -Infinity : 0;
        let n = 0;
        for (let b = s.bound; b !== null; b = b.prev) {
          if (b.nameId !== id) continue;
          const v = get(b.event.data);
          if (typeof v !== 'number') continue;
          n++;
          acc = kind <= 1 ? acc + v : kind === 2 ? (v < acc ? v : acc) : v > acc ? v : acc;
        }
        if (withCandidate) {
          const v = get(s.candidate!.data);
          if (typeof v === 'number') {
            n++;
            acc = kind <= 1 ? acc + v : kind === 2 ? (v < acc ? v : acc) : v > acc ? v : acc;
          }
        }
        if (n === 0) return null;
        const r = kind === 1 ? acc / n : acc;
        return Number.isFinite(r) ? r : null;
      },
    };
  }
}

function aggregateList(kind: number, list: Json): Json {
  if (!Array.isArray(list)) return null;
  let acc = kind === 2 ? Infinity : kind === 3 ? -Infinity : 0;
  let n = 0;
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (typeof v !== 'number') continue;
    n++;
    acc = kind <= 1 ? acc + v : kind === 2 ? (v < acc ? v : acc) : v > acc ? v : acc;
  }
  if (n === 0) return null;
  const r = kind === 1 ? acc / n : acc;
  return Number.isFinite(r) ? r : null;
}

// ---------------------------------------------------------------- specialised comparisons

/**
 * `candidate.k OP c` with the field read inline: the hot shape. Returns NEVER when the result is
 * false whatever the event holds (e.g. `flag < true`), null when there is no specialisation.
 */
function cmpCandConst(op: string, k: string, c: Json): Condition | null {
  if (typeof c === 'number') {
    switch (op) {
      case '==':
        return (s) => s.candidate!.data[k] === c;
      case '!=':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'number' && v !== c;
        };
      case '<':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'number' && v < c;
        };
      case '<=':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'number' && v <= c;
        };
      case '>':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'number' && v > c;
        };
      case '>=':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'number' && v >= c;
        };
    }
  }
  if (typeof c === 'string') {
    switch (op) {
      case '==':
        return (s) => s.candidate!.data[k] === c;
      case '!=':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'string' && v !== c;
        };
      case '<':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'string' && v < c;
        };
      case '<=':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'string' && v <= c;
        };
      case '>':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'string' && v > c;
        };
      case '>=':
        return (s) => {
          const v = s.candidate!.data[k];
          return typeof v === 'string' && v >= c;
        };
    }
  }
  if (typeof c === 'boolean') {
    if (op === '==') return (s) => s.candidate!.data[k] === c;
    if (op === '!=') return (s) => s.candidate!.data[k] === !c;
    return NEVER;
  }
  return null;
}

/** `f(s) OP c` for any left side and a constant right side. */
function cmpConst(op: string, f: Evaluator, c: Json): Condition | null {
  if (typeof c === 'number' || typeof c === 'string') {
    const t = typeof c;
    switch (op) {
      case '==':
        return (s) => f(s) === c;
      case '!=':
        return (s) => {
          const v = f(s);
          return typeof v === t && v !== c;
        };
      case '<':
        return (s) => {
          const v = f(s);
          return typeof v === t && (v as number | string) < c;
        };
      case '<=':
        return (s) => {
          const v = f(s);
          return typeof v === t && (v as number | string) <= c;
        };
      case '>':
        return (s) => {
          const v = f(s);
          return typeof v === t && (v as number | string) > c;
        };
      case '>=':
        return (s) => {
          const v = f(s);
          return typeof v === t && (v as number | string) >= c;
        };
    }
  }
  if (typeof c === 'boolean') {
    if (op === '==') return (s) => f(s) === c;
    if (op === '!=') return (s) => f(s) === !c;
    return NEVER;
  }
  return null;
}

// ---------------------------------------------------------------- entry points

function safeCompile<T>(ctx: ExprContext, span: Span, fallback: T, build: () => T): T {
  try {
    return build();
  } catch (err) {
    // A compiler bug must not take the service down: report it like any other error.
    ctx.diagnostics.push(
      diagnostic('error', 'compile/internal', `internal compiler error: ${String(err)}`, ctx.file, span),
    );
    return fallback;
  }
}

export function compileCondition(expr: Expr, ctx: ExprContext): Condition {
  return safeCompile(ctx, expr.span, NEVER, () => {
    const c = new ExprCompiler(ctx);
    return c.cond(c.node(expr));
  });
}

export function compileValue(expr: Expr, ctx: ExprContext): Evaluator {
  return safeCompile(ctx, expr.span, constEv(null), () => {
    const c = new ExprCompiler(ctx);
    return c.ev(c.node(expr));
  });
}

/**
 * The field path, inside one event, that a template hole reads (`ts`, `b.ts`, `first(b).ts`,
 * `$["ts"]`, `retry.ts` → [retry, ts]); null when the hole is not a plain field of an event.
 */
function holePath(e: Expr, ctx: ExprContext): Segment[] | null {
  switch (e.kind) {
    case 'name':
      return ctx.stepNames.has(e.name) ? null : [e.name];
    case 'event':
      return [];
    case 'member':
    case 'index': {
      let seg: Segment;
      if (e.kind === 'member') seg = e.property;
      else if (e.index.kind === 'string') seg = e.index.value;
      else if (e.index.kind === 'number' && Number.isInteger(e.index.value)) seg = e.index.value;
      else return null;
      if (isStepEvent(e.object, ctx)) return [seg];
      const p = holePath(e.object, ctx);
      return p === null ? null : [...p, seg];
    }
    default:
      return null;
  }
}

/** Does the expression denote one event bound to a step (`v` before `.f`, `first(v)`, `last(v)`, `v[i]`)? */
function isStepEvent(e: Expr, ctx: ExprContext): boolean {
  if (e.kind === 'name') return ctx.stepNames.has(e.name);
  if (e.kind === 'call') {
    const a = e.args[0];
    return (e.callee.name === 'first' || e.callee.name === 'last') && e.args.length === 1 && a !== undefined && a.kind === 'name' && ctx.stepNames.has(a.name);
  }
  if (e.kind === 'index') return e.object.kind === 'name' && ctx.stepNames.has(e.object.name) && e.index.kind === 'number';
  return false;
}

/** The key of a field path in `ExprContext.timeFields`. */
export function timePathKey(path: readonly Segment[]): string {
  return JSON.stringify(path);
}

/**
 * Is a template hole a time (not a duration: arithmetic on times stays a number)? `time(...)`,
 * or a field whose path is a stream's `time` field or a declared `time` field — the field
 * itself, not a field of the same last name elsewhere (`retry.ts` is not the time `ts`).
 */
function isTimeHole(e: Expr, ctx: ExprContext): boolean {
  if (e.kind === 'call') return e.callee.name === 'time';
  const fields = ctx.timeFields;
  if (fields === undefined || fields.size === 0) return false;
  const path = holePath(e, ctx);
  return path !== null && fields.has(timePathKey(path));
}

/** ISO-8601 UTC with milliseconds; numbers outside Date's range stay numbers. */
function isoText(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** A time value as ISO-8601 UTC with ms, whether sent as epoch ms or as ISO text with a zone. */
function timeText(v: Json): Json {
  if (typeof v === 'number') return isoText(v);
  if (typeof v === 'string') {
    const t = parseEventTime(v);
    return typeof t === 'number' ? isoText(t) : v;
  }
  return v;
}

export function compileTemplate(t: Template, ctx: ExprContext): TemplateRenderer {
  return safeCompile<TemplateRenderer>(ctx, t.span, () => '', () => {
    const c = new ExprCompiler(ctx);
    // Adjacent constant parts are merged at compile time; the rest render at run time.
    const parts: (string | Evaluator)[] = [];
    for (const p of t.parts) {
      let piece: string | Evaluator;
      if (typeof p === 'string') piece = p;
      else {
        const n = c.node(p);
        piece = n.t === 'const' ? renderValue(n.v) : c.ev(n);
        if (typeof piece !== 'string' && isTimeHole(p, ctx)) {
          const ev = piece;
          piece = (s) => timeText(ev(s));
        }
      }
      const prev = parts[parts.length - 1];
      if (typeof piece === 'string' && typeof prev === 'string') parts[parts.length - 1] = prev + piece;
      else parts.push(piece);
    }
    if (parts.length === 0) return () => '';
    if (parts.length === 1 && typeof parts[0] === 'string') {
      const text = parts[0];
      return () => text;
    }
    return (s) => {
      let out = '';
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        if (typeof p === 'string') {
          out += p;
          continue;
        }
        // The last resort for the one non-total step: JSON.stringify of a pathologically deep value.
        try {
          out += renderValue(p(s));
        } catch {
          out += '';
        }
      }
      return out;
    };
  });
}

function children(e: Expr): Expr[] {
  switch (e.kind) {
    case 'list':
      return e.items;
    case 'member':
      return [e.object];
    case 'index':
      return [e.object, e.index];
    case 'call':
      return e.args;
    case 'unary':
      return [e.operand];
    case 'binary':
      return [e.left, e.right];
    case 'matches':
      return [e.subject];
    default:
      return [];
  }
}

/** Every step name the expression refers to (for the compiler's checks and for skip/within analysis). */
export function referencedSteps(expr: Expr, stepNames: ReadonlyMap<string, number>): Set<string> {
  const out = new Set<string>();
  const stack: Expr[] = [expr];
  while (stack.length > 0) {
    const e = stack.pop()!;
    if (e.kind === 'name' && stepNames.has(e.name)) out.add(e.name);
    for (const c of children(e)) stack.push(c);
  }
  return out;
}
