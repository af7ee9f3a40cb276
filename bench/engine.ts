// Engine benchmark (issue: the Vigil engine): events/s and heap for three rules over 1M
// generated events on 100k keys, beside a hand-written per-key state machine for rule (a)
// as the ceiling. The engine is driven through `Engine.ingest` with parsed event objects:
// validation, event time, key, watermark, NFA step and alert records — no I/O.

import { compileSources } from '../src/compiler/rule.js';
import { prng as rng } from '../src/core/prng.js';
import { Engine } from '../src/runtime/engine.js';

export interface EngineBenchResult {
  name: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  heapMiB: number;
  alerts: number;
}

const KEYS = 100_000;

type Ev = { card: string; ts: number; type: string; amount: number };

export function generateEvents(n: number, seed = 1): Ev[] {
  const r = rng(seed);
  const keys = Array.from({ length: KEYS }, (_, i) => `c${i}`);
  const out: Ev[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const x = r();
    // 10% a, 2% b, 2% c, 86% other: matches are a small share of events, as in alerting.
    const type = x < 0.1 ? 'a' : x < 0.12 ? 'b' : x < 0.14 ? 'c' : 'x';
    const amount = r() < 0.3 ? Math.floor(r() * 5) : Math.floor(r() * 1000);
    out[i] = { card: keys[Math.floor(r() * KEYS)]!, ts: 1_700_000_000_000 + i, type, amount };
  }
  return out;
}

const STREAM = `stream tx {
  key card
  time ts
  watermark 0s
}
`;

export const RULES: Record<string, string> = {
  a: `rule a_then_b {
  from tx
  match a: type == "a" then b: type == "b"
  skip none
}`,
  b: `rule kleene {
  from tx
  match
    small{3,}: amount < 5 and sum(small.amount) < 20
    then big: amount > 500
  within 10m
}`,
  c: `rule then_any {
  from tx
  match a: type == "a" then any b: type == "b" then any c: type == "c"
  within 2m
  skip none
}`,
};

function heapMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / (1024 * 1024);
}

export function benchRule(name: string, events: Ev[]): EngineBenchResult {
  const program = compileSources([{ file: `${name}.vigil`, text: STREAM + RULES[name] }]);
  const errors = program.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map((d) => d.message).join('; '));
  let alerts = 0;
  const engine = new Engine({ output: { alert: () => void alerts++, late: () => {} } });
  for (const s of program.streams.values()) engine.setStream(s);
  for (const r of program.rules) engine.setRule(r);
  const base = heapMiB();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events.length; i++) engine.ingest('tx', events[i], 0);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // The engine's live state (partial matches, keys) at the end, measured while it is still referenced.
  const heap = heapMiB() - base;
  const partials = [...engine.rules.values()].reduce((n, r) => n + r.partialMatches(), 0);
  return { name: `${name} (${partials} partials live)`, events: events.length, seconds, eventsPerSecond: events.length / seconds, heapMiB: heap, alerts };
}

/** The ceiling for (a): `a then b` (skip none) by hand, a Map from key to the pending a's. */
export function benchHandWritten(events: Ev[]): EngineBenchResult {
  const pending = new Map<string, number>();
  let alerts = 0;
  const base = heapMiB();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const k = e.card;
    if (e.type === 'a') pending.set(k, (pending.get(k) ?? 0) + 1);
    else if (e.type === 'b') {
      const n = pending.get(k);
      if (n !== undefined) {
        alerts += n;
        pending.delete(k);
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const heap = heapMiB() - base;
  return { name: `hand-written (a) (${pending.size} keys pending)`, events: events.length, seconds, eventsPerSecond: events.length / seconds, heapMiB: heap, alerts };
}
