// Checks that catch what a rule author likely got wrong but that do not stop the rule (warnings):
// a bare name one typo away from a step (`bigg.amount` is read as a field of the event), a field
// the streams' schemas do not declare (schemas are open, so it is still read), and a comparison
// that a declared type makes always false (`amount > "5"` on a `number` field). Errors about step
// references are reported where expressions compile (expressions.ts); these only warn.

import { diagnostic, type Diagnostic, type Span } from '../core/diagnostics.js';
import type { Expr, FieldType, Template } from '../dsl/ast.js';
import type { CompiledStream } from './streams.js';
import { fieldPath } from './streams.js';
import { closest } from './suggest.js';

/** The fields the streams of a rule declare (their union), or null when one of them has no `fields`. */
export interface Schema {
  /** Field name → declared type (`any` when streams disagree or only `time`/`key`/`id` names it). */
  fields: Map<string, FieldType>;
  /** The streams, for messages: `stream 'tx'` or `streams 'a', 'b'`. */
  streams: string[];
}

export function schemaOf(streams: CompiledStream[]): Schema | null {
  const fields = new Map<string, FieldType>();
  for (const s of streams) {
    const clauses = s.decl?.clauses ?? [];
    const decl = clauses.find((c) => c.kind === 'fields');
    if (!s.declared || decl === undefined || decl.kind !== 'fields') return null;
    for (const f of decl.fields) {
      const before = fields.get(f.name);
      fields.set(f.name, before === undefined || before === f.type ? f.type : 'any');
    }
    // The time, key and id fields are known too, even when `fields` leaves them out.
    for (const c of clauses) {
      const e = c.kind === 'time' || c.kind === 'id' ? c.field : c.kind === 'key' ? c.expr : null;
      const root = e === null ? undefined : fieldPath(e)?.[0];
      if (typeof root === 'string' && !fields.has(root)) fields.set(root, 'any');
    }
  }
  return { fields, streams: streams.map((s) => s.name) };
}

export interface CheckContext {
  file: string;
  diagnostics: Diagnostic[];
  stepNames: ReadonlyMap<string, number>;
  /** `event`: one event, no steps (stream keys, `by`); else conditions and templates. */
  place: 'event' | 'condition' | 'template';
  schema: Schema | null;
}

const STEP_FUNCTIONS = new Set(['count', 'first', 'last', 'time']);
const AGGREGATES = new Set(['sum', 'avg', 'min', 'max']);
const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=']);

export function checkTemplate(t: Template, c: CheckContext): void {
  for (const p of t.parts) if (typeof p !== 'string') checkExpr(p, c);
}

export function checkExpr(e: Expr, c: CheckContext): void {
  new Checker(c).visit(e);
}

class Checker {
  constructor(private readonly c: CheckContext) {}

  private warn(code: string, message: string, span: Span): void {
    this.c.diagnostics.push(diagnostic('warning', code, message, this.c.file, span));
  }

  private isStep(name: string): boolean {
    return this.c.place !== 'event' && this.c.stepNames.has(name);
  }

  visit(e: Expr): void {
    switch (e.kind) {
      case 'name':
        if (!this.isStep(e.name)) this.fieldRoot(e.name, e.span);
        return;
      case 'member': {
        const o = e.object;
        if (o.kind === 'event' || this.stepEvent(o)) this.field(e.property, e.propertySpan);
        else this.visit(o);
        return;
      }
      case 'index': {
        const o = e.object;
        if ((o.kind === 'event' || this.stepEvent(o)) && e.index.kind === 'string') this.field(e.index.value, e.index.span);
        else this.visit(o);
        this.visit(e.index);
        return;
      }
      case 'call': {
        const fn = e.callee.name;
        const first = e.args[0];
        // Step arguments are checked (as errors) where they compile.
        if (STEP_FUNCTIONS.has(fn) && first?.kind === 'name' && this.c.place !== 'event') {
          for (const a of e.args.slice(1)) this.visit(a);
          return;
        }
        if (AGGREGATES.has(fn) && e.args.length === 1 && first !== undefined && (first.kind === 'member' || first.kind === 'index')) {
          let root: Expr = first;
          while (root.kind === 'member' || root.kind === 'index') root = root.object;
          if (root.kind === 'name' && !this.isStep(root.name) && this.c.place !== 'event') return;
        }
        for (const a of e.args) this.visit(a);
        return;
      }
      case 'binary':
        if (COMPARISONS.has(e.op)) this.compare(e.left, e.right, e.span);
        this.visit(e.left);
        this.visit(e.right);
        return;
      case 'unary':
        this.visit(e.operand);
        return;
      case 'list':
        for (const i of e.items) this.visit(i);
        return;
      case 'matches':
        this.visit(e.subject);
        return;
      default:
        return;
    }
  }

  /** Is `e` one event of a step: the step name itself, `v[i]`, `first(v)`, `last(v)`? */
  private stepEvent(e: Expr): boolean {
    if (e.kind === 'name') return this.isStep(e.name);
    if (e.kind === 'index') {
      const i = e.index;
      const numeric = i.kind === 'number' || (i.kind === 'unary' && i.op === '-' && i.operand.kind === 'number');
      return e.object.kind === 'name' && this.isStep(e.object.name) && numeric;
    }
    if (e.kind === 'call') {
      const a = e.args[0];
      return (e.callee.name === 'first' || e.callee.name === 'last') && e.args.length === 1 && a?.kind === 'name' && this.isStep(a.name);
    }
    return false;
  }

  /** A bare name that is no step: a field of the event. Close to a step name, it is most likely a typo. */
  private fieldRoot(name: string, span: Span): void {
    const schema = this.c.schema;
    if (schema?.fields.has(name)) return;
    if (this.c.place !== 'event') {
      const step = closest(name, this.c.stepNames.keys());
      if (step !== null) {
        this.warn('compile/not-a-step', `'${name}' is not a step; did you mean '${step}'? read as field '${name}' of the event`, span);
        return;
      }
    }
    this.field(name, span);
  }

  /** A top-level field of an event: known to the schema, or a warning (with the closest declared name). */
  private field(name: string, span: Span): void {
    const schema = this.c.schema;
    if (schema === null || schema.fields.has(name)) return;
    const near = closest(name, schema.fields.keys());
    const where = schema.streams.length === 1 ? `stream '${schema.streams[0]}'` : `streams ${schema.streams.map((s) => `'${s}'`).join(', ')}`;
    this.warn(
      'compile/unknown-field',
      `field '${name}' is not declared in ${where}${near === null ? '' : `; did you mean '${near}'?`} (the schema is open: it is read anyway, and is null when missing)`,
      span,
    );
  }

  /** The declared type of a field read by `e` (`amount`, `$.amount`, `v.amount`, `first(v).amount`), or null. */
  private typeOf(e: Expr): { name: string; type: FieldType } | null {
    const schema = this.c.schema;
    if (schema === null) return null;
    let name: string | null = null;
    if (e.kind === 'name' && !this.isStep(e.name)) name = e.name;
    else if (e.kind === 'member' && (e.object.kind === 'event' || this.stepEvent(e.object))) name = e.property;
    else if (e.kind === 'index' && e.index.kind === 'string' && (e.object.kind === 'event' || this.stepEvent(e.object))) name = e.index.value;
    if (name === null) return null;
    const type = schema.fields.get(name);
    return type === undefined ? null : { name, type };
  }

  /** `field OP literal` where the field's declared type can never compare with the literal. */
  private compare(l: Expr, r: Expr, span: Span): void {
    const [field, lit] = this.typeOf(l) !== null ? [this.typeOf(l)!, r] : [this.typeOf(r), l];
    if (field === null) return;
    const litType =
      lit.kind === 'string' ? 'string' : lit.kind === 'number' || lit.kind === 'duration' ? 'number' : lit.kind === 'bool' ? 'boolean' : null;
    if (litType === null) return;
    const t = field.type;
    if (t !== 'number' && t !== 'string' && t !== 'boolean' && t !== 'object' && t !== 'list') return;
    if (t === litType) return;
    const shown = lit.kind === 'string' ? JSON.stringify(lit.value) : lit.kind === 'duration' ? lit.text : String((lit as { value: unknown }).value);
    this.warn(
      'compile/always-false',
      `always false: field '${field.name}' is declared ${t} and ${shown} is a ${litType} (a comparison of different types is false)`,
      span,
    );
  }
}
