// Expressions (language §7): every operator, the precedence levels, postfix forms, literals.

import { describe, expect, it } from 'vitest';
import { parseExpression } from '../../src/dsl/parser.js';
import { expr, show, sx } from './helpers.js';

describe('expression literals', () => {
  it('numbers, durations, strings, booleans, null, lists, $ and names', () => {
    expect(expr('12')).toEqual({ kind: 'number', value: 12 });
    expect(expr('4.5')).toEqual({ kind: 'number', value: 4.5 });
    expect(expr('1e6')).toEqual({ kind: 'number', value: 1e6 });
    expect(expr('1.5e-3')).toEqual({ kind: 'number', value: 0.0015 });
    expect(expr('250ms')).toEqual({ kind: 'duration', ms: 250, text: '250ms' });
    expect(expr('5s')).toEqual({ kind: 'duration', ms: 5000, text: '5s' });
    expect(expr('10m')).toEqual({ kind: 'duration', ms: 600000, text: '10m' });
    expect(expr('2h')).toEqual({ kind: 'duration', ms: 7200000, text: '2h' });
    expect(expr('1d')).toEqual({ kind: 'duration', ms: 86400000, text: '1d' });
    expect(expr('1.5s')).toEqual({ kind: 'duration', ms: 1500, text: '1.5s' });
    expect(expr('"a\\"b\\\\c\\nd\\te\\u{1F600}"')).toEqual({ kind: 'string', value: 'a"b\\c\nd\te\u{1F600}' });
    expect(expr('true')).toEqual({ kind: 'bool', value: true });
    expect(expr('false')).toEqual({ kind: 'bool', value: false });
    expect(expr('null')).toEqual({ kind: 'null' });
    expect(expr('["EUR", "USD"]')).toEqual({
      kind: 'list',
      items: [
        { kind: 'string', value: 'EUR' },
        { kind: 'string', value: 'USD' },
      ],
    });
    expect(expr('[]')).toEqual({ kind: 'list', items: [] });
    expect(expr('$')).toEqual({ kind: 'event' });
    expect(expr('amount')).toEqual({ kind: 'name', name: 'amount' });
  });

  it('-3 is unary minus on 3', () => {
    expect(expr('-3')).toEqual({ kind: 'unary', op: '-', operand: { kind: 'number', value: 3 } });
  });
});

describe('operators', () => {
  it.each([
    ['a or b', 'or'],
    ['a and b', 'and'],
    ['a == b', '=='],
    ['a != b', '!='],
    ['a < b', '<'],
    ['a <= b', '<='],
    ['a > b', '>'],
    ['a >= b', '>='],
    ['a in b', 'in'],
    ['a not in b', 'not in'],
    ['a contains b', 'contains'],
    ['a startswith b', 'startswith'],
    ['a endswith b', 'endswith'],
    ['a + b', '+'],
    ['a - b', '-'],
    ['a * b', '*'],
    ['a / b', '/'],
    ['a % b', '%'],
  ])('%s', (text, op) => {
    expect(expr(text)).toEqual({ kind: 'binary', op, left: { kind: 'name', name: 'a' }, right: { kind: 'name', name: 'b' } });
  });

  it('not, unary minus and matches', () => {
    expect(expr('not a')).toEqual({ kind: 'unary', op: 'not', operand: { kind: 'name', name: 'a' } });
    expect(expr('-a')).toEqual({ kind: 'unary', op: '-', operand: { kind: 'name', name: 'a' } });
    expect(expr('path matches /^\\/api\\/[a-z]+$/i')).toEqual({
      kind: 'matches',
      subject: { kind: 'name', name: 'path' },
      regex: { source: '^\\/api\\/[a-z]+$', flags: 'i' },
    });
    expect(expr('s matches /a b/')).toMatchObject({ regex: { source: 'a b', flags: '' } });
  });

  it('/ after anything but matches is division', () => {
    expect(sx('a / b / c')).toBe('((a / b) / c)');
    expect(sx('$.matches / 2')).toBe('($.matches / 2)');
  });
});

describe('precedence, loosest first: or, and, not, comparison, + -, * / %, unary -, postfix', () => {
  it.each([
    ['a or b and c', '(a or (b and c))'],
    ['a and b or c', '((a and b) or c)'],
    ['a or b or c', '((a or b) or c)'],
    ['a and b and c', '((a and b) and c)'],
    ['not a and b', '((not a) and b)'],
    ['not a == b', '(not (a == b))'],
    ['not not a', '(not (not a))'],
    ['a == b and c != d', '((a == b) and (c != d))'],
    ['a + b == c * d', '((a + b) == (c * d))'],
    ['a + b * c', '(a + (b * c))'],
    ['a * b + c', '((a * b) + c)'],
    ['a - b - c', '((a - b) - c)'],
    ['a * b % c / d', '(((a * b) % c) / d)'],
    ['-a * b', '((- a) * b)'],
    ['- -a', '(- (- a))'],
    ['a - -3', '(a - (- 3))'],
    ['-a.b', '(- a.b)'],
    ['-f(x)[0]', '(- f(x)[0])'],
    ['(a + b) * c', '((a + b) * c)'],
    ['a in [1, 2] or b not in c', '((a in [1, 2]) or (b not in c))'],
    ['not x in l', '(not (x in l))'],
    ['a + 1 matches /x/', '((a + 1) matches /x/)'],
    ['a contains b + c', '(a contains (b + c))'],
    ['b.ts - a.ts < 30s', '((b.ts - a.ts) < 30000ms)'],
    ['amount > 500 and merchant != first(small).merchant', '((amount > 500) and (merchant != first(small).merchant))'],
  ])('%s', (text, tree) => {
    expect(sx(text)).toBe(tree);
  });

  it('comparisons are non-associative: a < b < c is a syntax error', () => {
    const { diagnostics } = parseExpression('a < b < c', 'x');
    expect(diagnostics.map(show)).toEqual(["1:7 dsl/unexpected-token: unexpected '<', expected an operator or the end of the expression"]);
    expect(parseExpression('a == b == c', 'x').diagnostics).toHaveLength(1);
    expect(parseExpression('a in b in c', 'x').diagnostics).toHaveLength(1);
  });
});

describe('postfix: member, index, call', () => {
  it('member access, on names, $ and calls', () => {
    expect(sx('a.b.c')).toBe('a.b.c');
    expect(expr('$.from')).toEqual({ kind: 'member', object: { kind: 'event' }, property: 'from' });
    expect(sx('first(small).merchant')).toBe('first(small).merchant');
  });

  it('after . any word is a field name, reserved or structural', () => {
    for (const word of ['from', 'not', 'and', 'in', 'matches', 'true', 'null', 'then', 'key', 'time', 'source', 'rule']) {
      expect(expr(`$.${word}`)).toEqual({ kind: 'member', object: { kind: 'event' }, property: word });
    }
  });

  it('index', () => {
    expect(expr('v[-1]')).toEqual({
      kind: 'index',
      object: { kind: 'name', name: 'v' },
      index: { kind: 'unary', op: '-', operand: { kind: 'number', value: 1 } },
    });
    expect(sx('headers["x-request-id"]')).toBe('headers["x-request-id"]');
    expect(sx('v[0].f[1]')).toBe('v[0].f[1]');
  });

  it('calls: no arguments, several, nested; env("X") is a call in expressions', () => {
    expect(expr('time()')).toEqual({ kind: 'call', callee: { name: 'time' }, args: [] });
    expect(sx('max(a, b)')).toBe('max(a, b)');
    expect(sx('format(t, "HH:mm", "Europe/Berlin")')).toBe('format(t, "HH:mm", "Europe/Berlin")');
    expect(sx('coalesce(a.b, len(c), [1])')).toBe('coalesce(a.b, len(c), [1])');
    expect(sx('env("X")')).toBe('env("X")');
    expect(sx('count(small) >= 3')).toBe('(count(small) >= 3)');
  });

  it('structural words are plain names in expressions', () => {
    for (const word of ['time', 'key', 'source', 'from', 'match', 'then', 'next', 'any', 'by', 'to', 'id', 'max', 'for', 'until']) {
      expect(expr(word)).toEqual({ kind: 'name', name: word });
    }
  });
});

describe('comments and whitespace', () => {
  it('# runs to the end of the line; newlines are free', () => {
    expect(sx('a # comment\n + # more\n b')).toBe('(a + b)');
  });
});
