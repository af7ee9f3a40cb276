// Patterns (language §5): links, steps, quantifiers, modifiers, negation, absence, groups.

import { describe, expect, it } from 'vitest';
import type { Group, Step } from '../../src/dsl/ast.js';
import { noSpans, pattern, rule } from './helpers.js';

const name = (n: string) => ({ kind: 'name', name: n });

describe('links', () => {
  it('next, then, then any; links[i] joins elements[i] and elements[i + 1]', () => {
    const p = pattern('a: x next b: y then c: z then any d: w');
    expect(p.elements.map((e) => (e as Step).name.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(p.links.map((l) => l.link)).toEqual(['next', 'then', 'thenAny']);
  });

  it('a single step', () => {
    expect(noSpans(pattern('a: type == "a"'))).toEqual({
      kind: 'pattern',
      elements: [
        {
          kind: 'step',
          negated: false,
          name: { name: 'a' },
          quantifier: null,
          condition: { kind: 'binary', op: '==', left: name('type'), right: { kind: 'string', value: 'a' } },
          modifiers: [],
          absence: null,
        },
      ],
      links: [],
    });
  });

  it('a step named any after then, and then any before it', () => {
    expect(pattern('a: x then any: y').links.map((l) => l.link)).toEqual(['then']);
    expect((pattern('a: x then any: y').elements[1] as Step).name.name).toBe('any');
    const p = pattern('a: x then any any: y');
    expect(p.links.map((l) => l.link)).toEqual(['thenAny']);
    expect((p.elements[1] as Step).name.name).toBe('any');
  });

  it('structural words as step names and as fields in conditions', () => {
    const p = pattern('from: time > 3 then key: source == "x" then within: $.from');
    expect(p.elements.map((e) => (e as Step).name.name)).toEqual(['from', 'key', 'within']);
    expect(noSpans((p.elements[0] as Step).condition)).toEqual({ kind: 'binary', op: '>', left: name('time'), right: { kind: 'number', value: 3 } });
  });
});

describe('quantifiers, written right after the name', () => {
  it.each([
    ['{3}', 3, 3],
    ['{3,}', 3, 'Infinity'],
    ['{2,5}', 2, 5],
    ['{0,4}', 0, 4],
    ['{0,}', 0, 'Infinity'],
    ['{0}', 0, 0],
    ['+', 1, 'Infinity'],
    ['*', 0, 'Infinity'],
    ['?', 0, 1],
  ])('%s', (q, min, max) => {
    const step = noSpans(pattern(`a: x then b${q}: y`).elements[1]) as { quantifier: unknown };
    expect(step.quantifier).toEqual({ min, max, text: q });
    const real = pattern(`b${q}: y`).elements[0] as Step;
    expect(real.quantifier!.max).toBe(max === 'Infinity' ? Infinity : max);
  });

  it('no quantifier is null', () => {
    expect((pattern('a: x').elements[0] as Step).quantifier).toBeNull();
  });
});

describe('modifiers', () => {
  it('greedy, consecutive, combinations, until, in any combination', () => {
    const s = pattern('b+: amount < 5 greedy consecutive combinations until amount > 100').elements[0] as Step;
    expect(noSpans(s.modifiers)).toEqual([
      { kind: 'greedy' },
      { kind: 'consecutive' },
      { kind: 'combinations' },
      { kind: 'until', condition: { kind: 'binary', op: '>', left: name('amount'), right: { kind: 'number', value: 100 } } },
    ]);
    const t = pattern('b{2,}: x until y greedy then c: z').elements[0] as Step;
    expect(t.modifiers.map((m) => m.kind)).toEqual(['until', 'greedy']);
  });
});

describe('negation and absence', () => {
  it('next not / then not between steps', () => {
    const p = pattern('a: x next not b: y then c: z then not d: w then e: v');
    expect(p.elements.map((e) => (e as Step).negated)).toEqual([false, true, false, true, false]);
    expect(p.links.map((l) => l.link)).toEqual(['next', 'then', 'then', 'then']);
  });

  it('then not x: C for D fills absence', () => {
    const p = pattern('order: type == "created" then not paid: type == "paid" for 30m');
    const s = noSpans(p.elements[1]);
    expect(s).toEqual({
      kind: 'step',
      negated: true,
      name: { name: 'paid' },
      quantifier: null,
      condition: { kind: 'binary', op: '==', left: name('type'), right: { kind: 'string', value: 'paid' } },
      modifiers: [],
      absence: { kind: 'duration', ms: 1800000, text: '30m' },
    });
  });

  it('a negated step with a quantifier and modifiers before for', () => {
    const s = pattern('a: x then not b+: y greedy for 5s').elements[1] as Step;
    expect(s.quantifier?.text).toBe('+');
    expect(s.modifiers.map((m) => m.kind)).toEqual(['greedy']);
    expect(s.absence?.ms).toBe(5000);
  });
});

describe('groups', () => {
  it('( PATTERN ) with and without a quantifier, nested', () => {
    const p = pattern('a: x then (b: y next c: z){2,} then (d: w then (e: v)+) then f: u');
    expect(p.elements.map((e) => e.kind)).toEqual(['step', 'group', 'group', 'step']);
    const g = p.elements[1] as Group;
    expect(g.quantifier).toMatchObject({ min: 2, max: Infinity, text: '{2,}' });
    expect(g.pattern.links.map((l) => l.link)).toEqual(['next']);
    const h = p.elements[2] as Group;
    expect(h.quantifier).toBeNull();
    expect((h.pattern.elements[1] as Group).quantifier?.text).toBe('+');
  });

  it('a pattern may start with a group; a condition in parentheses is not a group', () => {
    expect(pattern('(a: x then b: y)* then c: z').elements[0]!.kind).toBe('group');
    const s = pattern('a: (x or y) and z').elements[0] as Step;
    expect(s.condition.kind).toBe('binary');
  });
});

describe('where the pattern ends', () => {
  it('at the next clause word or the closing brace', () => {
    const r = rule(`match
    small{3,}: amount < 5
    then big: amount > 500
  within 10m
  alert high "x"`);
    expect(r.clauses.map((c) => c.kind)).toEqual(['match', 'within', 'alert']);
  });

  it('a clause word right after a link or an operator is a name, not a clause', () => {
    const r = rule('match a: x == 1 then within: y and from\nwithin 1m');
    expect(r.clauses.map((c) => c.kind)).toEqual(['match', 'within']);
  });
});
