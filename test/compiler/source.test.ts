// The compiler on ASTs from the real parser (src/dsl/parser.ts): source text in, results and
// diagnostics with file positions out.
import { describe, expect, it } from 'vitest';
import { compileCondition, compileTemplate, compileValue, type ExprPlace } from '../../src/compiler/expressions.js';
import type { Diagnostic } from '../../src/core/diagnostics.js';
import type { Json, StreamEvent } from '../../src/core/event.js';
import type { Expr, RuleDecl, Step, Template } from '../../src/dsl/ast.js';
import { parseExpression, parseProgram } from '../../src/dsl/parser.js';
import { chain, event, scope, STEPS } from './helpers.js';

function expr(src: string): Expr {
  const r = parseExpression(src, 'e.vigil');
  expect(r.diagnostics).toEqual([]);
  return r.expr!;
}

function cond(src: string, data: { [k: string]: Json }, place: ExprPlace = { kind: 'event' }): boolean {
  const diagnostics: Diagnostic[] = [];
  const f = compileCondition(expr(src), { file: 'e.vigil', diagnostics, stepNames: STEPS, place });
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return f(scope(event(data)));
}

function val(src: string, data: { [k: string]: Json }, ev?: Partial<StreamEvent>): Json {
  const diagnostics: Diagnostic[] = [];
  const f = compileValue(expr(src), { file: 'e.vigil', diagnostics, stepNames: new Map(), place: { kind: 'event' } });
  expect(diagnostics).toEqual([]);
  return f(scope({ ...event(data), ...ev }));
}

describe('from source text', () => {
  it.each<[string, boolean]>([
    ['f and f or t', true],
    ['t or t and f', true],
    ['not f and f', false],
    ['not n > 50', true],
    ['n + m * 2 == 16', true],
    ['-n + 12 == 2', true],
    ['n % 4 * 2 == 4', true],
    ['n - m - 2 == 5', true],
    ['n > 5 and m < 5 or f', true],
    ['s matches /^a\\/b$/', false],
    ['p matches /^a\\/b$/', true],
    ['s matches /B/i and not (s matches /B/)', true],
    ['cur in ["EUR", "USD"] and cur not in ["GBP"]', true],
    ['$.from == "x" and $["x-id"] == 7', true],
    ['amount > 1.5s', true],
  ])('%s → %s', (src, want) => {
    expect(cond(src, { f: false, t: true, n: 10, m: 3, s: 'abc', p: 'a/b', cur: 'EUR', from: 'x', 'x-id': 7, amount: 2000 })).toBe(want);
  });

  it('values', () => {
    expect(val('hour(ts, "Europe/Berlin")', { ts: Date.UTC(2026, 6, 1, 22) })).toBe(0);
    expect(val('topic(1)', {}, { topic: 'bank/eu/tx' })).toBe('eu');
    expect(val('coalesce(a, b, "d")', { b: 0 })).toBe(0);
    expect(val('1e6 + 250ms', {})).toBe(1_000_250);
  });

  it('compiles the steps and the alert of a parsed rule', () => {
    const src = [
      'rule card_testing {',
      '  from transactions',
      '  match',
      '    small{3,}: amount < 5',
      '    then big: amount > 500 and merchant != first(small).merchant',
      '  alert high "Card {card_id}: {count(small)} small charges, then {big.amount} at {big.merchant}"',
      '}',
    ].join('\n');
    const { program, diagnostics } = parseProgram(src, 'r.vigil');
    expect(diagnostics).toEqual([]);
    const rule = program.decls[0] as RuleDecl;
    const match = rule.clauses.find((c) => c.kind === 'match')!;
    const steps = (match.kind === 'match' ? match.pattern.elements : []) as Step[];
    const alert = rule.clauses.find((c) => c.kind === 'alert')!;
    const ds: Diagnostic[] = [];
    const ids = new Map([
      ['small', 0],
      ['big', 1],
    ]);
    const small = compileCondition(steps[0]!.condition, {
      file: 'r.vigil', diagnostics: ds, stepNames: ids, place: { kind: 'condition', step: 'small', bound: new Set() },
    });
    const big = compileCondition(steps[1]!.condition, {
      file: 'r.vigil', diagnostics: ds, stepNames: ids, place: { kind: 'condition', step: 'big', bound: new Set(['small']) },
    });
    const message = compileTemplate((alert as { message: Template }).message, {
      file: 'r.vigil', diagnostics: ds, stepNames: ids, place: { kind: 'template' },
    });
    expect(ds).toEqual([]);
    const smalls = chain(ids, ['small', { amount: 1, merchant: 'a', card_id: 'c' }], ['small', { amount: 2, merchant: 'b', card_id: 'c' }], ['small', { amount: 3, merchant: 'c', card_id: 'c' }]);
    expect(small(scope(event({ amount: 4 }), smalls))).toBe(true);
    expect(small(scope(event({ amount: 6 }), smalls))).toBe(false);
    expect(big(scope(event({ amount: 900, merchant: 'a' }), smalls))).toBe(false); // same merchant as the first small
    expect(big(scope(event({ amount: 900, merchant: 'z' }), smalls))).toBe(true);
    const whole = { nameId: 1, event: event({ amount: 900, merchant: 'z', card_id: 'c' }), prev: smalls, length: 4 };
    expect(message(scope(null, whole, 'c'))).toBe('Card c: 3 small charges, then 900 at z');
  });

  it('diagnostics point into the file', () => {
    const src = 'rule r {\n  from s\n  match a: x > 1\n    then b: y < c.y and env("X") == 1\n  alert info "{nope()}"\n}';
    const { program, diagnostics } = parseProgram(src, 'r.vigil');
    expect(diagnostics).toEqual([]);
    const rule = program.decls[0] as RuleDecl;
    const m = rule.clauses.find((c) => c.kind === 'match');
    const steps = (m?.kind === 'match' ? m.pattern.elements : []) as Step[];
    const ids = new Map([['a', 0], ['b', 1], ['c', 2]]);
    const ds: Diagnostic[] = [];
    compileCondition(steps[1]!.condition, { file: 'r.vigil', diagnostics: ds, stepNames: ids, place: { kind: 'condition', step: 'b', bound: new Set(['a']) } });
    const alert = rule.clauses.find((c) => c.kind === 'alert') as { message: Template };
    compileTemplate(alert.message, { file: 'r.vigil', diagnostics: ds, stepNames: ids, place: { kind: 'template' } });
    expect(ds.map((d) => [d.code, d.line, d.col])).toEqual([
      ['compile/step-not-bound', 4, 17],
      ['compile/env-outside-sink', 4, 25],
      ['compile/unknown-function', 5, 16],
    ]);
  });

  it('a rejected regex is positioned at the literal in the file', () => {
    const diagnostics: Diagnostic[] = [];
    const r = parseExpression('name matches /(a)\\1/', 'e.vigil');
    compileCondition(r.expr!, { file: 'e.vigil', diagnostics, stepNames: new Map(), place: { kind: 'event' } });
    expect(diagnostics.map((d) => [d.code, d.col, d.endOffset - d.offset])).toEqual([['compile/regex', 14, 7]]);
  });
});
