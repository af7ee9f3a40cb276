// Fuzz-ish: random JSON events into compiled conditions, values and templates must never throw,
// and conditions always give a boolean. Deterministic (seeded) so a failure reproduces.
import { describe, expect, it } from 'vitest';
import { compileCondition, compileTemplate, compileValue, type ExprPlace } from '../../src/compiler/expressions.js';
import { checkEvent, compileStreams } from '../../src/compiler/streams.js';
import type { BoundNode, Json } from '../../src/core/event.js';
import { parseProgram } from '../../src/dsl/parser.js';
import { ctx, event, parseExpr, parseTemplate, STEPS } from './helpers.js';

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

const FIELDS = ['amount', 'merchant', 'ts', 'meta', 'list', 's', 'n', 'constructor', '__proto__', 'toString'];
const STRINGS = ['', 'a', 'abc', 'EUR', '😀', '2026-11-20T10:00:07Z', 'Europe/Berlin', 'x'.repeat(100), '\u0000', 'constructor'];

function randomJson(r: () => number, depth = 0): Json {
  const k = Math.floor(r() * (depth > 3 ? 5 : 7));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2: {
      const pick = [0, -0, 1, -1, 0.5, 1e308, -1e308, 5e-324, 1_700_000_000_000, 2 ** 53, 3, 500];
      return pick[Math.floor(r() * pick.length)]!;
    }
    case 3:
      return r() * 2000 - 1000;
    case 4:
      return STRINGS[Math.floor(r() * STRINGS.length)]!;
    case 5: {
      const n = Math.floor(r() * 4);
      return Array.from({ length: n }, () => randomJson(r, depth + 1));
    }
    default: {
      const o: { [k: string]: Json } = {};
      const n = Math.floor(r() * 4);
      for (let i = 0; i < n; i++) o[FIELDS[Math.floor(r() * FIELDS.length)]!] = randomJson(r, depth + 1);
      return o;
    }
  }
}

function randomEvent(r: () => number): { [k: string]: Json } {
  const o: { [k: string]: Json } = {};
  for (const f of FIELDS) if (r() < 0.6) o[f] = randomJson(r);
  return o;
}

const CONDITIONS = [
  'amount > 500',
  'amount < 5 and merchant != first(small).merchant',
  'merchant in ["a", "EUR", 3, null]',
  'merchant not in ["a"]',
  'list contains 3 or s startswith "a" or s endswith "c"',
  's matches /^(a+)+$/i',
  'meta.amount + amount * 2 - n / 0 % 3 > -1',
  'hour(ts, "Europe/Berlin") >= 22 or weekday(ts, s) == 7',
  'format(ts, s, merchant) == "x" or date(ts) == "2026-11-20"',
  'len(s) > 2 and lower(s) == upper(s) or abs(n) == round(n) or floor(n) < ceil(n)',
  'coalesce(missing, meta, list) == list and exists(meta.x)',
  'count(small) > 1 and sum(small.amount) > avg(small.amount) and min(small.amount) < max(small.amount)',
  'small[0].amount == small[-1].amount or small[n].amount > 1 or small[s] == 1',
  'time(small) < time() and min(n, amount) <= max(n, amount)',
  'meta[s] == list[n] or $[s] == 1 or $.list[-1] == meta',
  'topic(n) == s or stream() == "tx" or topic() == s',
  'not amount and not (meta == list) and meta != list',
  'first(list) == last(list) or sum(list) > 0 or min(list) < 1',
  'big.amount == amount or count(big) == 1',
];
const TEMPLATES = [
  'Card {card_id}: {count(small)} at {big.merchant} {meta} {list} {$}',
  '{format(ts, "yyyy-LL-dd HH:mm", "Europe/Berlin")} {hour(ts)} {key()} {small} {sum(small.amount)}',
  '{{ {amount + 1} }} {s + s} {meta[s]} {topic(0)} {stream()} {time()}',
];

function randomChain(r: () => number): BoundNode | null {
  let prev: BoundNode | null = null;
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    const id = r() < 0.7 ? STEPS.get('small')! : STEPS.get('a')!;
    prev = { nameId: id, event: event(randomEvent(r), Math.floor(r() * 1e12)), prev, length: (prev === null ? 0 : (prev as BoundNode).length) + 1 };
  }
  return prev;
}

describe('fuzz', () => {
  const condPlace: ExprPlace = { kind: 'condition', step: 'big', bound: new Set(['small', 'a']) };
  const untilPlace: ExprPlace = { kind: 'until', step: 'small', bound: new Set(['a']) };

  it('conditions and values never throw and conditions give booleans', () => {
    const r = rng(42);
    const compiled = CONDITIONS.flatMap((src) => {
      const out = [];
      for (const place of [condPlace, untilPlace]) {
        const c = ctx(place);
        const e = parseExpr(src);
        const cond = compileCondition(e, c);
        const val = compileValue(e, c);
        if (c.diagnostics.some((d) => d.severity === 'error')) continue; // `big` is not bound in `until` of small
        out.push({ src, cond, val });
      }
      return out;
    });
    expect(compiled.length).toBeGreaterThan(CONDITIONS.length);
    const failures: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const cand = event(randomEvent(r), Math.floor(r() * 1e12), { topic: r() < 0.5 ? 'a/b/c' : undefined });
      const scope = { candidate: cand, bound: randomChain(r), key: randomJson(r), time: cand.time };
      for (const { src, cond, val } of compiled) {
        try {
          const c = cond(scope);
          const v = val(scope);
          if (typeof c !== 'boolean' || v === undefined || typeof v === 'function') {
            failures.push(`${src}: got ${String(c)} / ${typeof v} on ${JSON.stringify(cand.data)}`);
          }
        } catch (e) {
          failures.push(`${src}: threw ${String(e)} on ${JSON.stringify(cand.data)}`);
        }
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('templates never throw and give strings', () => {
    const r = rng(7);
    const renderers = TEMPLATES.map((t) => {
      const c = ctx({ kind: 'template' });
      const f = compileTemplate(parseTemplate(t), c);
      expect(c.diagnostics).toEqual([]);
      return f;
    });
    let bad = 0;
    for (let i = 0; i < 1000; i++) {
      const scope = { candidate: null, bound: randomChain(r), key: randomJson(r), time: Math.floor(r() * 1e12) };
      for (const f of renderers) if (typeof f(scope) !== 'string') bad++;
    }
    expect(bad).toBe(0);
  });

  it('checkEvent never throws, whatever arrives', () => {
    const p = parseProgram(
      'stream s { key meta.user time ts fields { amount: number  s: string?  meta: object?  ts: time } }',
      'f',
    );
    const stream = compileStreams([p.program], [])!.get('s')!;
    const r = rng(3);
    const scope = { candidate: null, bound: null, key: null, time: 0 };
    for (let i = 0; i < 5000; i++) {
      const data = r() < 0.8 ? randomEvent(r) : randomJson(r);
      const res = checkEvent(stream, data, 1, scope);
      if (typeof res.ok !== 'boolean') throw new Error(JSON.stringify(data));
    }
  });
});
