// Compile errors of expressions, with their exact positions, and the regex rules (decision 7).
import { describe, expect, it } from 'vitest';
import { compileCondition, compileTemplate } from '../../src/compiler/expressions.js';
import { compileRegex } from '../../src/compiler/regex.js';
import type { Diagnostic } from '../../src/core/diagnostics.js';
import { check, condPlace, ctx, diags, event, parseExpr, parseTemplate, scope, span } from './helpers.js';

function only(ds: Diagnostic[]): Pick<Diagnostic, 'code' | 'message' | 'offset' | 'endOffset' | 'col' | 'line' | 'severity'> {
  expect(ds).toHaveLength(1);
  const { code, message, offset, endOffset, col, line, severity } = ds[0]!;
  return { code, message, offset, endOffset, col, line, severity };
}

describe('function errors', () => {
  it('unknown function, at the callee', () => {
    expect(only(diags('amount > frobnicate(1)', { kind: 'event' }))).toMatchObject({
      code: 'compile/unknown-function',
      message: "unknown function 'frobnicate'",
      severity: 'error',
      offset: 9,
      endOffset: 19,
      col: 10,
    });
  });

  it('env() outside sink settings, at the call', () => {
    expect(only(diags('x == env("HOME")', { kind: 'event' }))).toMatchObject({
      code: 'compile/env-outside-sink',
      message: 'env() is allowed only in sink settings',
      offset: 5,
      endOffset: 16,
    });
    expect(only(diags('env("HOME")', { kind: 'template' })).code).toBe('compile/env-outside-sink');
    expect(only(diags('env("HOME")', condPlace())).code).toBe('compile/env-outside-sink');
  });

  it('arity, with the expected arity in the message', () => {
    expect(only(diags('1 + hour(1, "UTC", 3)', { kind: 'event' }))).toMatchObject({
      code: 'compile/arity',
      message: 'hour() takes 1 or 2 arguments, got 3',
      offset: 4,
      endOffset: 21,
    });
    expect(only(diags('abs()', { kind: 'event' })).message).toBe('abs() takes 1 argument, got 0');
    expect(only(diags('format(1)', { kind: 'event' })).message).toBe('format() takes 2 or 3 arguments, got 1');
    expect(only(diags('coalesce()', { kind: 'event' })).message).toBe('coalesce() takes at least 1 argument, got 0');
    expect(only(diags('min(1, 2, 3)', { kind: 'event' })).message).toBe('min() takes 1 or 2 arguments, got 3');
    expect(only(diags('stream(1)', { kind: 'event' })).message).toBe('stream() takes 0 arguments, got 1');
  });

  it('key() outside templates', () => {
    expect(only(diags('key() == "x"', condPlace()))).toMatchObject({ code: 'compile/key-outside-template', offset: 0, endOffset: 5 });
    expect(diags('key()', { kind: 'template' })).toEqual([]);
  });

  it('count/time need a step name; aggregates need a step field or a list', () => {
    expect(only(diags('count(amount)', condPlace()))).toMatchObject({ code: 'compile/expected-step', offset: 6, endOffset: 12 });
    expect(only(diags('time(ts)', condPlace())).code).toBe('compile/expected-step');
    expect(only(diags('sum(small.amount * 2)', condPlace()))).toMatchObject({
      code: 'compile/aggregate-arg',
      offset: 4,
      endOffset: 20,
    });
    expect(diags('sum(small.amount)', condPlace())).toEqual([]);
    expect(diags('sum($.items)', condPlace())).toEqual([]);
  });

  it('errors inside the arguments of a bad call are reported too', () => {
    const ds = diags('nope(env("X"))', { kind: 'event' });
    expect(ds.map((d) => d.code).sort()).toEqual(['compile/env-outside-sink', 'compile/unknown-function']);
  });
});

describe('step visibility', () => {
  it('a step not bound before the condition', () => {
    // In the condition of `small`, `big` comes later.
    expect(only(diags('amount < big.amount', condPlace('small', [])))).toMatchObject({
      code: 'compile/step-not-bound',
      message: "step 'big' is not bound before step 'small'",
      offset: 9,
      endOffset: 12,
      col: 10,
    });
    expect(only(diags('count(big) > 1', condPlace('small', []))).code).toBe('compile/step-not-bound');
    expect(only(diags('sum(big.x) > 1', { kind: 'until', step: 'small', bound: new Set() })).code).toBe(
      'compile/step-not-bound',
    );
    expect(only(diags('first(big).x', condPlace('small', []))).code).toBe('compile/step-not-bound');
    expect(only(diags('time(big)', condPlace('small', []))).code).toBe('compile/step-not-bound');
  });

  it('the own step and bound steps are fine', () => {
    expect(diags('count(small) > 1 and small.x > big.x', condPlace('big', ['small']))).toEqual([]);
    expect(diags('count(small)', condPlace('small', []))).toEqual([]);
  });

  it('step names in an event place', () => {
    expect(only(diags('user + small', { kind: 'event' }))).toMatchObject({
      code: 'compile/step-not-allowed',
      offset: 7,
      endOffset: 12,
    });
    expect(diags('user + $.small', { kind: 'event' })).toEqual([]);
  });

  it('reports every error, not just the first', () => {
    const ds = diags('foo(1) or big.x > 1 or env("A") or hour()', condPlace('small', []));
    expect(ds.map((d) => d.code)).toEqual([
      'compile/unknown-function',
      'compile/step-not-bound',
      'compile/env-outside-sink',
      'compile/arity',
    ]);
  });

  it('a comparison with null warns', () => {
    const d = only(diags('x != null', { kind: 'event' }));
    expect(d).toMatchObject({ code: 'compile/null-comparison', severity: 'warning', offset: 0, endOffset: 9 });
  });

  it('templates report positions inside the holes', () => {
    const c = ctx({ kind: 'template' });
    compileTemplate(parseTemplate('Card {card}: {nope(1)}'), c);
    expect(only(c.diagnostics)).toMatchObject({ code: 'compile/unknown-function', offset: 14, endOffset: 18 });
  });
});

describe('regex', () => {
  it('is linear time: a catastrophic pattern against 50,000 a’s and a !', () => {
    // Backtracking engines take exponential time here; RE2 answers in one pass. No a-run reaches the end.
    expect(check('s matches /(a+)+$/', { s: 'a'.repeat(50_000) + '!' })).toBe(false);
    expect(check('s matches /(a+)+!$/', { s: 'a'.repeat(50_000) + '!' })).toBe(true);
  });

  it('the catastrophic pattern still answers correctly', () => {
    expect(check('s matches /^(a+)+$/', { s: 'a'.repeat(50_000) + '!' })).toBe(false);
    expect(check('s matches /^(a+)+$/', { s: 'a'.repeat(50_000) })).toBe(true);
    expect(check('s matches /(x+x+)+y/', { s: 'x'.repeat(30_000) })).toBe(false);
  });

  it('rejects a backreference, positioned at the regex literal', () => {
    const c = ctx(condPlace());
    const f = compileCondition(parseExpr('name matches /(a)\\1/'), c);
    const d = only(c.diagnostics);
    expect(d).toMatchObject({ code: 'compile/regex', severity: 'error', offset: 13, endOffset: 20, col: 14 });
    expect(d.message).toContain('backreferences');
    expect(f(scope(event({ name: 'aa' })))).toBe(false);
  });

  it('rejects lookaround and syntax errors', () => {
    for (const re of ['(?=a)b', '(?!a)b', '(?<=a)b', '(?<!a)b']) {
      const ds: Diagnostic[] = [];
      expect(compileRegex({ source: re, flags: '', span: span(0, 1) }, 'f', ds)).toBeNull();
      expect(ds[0]!.code).toBe('compile/regex');
      expect(ds[0]!.message).toContain('lookahead or lookbehind');
    }
    for (const re of ['[a', 'a{2,1}', 'a**', '(']) {
      const ds: Diagnostic[] = [];
      expect(compileRegex({ source: re, flags: '', span: span(0, 1) }, 'f', ds)).toBeNull();
      expect(ds[0]!.code).toBe('compile/regex');
    }
  });

  it('flags: i m s u only', () => {
    for (const flags of ['g', 'y', 'x', 'ii', 'ig']) {
      const ds: Diagnostic[] = [];
      expect(compileRegex({ source: 'a', flags, span: span(3, 8) }, 'f', ds), flags).toBeNull();
      expect(ds[0]).toMatchObject({ code: 'compile/regex', offset: 3, endOffset: 8 });
    }
    for (const flags of ['', 'i', 'm', 's', 'u', 'imsu']) {
      const ds: Diagnostic[] = [];
      expect(compileRegex({ source: 'a', flags, span: span(0, 1) }, 'f', ds)).not.toBeNull();
      expect(ds).toEqual([]);
    }
  });
});
