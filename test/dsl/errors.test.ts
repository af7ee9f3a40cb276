// Syntax errors as data (style principle 4): each kind positioned exactly, recovery at every
// declaration and every clause, the renderer's output, and what survives in `decls`.

import { describe, expect, it } from 'vitest';
import { renderDiagnostic } from '../../src/core/diagnostics.js';
import type { RuleDecl } from '../../src/dsl/ast.js';
import { parseProgram } from '../../src/dsl/parser.js';
import { errorsOf } from './helpers.js';

describe('each error kind, positioned', () => {
  it('dsl/unexpected-token with a readable expected list', () => {
    expect(errorsOf('rule r {\n  match small foo: x\n}')).toEqual([
      "2:15 dsl/unexpected-token: unexpected 'foo', expected ':' or a quantifier",
    ]);
    expect(errorsOf('rule r { within 10 }')).toEqual(["1:17 dsl/unexpected-token: unexpected '10', expected a duration (like 5s)"]);
    expect(errorsOf('rule r { frm a }')).toEqual([
      "1:10 dsl/unexpected-token: unexpected 'frm', expected a rule clause (from, match, within, skip, alert, on timeout, throttle, max partials)",
    ]);
    expect(errorsOf('stream s { wm 5s }')).toEqual([
      "1:12 dsl/unexpected-token: unexpected 'wm', expected a stream clause (key, time, watermark, idle, fields, source, id, max lead, max size)",
    ]);
    expect(errorsOf('stream s { fields { a: strng } }')).toEqual([
      "1:24 dsl/unexpected-token: unexpected 'strng', expected a type (string, number, boolean, time, object, list, any)",
    ]);
    expect(errorsOf('rule r { alert high "x" to pager "y" }')).toEqual([
      "1:28 dsl/unexpected-token: unexpected 'pager', expected 'webhook', 'email', 'mqtt', 'alertmanager' or 'log'",
    ]);
    expect(errorsOf('rule r { alert high "x" to mqtt "t" qos 3 }')).toEqual([
      "1:41 dsl/unexpected-token: unexpected '3', expected '0', '1' or '2'",
    ]);
    expect(errorsOf('rule r { skip to }')).toEqual(["1:18 dsl/unexpected-token: unexpected '}', expected 'next', 'first' or 'last'"]);
    expect(errorsOf('rule r { match a: x then }')).toEqual(["1:26 dsl/unexpected-token: unexpected '}', expected 'any' or a step"]);
    expect(errorsOf('rule r { match a: x matches "y" }')).toEqual([
      '1:29 dsl/unexpected-token: unexpected "y", expected a regular expression /re/flags',
    ]);
    expect(errorsOf('rule r { match a: x.}')).toEqual(["1:21 dsl/unexpected-token: unexpected '}', expected a field name"]);
    expect(errorsOf('rule r { match a: x < y < z }')[0]).toMatch(/^1:25 dsl\/unexpected-token: unexpected '<', expected /);
  });

  it('unexpected end of file', () => {
    expect(errorsOf('rule')).toEqual(['1:5 dsl/unexpected-token: unexpected end of file, expected a name']);
    expect(errorsOf('stream s {\n  key')).toEqual([
      "1:10 dsl/unclosed-brace: missing '}' to close stream 's'",
      '2:6 dsl/unexpected-token: unexpected end of file, expected an expression',
    ]);
  });

  it('dsl/invalid-character', () => {
    expect(errorsOf('rule r {\n  match a: x ≥ 3\n}')).toEqual(["2:14 dsl/invalid-character: invalid character '≥'"]);
    expect(errorsOf('@ rule r {}')).toEqual(["1:1 dsl/invalid-character: invalid character '@'"]);
  });

  it('dsl/unterminated-string, and no second error for the same mistake', () => {
    expect(errorsOf('rule r {\n  alert high "oops\n}')).toEqual(['2:14 dsl/unterminated-string: unterminated string: missing the closing \'"\'']);
    expect(errorsOf('rule r {\n  alert high "oops {a\n}')).toEqual(['2:14 dsl/unterminated-string: unterminated string: missing the closing \'"\'']);
    expect(errorsOf('rule r {\n  match a: x == "y\n  within 5m\n}')).toEqual(['2:17 dsl/unterminated-string: unterminated string: missing the closing \'"\'']);
  });

  it('dsl/bad-escape at the escape', () => {
    expect(errorsOf('rule r { alert high "a\\qb" }')).toEqual([
      "1:23 dsl/bad-escape: bad escape '\\q': the escapes are \\\" \\\\ \\n \\t \\u{...}",
    ]);
  });

  it('dsl/unterminated-regex', () => {
    expect(errorsOf('rule r { match a: s matches /ab\n}')).toEqual([
      "1:29 dsl/unterminated-regex: unterminated regular expression: missing the closing '/'",
    ]);
  });

  it('dsl/bad-template', () => {
    expect(errorsOf('rule r { alert high "a {b" }')).toEqual([
      "1:24 dsl/bad-template: unclosed '{' in template: a hole ends with '}' (write '{{' for a literal brace)",
    ]);
  });

  it('dsl/unclosed-brace: a missing } at the end of the file is one error', () => {
    const { program, diagnostics } = parseProgram('stream s { key k }\nrule r "t" {\n  from s\n  match a: x > 1\n', 'f');
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.code}: ${d.message}`)).toEqual([
      "2:12 dsl/unclosed-brace: missing '}' to close rule 'r'",
    ]);
    expect(program.decls.map((d) => d.name.name)).toEqual(['s', 'r']);
    expect((program.decls[1] as RuleDecl).clauses.map((c) => c.kind)).toEqual(['from', 'match']);
  });

  it('a missing } before the next declaration', () => {
    const { program, diagnostics } = parseProgram('rule a {\n  from s\n\nrule b {\n  from t\n}', 'f');
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`)).toEqual(['1:8 dsl/unclosed-brace']);
    expect(program.decls.map((d) => d.name.name)).toEqual(['a', 'b']);
  });

  it('stray tokens between declarations', () => {
    expect(errorsOf('foo bar\nrule a {}')).toEqual(["1:1 dsl/unexpected-token: unexpected 'foo', expected 'stream', 'rule' or 'test'"]);
    expect(errorsOf('rule a {} }')).toEqual(["1:11 dsl/unexpected-token: unexpected '}', expected 'stream', 'rule' or 'test'"]);
    expect(errorsOf('junk { rule inside } rule b {}')).toEqual(["1:1 dsl/unexpected-token: unexpected 'junk', expected 'stream', 'rule' or 'test'"]);
  });
});

describe('recovery', () => {
  it('a rule with three mistakes in three clauses gives three diagnostics; its good clauses stay', () => {
    const source = [
      'rule r {', //
      '  from a b',
      '  match x y: 1',
      '  within 5',
      '  alert high "x {a}"',
      '}',
    ].join('\n');
    const { program, diagnostics } = parseProgram(source, 'f');
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`)).toEqual([
      '2:10 dsl/unexpected-token',
      '3:11 dsl/unexpected-token',
      '4:10 dsl/unexpected-token',
    ]);
    expect((program.decls[0] as RuleDecl).clauses.map((c) => c.kind)).toEqual(['alert']);
  });

  it('a broken rule followed by a good rule still yields the good rule', () => {
    const { program, diagnostics } = parseProgram('rule bad { match a: x > }\nrule good {\n  from s\n  match a: x > 1\n}', 'f');
    expect(diagnostics).toHaveLength(1);
    expect(program.decls.map((d) => d.name.name)).toEqual(['bad', 'good']);
    expect((program.decls[1] as RuleDecl).clauses.map((c) => c.kind)).toEqual(['from', 'match']);
  });

  it('a declaration with a broken head is left out; the others stay', () => {
    const { program, diagnostics } = parseProgram('rule 3x { from a }\nstream s {}\nrule { }\nrule ok {}', 'f');
    expect(diagnostics.map((d) => `${d.line}:${d.col}`)).toEqual(['1:6', '3:6']);
    expect(program.decls.map((d) => d.name.name)).toEqual(['s', 'ok']);
  });

  it('a clause word on a new line ends a clause with an unclosed ( or a trailing ,', () => {
    const { program, diagnostics } = parseProgram('rule r {\n  from a,\n  match a: (x > 1\n  within 5m\n}', 'f');
    expect(diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`)).toEqual([
      "3:3 unexpected 'match', expected a name",
      "4:3 unexpected 'within', expected an operator or ')'",
    ]);
    expect((program.decls[0] as RuleDecl).clauses.map((c) => c.kind)).toEqual(['within']);
  });

  it('errors in several declarations and stream clauses are all reported, in order', () => {
    const source = 'stream s { key k watermark 5 idle x time ts }\nrule r { within }\nrule q { throttle 1 per 5m by }';
    expect(errorsOf(source).map((e) => e.split(' ')[0])).toEqual(['1:28', '1:35', '2:17', '3:31']);
  });
});

describe('renderDiagnostic', () => {
  it('file:line:col: error: message, the line, a caret under the token', () => {
    const source = 'rule r {\n  match small foo: x\n}';
    const { diagnostics } = parseProgram(source, 'rules/cards.vigil');
    expect(renderDiagnostic(diagnostics[0]!, source)).toBe(
      [
        "rules/cards.vigil:2:15: error: unexpected 'foo', expected ':' or a quantifier",
        '    match small foo: x',
        '                ^^^',
      ].join('\n'),
    );
  });
});

describe('never throws', () => {
  it('on odd input', () => {
    for (const source of ['', ' ', '\n\n', '}', '{', '"', '#', '/', 'matches', 'rule', 'rule r', 'rule r {', '\u0000', '\uD83D', 'rule r { match ( ( ( }']) {
      expect(() => parseProgram(source, 'f')).not.toThrow();
    }
    expect(parseProgram('', 'f')).toEqual({ program: { file: 'f', source: '', decls: [] }, diagnostics: [] });
  });

  it('on deep nesting and very long clauses, with a diagnostic instead', () => {
    const deep = `rule r { match a: ${'('.repeat(1000)}x${')'.repeat(1000)} }`;
    expect(parseProgram(deep, 'f').diagnostics.map((d) => d.code)).toEqual(['dsl/too-deep']);
    const long = `rule r { match a: ${Array.from({ length: 3000 }, (_, i) => `x${i}`).join(' + ')} }`;
    expect(parseProgram(long, 'f').diagnostics.map((d) => d.code)).toEqual(['dsl/too-large']);
  });

  it('on a source that is not a string (an internal error, as data)', () => {
    const { diagnostics } = parseProgram(42 as unknown as string, 'f');
    expect(diagnostics.map((d) => d.code)).toEqual(['dsl/internal']);
  });
});

describe('errors inside one match clause', () => {
  it('reports each broken step of a pattern, positioned', () => {
    const source = 'stream s {\n  key k\n}\nrule r {\n  from s\n  match\n    a: x ==\n    then b: y >\n    then c: z == 3 +\n  within 1m\n}\n';
    const { diagnostics } = parseProgram(source, 'p.vigil');
    expect(diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([
      ['dsl/unexpected-token', 8, 5],
      ['dsl/unexpected-token', 9, 5],
      ['dsl/unexpected-token', 10, 3],
    ]);
    for (const d of diagnostics) expect(d.message).toMatch(/expected an expression/);
  });

  it('a pattern whose steps parse alone but not together still reports one error', () => {
    const source = 'stream s {\n  key k\n}\nrule r {\n  from s\n  match a: x == 1 ) then b: y == 2\n}\n';
    const { diagnostics } = parseProgram(source, 'p.vigil');
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ code: 'dsl/unexpected-token', line: 6, col: 19 });
  });
});
