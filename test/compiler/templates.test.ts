// Templates (alert message, subject, MQTT topic): holes, literal braces, rendering of values.
import { describe, expect, it } from 'vitest';
import { compileTemplate } from '../../src/compiler/expressions.js';
import { chain, ctx, parseTemplate, render, scope, STEPS } from './helpers.js';

const match = chain(
  STEPS,
  ['small', { amount: 1, card_id: 'c1', merchant: 'a' }, Date.UTC(2026, 10, 20, 10, 0, 5)],
  ['small', { amount: 2, card_id: 'c1', merchant: 'b' }, Date.UTC(2026, 10, 20, 10, 0, 6)],
  [
    'big',
    { amount: 900.5, card_id: 'c1', merchant: 'shop', ok: true, meta: { k: [1, 'x'] }, nul: null, ts: 1_800_000_000_000 },
    Date.UTC(2026, 10, 20, 10, 0, 7),
  ],
);
const s = scope(null, match, 'c1', Date.UTC(2026, 10, 20, 10, 0, 7));

describe('templates', () => {
  it.each<[string, string]>([
    ['Card {card_id}: {count(small)} small charges, then {big.amount} at {big.merchant}', 'Card c1: 2 small charges, then 900.5 at shop'],
    ['no holes', 'no holes'],
    ['', ''],
    ['{{literal}} and {{ {card_id} }}', '{literal} and { c1 }'],
    ['}}{{', '}{'],
    ['[{nul}] [{missing}] [{a.amount}]', '[] [] []'],
    ['{ok} {not ok} {1 + 1} {"s" + "t"}', 'true false 2 st'],
    ['{meta}', '{"k":[1,"x"]}'],
    ['{meta.k}', '[1,"x"]'],
    ['{small}', '[{"amount":1,"card_id":"c1","merchant":"a"},{"amount":2,"card_id":"c1","merchant":"b"}]'],
    ['{first(small).merchant}-{last(small).merchant}-{small[0].amount}', 'a-b-1'],
    ['{ts}', '1800000000000'], // a time field is just a number
    ['{format(ts, "yyyy-LL-dd HH:mm", "Europe/Berlin")}', '2027-01-15 09:00'],
    ['{format(time(), "HH:mm:ss")}', '10:00:07'],
    ['{key()}/{stream()}/{topic()}', 'c1/tx/'],
    ['alerts/cards/{card_id}', 'alerts/cards/c1'],
    ['{sum(small.amount)} {avg(small.amount)} {max(small.amount)}', '3 1.5 2'],
    ['{1 / 0}|{-0}', '|0'],
  ])('%s → %s', (src, want) => {
    expect(render(src, s)).toBe(want);
  });

  it('a null or object key renders', () => {
    expect(render('[{key()}]', scope(null, match, null, 0))).toBe('[]');
    expect(render('[{key()}]', scope(null, match, { u: 1 }, 0))).toBe('[{"u":1}]');
  });

  it('renders a match with nothing bound without throwing', () => {
    expect(render('{card_id}|{count(small)}|{stream()}|{key()}', scope(null, null, null, 0))).toBe('|0||');
  });

  it('survives a value too deep for JSON.stringify', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const m = chain(STEPS, ['big', { deep: deep as never, x: 'ok' }]);
    const c = ctx({ kind: 'template' });
    const r = compileTemplate(parseTemplate('{x}:{deep}:{x}'), c);
    expect(r(scope(null, m, null, 0))).toBe('ok::ok');
  });
});
