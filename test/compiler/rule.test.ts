// Rule-level checks of the compiler (language §2–§6): every diagnostic positioned, all of them
// reported at once, and the compiled shape (graph, options) of valid rules.

import { describe, expect, it } from 'vitest';
import { compileSources } from '../../src/compiler/rule.js';

const STREAM = 'stream s {\n  key k\n  time ts\n}\n';

function diags(text: string, file = 'r.vigil') {
  return compileSources([{ file, text }]).diagnostics.map((d) => ({ sev: d.severity, code: d.code, line: d.line, col: d.col, msg: d.message }));
}
function errors(text: string) {
  return diags(text).filter((d) => d.sev === 'error');
}
function at(text: string, needle: string, nth = 0): { line: number; col: number } {
  let i = -1;
  for (let k = 0; k <= nth; k++) i = text.indexOf(needle, i + 1);
  const before = text.slice(0, i).split('\n');
  return { line: before.length, col: before[before.length - 1]!.length + 1 };
}

describe('rule checks', () => {
  const cases: [string, string, string, string][] = [
    ['duplicate step', `rule r {\n  from s\n  match a: x == 1 then a: x == 2\n  within 1m\n}`, 'compile/duplicate-step', 'a: x == 2'],
    ['negated first step', `rule r {\n  from s\n  match not a: x == 1 then b: x == 2\n  within 1m\n}`, 'compile/negated-first-step', 'not a'],
    ['absence not last', `rule r {\n  from s\n  match a: x == 1 then not b: x == 2 for 5s then c: x == 3\n  within 1m\n}`, 'compile/absence-not-last', '5s'],
    ['trailing then not without for', `rule r {\n  from s\n  match a: x == 1 then not b: x == 2\n  within 1m\n}`, 'compile/trailing-then-not', 'not b'],
    ['for on a positive step', `rule r {\n  from s\n  match a: x == 1 then b: x == 2 for 5s\n  within 1m\n}`, 'dsl/unexpected-token', 'for'],
    ['zero quantifier', `rule r {\n  from s\n  match a{0}: x == 1 then b: x == 2\n  within 1m\n}`, 'compile/zero-quantifier', '{0}'],
    ['min above max', `rule r {\n  from s\n  match a{3,2}: x == 1 then b: x == 2\n  within 1m\n}`, 'compile/bad-quantifier', '{3,2}'],
    ['modifier without loop', `rule r {\n  from s\n  match a: x == 1 greedy then b: x == 2\n  within 1m\n}`, 'compile/modifier-needs-loop', 'greedy'],
    ['quantified negation', `rule r {\n  from s\n  match a: x == 1 then not b+: x == 2 then c: x == 3\n  within 1m\n}`, 'compile/quantified-negation', '+'],
    ['conflicting modifiers', `rule r {\n  from s\n  match a+: x == 1 consecutive combinations then b: x == 2\n  within 1m\n}`, 'compile/conflicting-modifiers', 'a+'],
    ['unknown skip step', `rule r {\n  from s\n  match a: x == 1 then b: x == 2\n  within 1m\n  skip to first zz\n}`, 'compile/unknown-step', 'zz'],
    ['duplicate clause', `rule r {\n  from s\n  match a: x == 1\n  within 1m\n  within 2m\n}`, 'compile/duplicate-clause', 'within 2m'],
    ['missing match', `rule r {\n  from s\n}`, 'compile/missing-match', 'r {'],
    ['missing from', `rule r {\n  match a: x == 1\n}`, 'compile/missing-from', 'r {'],
    ['bad within', `rule r {\n  from s\n  match a: x == 1 then b: x == 2\n  within 0s\n}`, 'compile/bad-within', '0s'],
    ['bad throttle count', `rule r {\n  from s\n  match a: x == 1\n  throttle 0 per 1m\n}`, 'compile/bad-count', '0 per'],
    ['bad max partials', `rule r {\n  from s\n  match a: x == 1\n  max partials 1.5\n}`, 'compile/bad-count', '1.5'],
    ['bad webhook url', `rule r {\n  from s\n  match a: x == 1\n  alert high "x" to webhook "ftp://x"\n}`, 'compile/bad-url', '"ftp://x"'],
    ['bad email', `rule r {\n  from s\n  match a: x == 1\n  alert high "x" to email "nobody"\n}`, 'compile/bad-address', '"nobody"'],
    ['negation ends a group', `rule r {\n  from s\n  match a: x == 1 then (b: x == 2 then not c: x == 3) then d: x == 4\n  within 1m\n}`, 'compile/negation-ends-group', 'not c'],
    ['unknown function', `rule r {\n  from s\n  match a: frobnicate(x) == 1\n}`, 'compile/unknown-function', 'frobnicate'],
    ['step not bound before', `rule r {\n  from s\n  match a: x == b.x then b: x == 2\n  within 1m\n}`, 'compile/step-not-bound', 'b.x'],
    ['env outside sink settings', `rule r {\n  from s\n  match a: x == env("HOME")\n}`, 'compile/env-outside-sink', 'env'],
    ['super-linear regex feature', `rule r {\n  from s\n  match a: name matches /(a)\\1/\n}`, 'compile/regex', '/(a)'],
  ];
  it.each(cases)('%s', (_name, body, code, needle) => {
    const text = STREAM + body;
    const es = errors(text);
    const hit = es.find((d) => d.code === code);
    expect(hit, JSON.stringify(es)).toBeDefined();
    expect({ line: hit!.line, col: hit!.col }).toEqual(at(text, needle));
  });

  it('a clause that failed to parse is not also reported missing', () => {
    const es = errors(STREAM + 'rule r {\n  from s\n  match a: x == 1 then b: x == 2 for 5s\n}');
    expect(es.map((e) => e.code)).toEqual(['dsl/unexpected-token']);
  });

  it('duplicate rule across files, positioned at the second declaration', () => {
    const text = STREAM + 'rule r {\n  from s\n  match a: x == 1\n}\n';
    const p = compileSources([
      { file: 'a.vigil', text },
      { file: 'b.vigil', text: 'rule r {\n  from s\n  match a: x == 2\n}\n' },
    ]);
    const d = p.diagnostics.find((x) => x.code === 'compile/duplicate-rule');
    expect(d).toMatchObject({ file: 'b.vigil', line: 1, col: 6 });
    expect(p.rules.map((r) => r.name)).toEqual(['r']);
  });

  it('reports every error of a rule at once (three mistakes → three positioned errors)', () => {
    const text = STREAM + 'rule r {\n  from s\n  match not a: x == 1 then b: nope(x) then b: y == 2\n  within 1m\n}\n';
    const es = errors(text);
    expect(es.map((e) => e.code).sort()).toEqual(['compile/duplicate-step', 'compile/negated-first-step', 'compile/unknown-function']);
    for (const e of es) expect(e.line).toBe(7);
  });

  it('warns (does not fail) on an implicit stream and on a held match without within', () => {
    const ds = diags('rule r {\n  from undeclared\n  match a: x == 1 then b: x == 2\n}\n');
    expect(ds.filter((d) => d.sev === 'error')).toEqual([]);
    expect(ds.map((d) => d.code).sort()).toEqual(['compile/implicit-stream', 'compile/unbounded-wait']);
    expect(ds.find((d) => d.code === 'compile/implicit-stream')).toMatchObject({ line: 2, col: 8 });
  });

  it('does not warn about held matches under skip none, with within, or for one plain step', () => {
    for (const body of ['match a: x == 1 then b: x == 2\n  skip none', 'match a: x == 1 then b: x == 2\n  within 1m', 'match a: x == 1', 'match a: x == 1 then not b: x == 2 for 5m']) {
      expect(diags(STREAM + `rule r {\n  from s\n  ${body}\n}`)).toEqual([]);
    }
  });

  it('keys: error when several streams do not all declare a key and no by is given', () => {
    const text = 'stream a {\n  key k\n}\nstream b {\n  time ts\n}\nrule r {\n  from a, b\n  match x: v == 1\n}\n';
    expect(errors(text).map((e) => e.code)).toEqual(['compile/key-mismatch']);
    expect(errors(text.replace('from a, b', 'from a, b by user'))).toEqual([]);
  });

  it('compiles options: within, skip, max partials, throttle; a missing alert clause still alerts', () => {
    const p = compileSources([{ file: 'r', text: STREAM + 'rule r "T" {\n  from s\n  match a: x == 1 then b: x == 2\n  within 10m\n  skip to last a\n  max partials 5\n  throttle 2 per 1h\n}' }]);
    const r = p.rules[0]!;
    expect(r.nfa).toMatchObject({ withinMs: 600_000, skip: 'toLast', maxPartials: 5 });
    expect(r.throttle).toMatchObject({ count: 2, perMs: 3_600_000 });
    expect(r.alert.severity).toBe('info');
    expect(r.title).toBe('T');
  });

  it('fingerprint: equal when only actions or texts change, different when the pattern changes', () => {
    const base = 'rule r {\n  from s\n  match a: x == 1 then b: x == 2\n  within 1m\n  alert high "one"\n}';
    const fp = (t: string) => compileSources([{ file: 'r', text: STREAM + t }]).rules[0]!.fingerprint;
    expect(fp(base.replace('"one"', '"two" to log'))).toBe(fp(base));
    expect(fp('\n\n' + base)).toBe(fp(base));
    expect(fp(base.replace('x == 2', 'x == 3'))).not.toBe(fp(base));
    expect(fp(base.replace('1m', '2m'))).not.toBe(fp(base));
  });

  it('relevance prefilter: only for rules where skipping unusable events changes nothing', () => {
    const rel = (m: string) => compileSources([{ file: 'r', text: STREAM + `rule r {\n  from s\n  match ${m}\n  within 1m\n}` }]).rules[0]!.relevant;
    expect(rel('a: x == 1 then b: x == 2')).not.toBeNull();
    expect(rel('a: x == 1 next b: x == 2')).toBeNull();
    expect(rel('a+: x == 1 greedy then b: x == 2')).toBeNull();
    expect(rel('a: x == 1 then b: x > a.x')).toBeNull();
    expect(rel('a: x == 1 then b: y == 2 and x > a.x')).not.toBeNull();
  });
});

describe('names', () => {
  it('a rule or stream name longer than 200 characters is an error (names key the stored state)', () => {
    const long = 'r'.repeat(201);
    const es = errors(`stream ${long}s {\n  key k\n}\nrule ${long} {\n  from s\n  match a: x == 1\n}\n`);
    expect(es.filter((e) => e.code === 'compile/name-too-long').map((e) => e.line)).toEqual([1, 4]);
  });
});
