// Helpers for the parser tests: parse and expect no diagnostics, strip spans for shape
// comparisons, pull out one clause or one condition.

import { expect } from 'vitest';
import type { Diagnostic } from '../../src/core/diagnostics.js';
import type { Expr, Pattern, Program, RuleClause, RuleDecl, StreamClause, StreamDecl } from '../../src/dsl/ast.js';
import { parseExpression, parseProgram } from '../../src/dsl/parser.js';

export function parseOk(source: string): Program {
  const { program, diagnostics } = parseProgram(source, 'test.vigil');
  expect(diagnostics.map(show)).toEqual([]);
  return program;
}

export function errorsOf(source: string): string[] {
  return parseProgram(source, 'test.vigil').diagnostics.map(show);
}

/** `line:col code: message` */
export function show(d: Diagnostic): string {
  return `${d.line}:${d.col} ${d.code}: ${d.message}`;
}

const SPAN_KEYS = new Set(['span', 'nameSpan', 'typeSpan', 'propertySpan']);

/** A deep copy without spans, for comparing shapes. */
export function noSpans<T>(value: T): unknown {
  return JSON.parse(JSON.stringify(value, (k, v) => (SPAN_KEYS.has(k) ? undefined : v === Infinity ? 'Infinity' : v)));
}

export function expr(text: string): unknown {
  const { expr: e, diagnostics } = parseExpression(text, 'expr');
  expect(diagnostics.map(show)).toEqual([]);
  return noSpans(e as Expr);
}

export function rule(body: string): RuleDecl {
  const program = parseOk(`rule r {\n${body}\n}`);
  return program.decls[0] as RuleDecl;
}

export function ruleClause(text: string): RuleClause {
  const r = rule(text);
  expect(r.clauses).toHaveLength(1);
  return r.clauses[0]!;
}

export function streamClause(text: string): StreamClause {
  const s = parseOk(`stream s {\n${text}\n}`).decls[0] as StreamDecl;
  expect(s.clauses).toHaveLength(1);
  return s.clauses[0]!;
}

export function pattern(text: string): Pattern {
  const c = ruleClause(`match ${text}`);
  if (c.kind !== 'match') throw new Error('not a match clause');
  return c.pattern;
}

/** Compact text of an expression, fully parenthesised: checks precedence at a glance. */
export function sexpr(e: Expr): string {
  switch (e.kind) {
    case 'null':
      return 'null';
    case 'bool':
    case 'number':
      return String(e.value);
    case 'string':
      return JSON.stringify(e.value);
    case 'duration':
      return `${e.ms}ms`;
    case 'list':
      return `[${e.items.map(sexpr).join(', ')}]`;
    case 'name':
      return e.name;
    case 'event':
      return '$';
    case 'member':
      return `${sexpr(e.object)}.${e.property}`;
    case 'index':
      return `${sexpr(e.object)}[${sexpr(e.index)}]`;
    case 'call':
      return `${e.callee.name}(${e.args.map(sexpr).join(', ')})`;
    case 'unary':
      return `(${e.op} ${sexpr(e.operand)})`;
    case 'binary':
      return `(${sexpr(e.left)} ${e.op} ${sexpr(e.right)})`;
    case 'matches':
      return `(${sexpr(e.subject)} matches /${e.regex.source}/${e.regex.flags})`;
  }
}

export function sx(text: string): string {
  const { expr: e, diagnostics } = parseExpression(text, 'expr');
  expect(diagnostics.map(show)).toEqual([]);
  return sexpr(e!);
}
