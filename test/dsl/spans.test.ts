// Spans: every node carries offset, endOffset, 1-based line and col, born in the lexer.

import { describe, expect, it } from 'vitest';
import type { AlertClause, Expr, MatchClause, RuleDecl, Step, StreamDecl } from '../../src/dsl/ast.js';
import type { Span } from '../../src/core/diagnostics.js';
import { parseOk } from './helpers.js';

const source = [
  'stream tx {', // line 1, offset 0
  '  fields { "x-id": string? }', // line 2, offset 12
  '}', // line 3
  'rule r "T" {', // line 4
  '  match', // line 5
  '    small{3,}: amount < 5 greedy', // line 6
  '    then big: (a + b) * c > first(small).merchant', // line 7
  '  alert high "Card {card_id}"', // line 8
  '}', // line 9
].join('\n');

const text = (s: Span) => source.slice(s.offset, s.endOffset);
const program = parseOk(source);

describe('spans', () => {
  it('declarations span from their keyword to their closing brace', () => {
    expect(program.decls).toHaveLength(2);
    const rule = program.decls[1] as RuleDecl;
    expect(rule.span).toMatchObject({ line: 4, col: 1 });
    expect(text(rule.span)).toMatch(/^rule r "T" \{[^]*\}$/);
    expect(rule.name.span).toMatchObject({ line: 4, col: 6 });
    expect(rule.title!.span).toMatchObject({ line: 4, col: 8, endOffset: rule.title!.span.offset + 3 });
  });

  it('field names and types have their own spans', () => {
    const s = program.decls[0] as StreamDecl;
    const fields = s.clauses[0]!;
    if (fields.kind !== 'fields') throw new Error('fields');
    const f = fields.fields[0]!;
    expect(f.nameSpan).toEqual({ offset: 23, endOffset: 29, line: 2, col: 12 });
    expect(f.typeSpan).toEqual({ offset: 31, endOffset: 37, line: 2, col: 20 });
    expect(f.span).toEqual({ offset: 23, endOffset: 38, line: 2, col: 12 });
    expect(fields.span).toEqual({ offset: 14, endOffset: 40, line: 2, col: 3 });
  });

  it('steps, quantifiers, links, binary operands, members and template holes', () => {
    const rule = program.decls[1] as RuleDecl;
    const match = rule.clauses[0] as MatchClause;
    const s = text;
    expect(s(match.span)).toBe('match\n    small{3,}: amount < 5 greedy\n    then big: (a + b) * c > first(small).merchant');
    expect(match.span).toMatchObject({ line: 5, col: 3 });

    const small = match.pattern.elements[0] as Step;
    expect(s(small.span)).toBe('small{3,}: amount < 5 greedy');
    expect(small.span).toMatchObject({ line: 6, col: 5 });
    expect(small.quantifier!.span).toMatchObject({ line: 6, col: 10, endOffset: small.quantifier!.span.offset + 4 });
    expect(s(small.condition.span)).toBe('amount < 5');
    expect(small.condition.span).toMatchObject({ line: 6, col: 16 });
    expect(small.modifiers[0]!.span).toMatchObject({ line: 6, col: 27 });

    const link = match.pattern.links[0]!;
    expect(link.span).toMatchObject({ line: 7, col: 5 });
    expect(s(link.span)).toBe('then');

    const big = match.pattern.elements[1] as Step;
    const cond = big.condition as Expr & { kind: 'binary' };
    expect(s(cond.span)).toBe('(a + b) * c > first(small).merchant');
    const product = cond.left as Expr & { kind: 'binary' };
    expect(s(product.span)).toBe('(a + b) * c');
    expect(s(product.left.span)).toBe('(a + b)');
    const member = cond.right as Expr & { kind: 'member' };
    expect(s(member.span)).toBe('first(small).merchant');
    expect(s(member.propertySpan)).toBe('merchant');
    expect(member.propertySpan).toMatchObject({ line: 7, col: 42 });
    expect(s((member.object as Expr & { kind: 'call' }).callee.span)).toBe('first');

    const alert = rule.clauses[1] as AlertClause;
    expect(alert.span).toMatchObject({ line: 8, col: 3 });
    expect(s(alert.message.span)).toBe('"Card {card_id}"');
    const hole = alert.message.parts[1] as Expr;
    expect(s(hole.span)).toBe('card_id');
    expect(hole.span).toEqual({ offset: hole.span.offset, endOffset: hole.span.offset + 7, line: 8, col: 21 });
    expect(hole.span.offset).toBe(source.indexOf('card_id'));
  });

  it('every span in a parsed file has line >= 1, col >= 1 and lies inside the text', () => {
    const prog = program;
    const check = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(check);
      if (node === null || typeof node !== 'object') return;
      for (const [k, v] of Object.entries(node)) {
        if (k === 'span' || k.endsWith('Span')) {
          const sp = v as Span;
          expect(sp.line).toBeGreaterThanOrEqual(1);
          expect(sp.col).toBeGreaterThanOrEqual(1);
          expect(sp.offset).toBeLessThanOrEqual(sp.endOffset);
          expect(sp.endOffset).toBeLessThanOrEqual(prog.source.length);
          const before = prog.source.slice(0, sp.offset).split('\n');
          expect([before.length, before[before.length - 1]!.length + 1]).toEqual([sp.line, sp.col]);
        } else check(v);
      }
    };
    check(prog.decls);
  });
});
