// Fuzz (seeded, deterministic): random and mutated rule text through the parser AND the
// compiler (checks, expressions, NFA construction). Neither may throw, and every diagnostic
// must be positioned inside the file.

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSources } from '../../src/compiler/rule.js';
import { prng } from '../../src/core/prng.js';
import { Engine } from '../../src/runtime/engine.js';

const golden = join(import.meta.dirname, '..', 'golden');
const seeds = readdirSync(golden)
  .filter((c) => existsSync(join(golden, c, 'rules.vigil')))
  .map((c) => readFileSync(join(golden, c, 'rules.vigil'), 'utf8'));

const PIECES = ['then', 'next', 'then any', 'not', '(', ')', '{2,}', '+', '*', '?', ':', 'greedy', 'until', 'for 5s', 'within 1m', 'skip to first a', 'a', 'b', '$', 'count(a)', 'sum(a.x)', '"s{x}"', '/a+/', '[1,2]', '==', 'and', '}', '{', 'env("X")', 'alert high "m"', 'to webhook "http://x"', 'max partials 0', '{0}', '{3,1}', '\n'];

function mutate(r: () => number, text: string): string {
  let t = text;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (t.length + 1));
    const k = r();
    if (k < 0.3) t = t.slice(0, at) + PIECES[Math.floor(r() * PIECES.length)] + ' ' + t.slice(at);
    else if (k < 0.55) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(r() * 12));
    else if (k < 0.75) {
      const from = Math.floor(r() * t.length);
      t = t.slice(0, at) + t.slice(from, from + Math.floor(r() * 30)) + t.slice(at);
    } else if (k < 0.9) {
      // Swap a step's quantifier or link for another.
      t = t.replace(/\b(then|next)\b/, r() < 0.5 ? 'then any' : 'next');
    } else t = t.slice(0, Math.floor(r() * t.length));
  }
  return t;
}

describe('parser + compiler fuzz', () => {
  it('mutated rules that compile run over random events without throwing', () => {
    const r = prng(7);
    let ran = 0;
    const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
    for (let i = 0; i < 3000 && ran < 400; i++) {
      const text = mutate(r, seeds[i % seeds.length]!);
      const p = compileSources([{ file: 'f.vigil', text }]);
      if (p.diagnostics.some((d) => d.severity === 'error') || p.rules.length === 0) continue;
      ran++;
      let alerts = 0;
      const engine = new Engine({ now: () => 0, output: { alert: () => void alerts++, late: () => {} } });
      for (const s of p.streams.values()) engine.setStream(s);
      for (const rule of p.rules) engine.setRule(rule);
      const streams = [...engine.streams.keys()];
      let ts = 1000;
      try {
        for (let k = 0; k < 40; k++) {
          ts += Math.floor(r() * 3000) - 500;
          const ev: Record<string, unknown> = { ts, k: pick(['u1', 'u2']), type: pick(['a', 'b', 'c', 'd', 'x']), id: `e${k}`, x: pick([1, 2, 'q', null, [1], { y: 1 }]), amount: Math.floor(r() * 1000) - 100 };
          if (r() < 0.1) engine.advanceWatermark(ts);
          else engine.ingest(pick(streams), ev, ts);
        }
        engine.end();
      } catch (err) {
        throw new Error(`engine threw on input #${i}:\n${text}\n${(err as Error).stack}`);
      }
    }
    expect(ran).toBeGreaterThan(100);
  });

  it('never throws on 2500 mutated rules files; diagnostics are positioned', () => {
    const r = prng(20261122);
    for (let i = 0; i < 2500; i++) {
      const text = mutate(r, seeds[i % seeds.length]!);
      let result;
      try {
        result = compileSources([{ file: 'f.vigil', text }]);
      } catch (err) {
        throw new Error(`compileSources threw on input #${i}:\n${text}\n${(err as Error).stack}`);
      }
      const lines = text.split('\n').length;
      for (const d of result.diagnostics) {
        expect(d.line, `#${i} ${d.code}`).toBeGreaterThanOrEqual(1);
        expect(d.line, `#${i} ${d.code}`).toBeLessThanOrEqual(lines + 1);
        expect(d.col).toBeGreaterThanOrEqual(1);
      }
    }
  });
});
