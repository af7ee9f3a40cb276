// Compiler bounds on the work one rule text can ask for (docs/limits.md, "Work per request"):
// `max partials` ceiling, quantifier counts, regex program size, rule size. Each is an error at
// the place the limit is passed; a text at the limit compiles.
import { describe, expect, it } from 'vitest';
import { compileSources, MAX_PARTIALS_CEILING, MAX_QUANTIFIER_COUNT, MAX_RULE_NODES } from '../../src/compiler/rule.js';
import { MAX_REGEX_PROGRAM } from '../../src/compiler/regex.js';

const STREAM = 'stream s {\n  key k\n  time ts\n}\n';

function errors(rule: string): { code: string; line: number; col: number; message: string }[] {
  const p = compileSources([{ file: 'r.vigil', text: STREAM + rule }]);
  return p.diagnostics.filter((d) => d.severity === 'error').map(({ code, line, col, message }) => ({ code, line, col, message }));
}

describe('work bounds of a rule text', () => {
  it('the limits are what the docs say', () => {
    expect([MAX_PARTIALS_CEILING, MAX_QUANTIFIER_COUNT, MAX_REGEX_PROGRAM, MAX_RULE_NODES]).toEqual([1_000_000, 10_000, 1_000, 5_000]);
  });

  it('max partials: at most 1,000,000, the error at the number', () => {
    expect(errors('rule r {\n  from s\n  match a: n > 0\n  max partials 1000000\n}\n')).toEqual([]);
    expect(errors('rule r {\n  from s\n  match a: n > 0\n  max partials 1000001\n}\n')).toEqual([
      { code: 'compile/max-partials-too-high', line: 8, col: 16, message: "'max partials' is at most 1,000,000 (got 1000001)" },
    ]);
  });

  it('quantifier counts: at most 10,000, on steps and groups, the error at the quantifier', () => {
    expect(errors('rule r {\n  from s\n  match a: n > 0 then b{1,10000}: n > 1 then c: n < 0\n}\n')).toEqual([]);
    expect(errors('rule r {\n  from s\n  match a: n > 0 then b{1,10001}: n > 1 then c: n < 0\n}\n')).toEqual([
      { code: 'compile/quantifier-too-large', line: 7, col: 24, message: "'{1,10001}': counts are at most 10,000" },
    ]);
    expect(errors('rule r {\n  from s\n  match a: n > 0 then b{20000,}: n > 1 then c: n < 0\n}\n')[0]!.code).toBe('compile/quantifier-too-large');
    expect(errors('rule r {\n  from s\n  match a: n > 0 then (b: n > 1 then c: n > 2){10001} then d: n < 0\n}\n')[0]!.code).toBe('compile/quantifier-too-large');
  });

  it('a regular expression compiles to at most 1,000 instructions, the error at the literal', () => {
    expect(errors('rule r {\n  from s\n  match a: x matches /(a|b){1,240}$/\n}\n')).toEqual([]);
    const e = errors('rule r {\n  from s\n  match a: x matches /(a|b){1,1000}$/\n}\n');
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ code: 'compile/regex-too-large', line: 7, col: 22 });
    expect(e[0]!.message).toContain('4002 instructions; the limit is 1,000');
    // A realistic pattern is far below it.
    expect(errors('rule r {\n  from s\n  match a: x matches /^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$/i\n}\n')).toEqual([]);
  });

  it('one rule has at most 5,000 syntax nodes, the error where the count passes it', () => {
    const sum = (n: number) => Array.from({ length: n }, (_, i) => `n${i}`).join(' + ');
    expect(errors(`rule r {\n  from s\n  match a: ${sum(1000)} > 0\n}\n`)).toEqual([]);
    // One clause is at most 4,000 tokens (the parser's bound); several make a rule too large.
    const holes = Array.from({ length: 1500 }, (_, i) => `{n${i}}`).join(' ');
    const three = (name: string) => `rule ${name} {\n  from s\n  match a: ${sum(900)} > 0\n    then b: ${sum(900)} > 1\n  alert info "${holes}"\n}\n`;
    const e = errors(three('r'));
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ code: 'compile/rule-too-large' });
    expect(e[0]!.line).toBeGreaterThanOrEqual(7); // inside the rule's clauses
    expect(e[0]!.line).toBeLessThanOrEqual(9);
    expect(e[0]!.message).toContain("rule 'r' has more than 5,000 syntax nodes");
    // Other rules of the file still compile.
    const p = compileSources([{ file: 'r.vigil', text: `${STREAM}${three('big')}rule small {\n  from s\n  match a: n > 0\n}\n` }]);
    expect(p.rules.map((r) => r.name)).toEqual(['small']);
  });
});
