// Templates (language §4): holes, literal braces, escapes, and where hole expressions point.

import { describe, expect, it } from 'vitest';
import type { AlertClause, Expr, Template } from '../../src/dsl/ast.js';
import { parseProgram } from '../../src/dsl/parser.js';
import { errorsOf, noSpans, ruleClause, sexpr } from './helpers.js';

function message(text: string): Template {
  return (ruleClause(`alert info ${text}`) as AlertClause).message;
}
function parts(text: string): unknown[] {
  return message(text).parts.map((p) => (typeof p === 'string' ? p : sexpr(p)));
}

describe('template parts', () => {
  it('alternate literal text and hole expressions; empty literal runs are left out', () => {
    expect(parts('"plain"')).toEqual(['plain']);
    expect(parts('""')).toEqual([]);
    expect(parts('"{a}"')).toEqual(['a']);
    expect(parts('"{a}{b}"')).toEqual(['a', 'b']);
    expect(parts('"x {a} y {b.c} z"')).toEqual(['x ', 'a', ' y ', 'b.c', ' z']);
    expect(parts('"{count(small)} small, then {big.amount * 2 + 1}"')).toEqual(['count(small)', ' small, then ', '((big.amount * 2) + 1)']);
  });

  it('{{ and }} are literal braces', () => {
    expect(parts('"{{literal}} {a} }}{{"')).toEqual(['{literal} ', 'a', ' }{']);
    expect(parts('"{{{a}}}"')).toEqual(['{', 'a', '}']);
  });

  it('escapes in the literal text are decoded', () => {
    expect(parts('"a\\"b\\\\c\\n\\t\\u{1F600} {x}"')).toEqual(['a"b\\c\n\t\u{1F600} ', 'x']);
  });

  it('string literals inside a hole are written with escaped quotes', () => {
    expect(parts('"at {format(t, \\"HH:mm\\", \\"Europe/Berlin\\")}!"')).toEqual(['at ', 'format(t, "HH:mm", "Europe/Berlin")', '!']);
    expect(parts('"{coalesce(x, \\"}\\")}"')).toEqual(['coalesce(x, "}")']);
  });

  it('the email subject and the mqtt topic are templates too', () => {
    const c = ruleClause('alert info "m" to email "e" subject "S {a}" to mqtt "t/{b}/{{x}}"') as AlertClause;
    expect(noSpans(c.sinks)).toEqual([
      { kind: 'email', to: [{ kind: 'string', value: 'e' }], subject: { kind: 'template', parts: ['S ', { kind: 'name', name: 'a' }] } },
      { kind: 'mqtt', topic: { kind: 'template', parts: ['t/', { kind: 'name', name: 'b' }, '/{x}'] }, qos: null, retain: false },
    ]);
  });
});

describe('template spans point into the rules file', () => {
  it('the template spans the string literal; a hole expression spans its text', () => {
    const source = 'rule r {\n  alert high "Card {card_id}: {count(small)}"\n}';
    const { program, diagnostics } = parseProgram(source, 'f.vigil');
    expect(diagnostics).toEqual([]);
    const msg = (program.decls[0]!.clauses[0] as AlertClause).message;
    expect(msg.span).toEqual({ offset: 22, endOffset: 54, line: 2, col: 14 });
    const hole = msg.parts[1] as Expr;
    expect(source.slice(hole.span.offset, hole.span.endOffset)).toBe('card_id');
    expect(hole.span).toEqual({ offset: 29, endOffset: 36, line: 2, col: 21 });
    const call = msg.parts[3] as Expr & { kind: 'call' };
    expect(source.slice(call.span.offset, call.span.endOffset)).toBe('count(small)');
    expect(call.span).toMatchObject({ line: 2, col: 32 });
    expect(call.args[0]!.span).toMatchObject({ offset: 46, line: 2, col: 38 });
  });

  it('after escapes, offsets still map to the source', () => {
    const source = 'rule r { alert info "\\u{1F600}\\"{a.b}\\" {f(\\"x\\")}" }';
    const { program, diagnostics } = parseProgram(source, 'f.vigil');
    expect(diagnostics).toEqual([]);
    const msg = (program.decls[0]!.clauses[0] as AlertClause).message;
    const member = msg.parts[1] as Expr;
    expect(source.slice(member.span.offset, member.span.endOffset)).toBe('a.b');
    expect(member.span.col).toBe(member.span.offset + 1);
    const call = msg.parts[3] as Expr & { kind: 'call' };
    expect(source.slice(call.span.offset, call.span.endOffset)).toBe('f(\\"x\\")');
    const arg = call.args[0]!;
    expect(source.slice(arg.span.offset, arg.span.endOffset)).toBe('\\"x\\"');
    expect(arg).toMatchObject({ kind: 'string', value: 'x' });
  });
});

describe('template errors', () => {
  it('an unclosed {, a stray }, an empty hole', () => {
    expect(errorsOf('rule r { alert info "a {b" }')).toEqual([
      "1:24 dsl/bad-template: unclosed '{' in template: a hole ends with '}' (write '{{' for a literal brace)",
    ]);
    expect(errorsOf('rule r { alert info "a } b" }')).toEqual(["1:24 dsl/bad-template: stray '}' in template: write '}}' for a literal brace"]);
    expect(errorsOf('rule r { alert info "a {} b" }')).toEqual([
      "1:24 dsl/bad-template: empty hole '{}' in template: write an expression, or '{{' for a literal brace",
    ]);
  });

  it('a syntax error in a hole is positioned in the file', () => {
    expect(errorsOf('rule r {\n  alert info "x {a +} y"\n}')).toEqual(["2:21 dsl/unexpected-token: unexpected '}', expected an expression"]);
    expect(errorsOf('rule r {\n  alert info "x {a b} y"\n}')).toEqual([
      "2:20 dsl/unexpected-token: unexpected 'b', expected an operator or '}'",
    ]);
    expect(errorsOf('rule r { alert info "{a ~ b}" }')).toEqual(["1:25 dsl/invalid-character: invalid character '~'"]);
  });

  it('errors in the subject and the topic, and several in one template', () => {
    expect(errorsOf('rule r { alert info "ok" to email "e" subject "{" to mqtt "}" }')).toEqual([
      "1:48 dsl/bad-template: unclosed '{' in template: a hole ends with '}' (write '{{' for a literal brace)",
      "1:60 dsl/bad-template: stray '}' in template: write '}}' for a literal brace",
    ]);
    expect(errorsOf('rule r { alert info "} {+} }" }').map((e) => e.split(' ')[0])).toEqual(['1:22', '1:25', '1:28']);
  });
});
