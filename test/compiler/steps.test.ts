// Step references over hand-built BoundNode chains: own-step running aggregates, `until`,
// other steps, templates (language §7, decisions 5 and 6).
import { describe, expect, it } from 'vitest';
import { compileCondition, compileValue, referencedSteps, type ExprPlace } from '../../src/compiler/expressions.js';
import type { Json } from '../../src/core/event.js';
import { chain, ctx, event, parseExpr, scope, STEPS } from './helpers.js';

function val(src: string, place: ExprPlace, s: ReturnType<typeof scope>): Json {
  const c = ctx(place);
  const f = compileValue(parseExpr(src), c);
  expect(c.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return f(s);
}

// Chain: a, small×3, (other steps interleaved), candidate.
const bound = chain(
  STEPS,
  ['a', { amount: 100, merchant: 'm0', user: 'u1' }, 1000],
  ['small', { amount: 1, merchant: 'm1', meta: { n: 10 } }, 2000],
  ['small', { amount: 2, merchant: 'm2', meta: { n: 20 } }, 3000],
  ['small', { amount: 'x', merchant: 'm3', meta: { n: 'no' } }, 4000],
);
const cand = event({ amount: 4, merchant: 'm4', meta: { n: 40 }, small: 'field-named-small' }, 5000, {
  stream: 'payments',
  topic: 'bank/eu/tx',
});

describe('in the own step condition (running: bound events then the candidate)', () => {
  const own: ExprPlace = { kind: 'condition', step: 'small', bound: new Set(['a']) };
  const s = scope(cand, bound);
  it.each<[string, unknown]>([
    ['amount', 4],
    ['small.amount', 4], // own name = the candidate
    ['small.meta.n', 40],
    ['$.amount', 4],
    ['$.small', 'field-named-small'],
    ['count(small)', 4],
    ['sum(small.amount)', 7], // 1 + 2 + 4; 'x' ignored
    ['avg(small.amount)', 7 / 3],
    ['min(small.amount)', 1],
    ['max(small.amount)', 4],
    ['sum(small.meta.n)', 70],
    ['first(small).merchant', 'm1'],
    ['last(small).merchant', 'm4'],
    ['small[0].merchant', 'm1'],
    ['small[2].merchant', 'm3'],
    ['small[3].merchant', 'm4'],
    ['small[4]', null],
    ['small[-1].merchant', 'm4'],
    ['small[-2].merchant', 'm3'],
    ['small[-4].merchant', 'm1'],
    ['small[-5]', null],
    ['small["merchant"]', 'm4'],
    ['time(small)', 5000],
    ['time()', 5000],
    ['time(a)', 1000],
    ['a.amount', 100],
    ['count(a)', 1],
    ['stream()', 'payments'],
    ['topic()', 'bank/eu/tx'],
    ['topic(1)', 'eu'],
    ['topic(-1)', 'tx'],
    ['topic(3)', null],
    ['amount - first(small).amount', 3],
    ['small', [{ amount: 1, merchant: 'm1', meta: { n: 10 } }, { amount: 2, merchant: 'm2', meta: { n: 20 } }, { amount: 'x', merchant: 'm3', meta: { n: 'no' } }, cand.data]],
  ])('%s → %j', (src, want) => {
    expect(val(src, own, s)).toEqual(want);
  });

  it('the first event of a step: only the candidate', () => {
    const s0 = scope(cand, chain(STEPS, ['a', { amount: 100 }]));
    expect(val('count(small)', own, s0)).toBe(1);
    expect(val('sum(small.amount)', own, s0)).toBe(4);
    expect(val('first(small).merchant', own, s0)).toBe('m4');
    expect(val('small[0].merchant', own, s0)).toBe('m4');
    expect(val('small[1]', own, s0)).toBeNull();
  });

  it('a condition with running aggregates', () => {
    const c = ctx(own);
    const f = compileCondition(parseExpr('sum(small.amount) < 10 and amount > first(small).amount'), c);
    expect(c.diagnostics).toEqual([]);
    expect(f(s)).toBe(true);
  });
});

describe('in the own step `until` (only the events already bound)', () => {
  const until: ExprPlace = { kind: 'until', step: 'small', bound: new Set(['a']) };
  const s = scope(cand, bound);
  it.each<[string, unknown]>([
    ['amount', 4], // bare names are still the candidate's fields
    ['count(small)', 3],
    ['sum(small.amount)', 3],
    ['max(small.amount)', 2],
    ['small.merchant', 'm3'], // the last bound one
    ['last(small).merchant', 'm3'],
    ['small[-1].merchant', 'm3'],
    ['small[3]', null],
    ['time(small)', 4000],
    ['time()', 5000],
  ])('%s → %j', (src, want) => {
    expect(val(src, until, s)).toEqual(want);
  });

  it('before the loop took anything: empty aggregates', () => {
    const s0 = scope(cand, chain(STEPS, ['a', { amount: 100 }]));
    expect(val('count(small)', until, s0)).toBe(0);
    expect(val('sum(small.amount)', until, s0)).toBeNull();
    expect(val('avg(small.amount)', until, s0)).toBeNull();
    expect(val('min(small.amount)', until, s0)).toBeNull();
    expect(val('first(small)', until, s0)).toBeNull();
    expect(val('small.amount', until, s0)).toBeNull();
    expect(val('small', until, s0)).toBeNull();
    expect(val('time(small)', until, s0)).toBeNull();
  });
});

describe('another step in a condition', () => {
  const place: ExprPlace = { kind: 'condition', step: 'big', bound: new Set(['a', 'small']) };
  const s = scope(cand, bound);
  it.each<[string, unknown]>([
    ['small.amount', 'x'], // field of the last bound event
    ['count(small)', 3],
    ['sum(small.amount)', 3],
    ['avg(small.amount)', 1.5],
    ['small[0].amount', 1],
    ['small[-1].merchant', 'm3'],
    ['first(small).merchant', 'm1'],
    ['last(small).merchant', 'm3'],
    ['time(small)', 4000],
    ['big.amount', 4], // own step
    ['count(big)', 1],
    ['first(big).amount', 4],
    ['merchant != first(small).merchant', true],
    ['merchant in [small[0].merchant, "m4"]', true],
  ])('%s → %j', (src, want) => {
    expect(val(src, place, s)).toEqual(want);
  });

  it('a step that could be bound but is not yet: null, count 0', () => {
    const s1 = scope(cand, chain(STEPS, ['small', { amount: 1 }]));
    expect(val('a.amount', place, s1)).toBeNull();
    expect(val('count(a)', place, s1)).toBe(0);
    expect(val('sum(a.amount)', place, s1)).toBeNull();
    expect(val('first(a)', place, s1)).toBeNull();
    expect(val('a[0]', place, s1)).toBeNull();
    expect(val('time(a)', place, s1)).toBeNull();
    expect(val('a', place, s1)).toBeNull();
    expect(val('exists(a)', place, s1)).toBe(false);
    expect(val('exists(small)', place, s1)).toBe(true);
    const c = ctx(place);
    expect(compileCondition(parseExpr('a.amount > 1'), c)(s1)).toBe(false);
    expect(compileCondition(parseExpr('a.amount != 1'), c)(s1)).toBe(false);
  });

  it('with no events bound at all (bound = null)', () => {
    const s0 = scope(cand, null);
    expect(val('count(small)', place, s0)).toBe(0);
    expect(val('small.amount', place, s0)).toBeNull();
    expect(val('count(big)', place, s0)).toBe(1);
  });

  it('step names win over fields of the same name; $ reaches the field', () => {
    expect(val('$.small', place, s)).toBe('field-named-small');
    expect(val('small', place, s)).toEqual([
      { amount: 1, merchant: 'm1', meta: { n: 10 } },
      { amount: 2, merchant: 'm2', meta: { n: 20 } },
      { amount: 'x', merchant: 'm3', meta: { n: 'no' } },
    ]);
  });
});

describe('in a template (the whole match, no candidate)', () => {
  const place: ExprPlace = { kind: 'template' };
  const match = chain(
    STEPS,
    ['small', { amount: 1, card: 'c1' }, 1000],
    ['small', { amount: 2, card: 'c1' }, 2000],
    ['big', { amount: 900, card: 'c1', merchant: 'shop' }, 3000],
  );
  const s = scope(null, match, 'c1', 3000);
  it.each<[string, unknown]>([
    ['amount', 900], // bare names: the last bound event
    ['$.merchant', 'shop'],
    ['count(small)', 2],
    ['sum(small.amount)', 3],
    ['small.amount', 2],
    ['big.merchant', 'shop'],
    ['first(small).amount', 1],
    ['small', [{ amount: 1, card: 'c1' }, { amount: 2, card: 'c1' }]],
    ['key()', 'c1'],
    ['time()', 3000],
    ['time(small)', 2000],
    ['stream()', 'tx'],
    ['topic()', null],
    ['count(a)', 0],
    ['a.amount', null],
  ])('%s → %j', (src, want) => {
    expect(val(src, place, s)).toEqual(want);
  });
});

describe('referencedSteps', () => {
  it('collects every step name, wherever it appears', () => {
    const e = parseExpr('amount > first(small).amount and sum(big.x) < 3 or a[0].y == $.b or b');
    expect([...referencedSteps(e, STEPS)].sort()).toEqual(['a', 'b', 'big', 'small']);
    expect(referencedSteps(parseExpr('amount > 1 and $.small == 2'), STEPS).size).toBe(0);
  });
});
