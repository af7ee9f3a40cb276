// `idle D` (language §3, §8): after D of wall clock with no events, a stream's event time
// follows the wall clock, so an absence ("no heartbeat for 1 minute") fires even when every
// sender has gone quiet. Driven through Engine.tick with an explicit wall clock.

import { describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/core/alert.js';
import { compileSources } from '../../src/compiler/rule.js';
import { Engine } from '../../src/runtime/engine.js';

function engineFor(text: string): { engine: Engine; alerts: AlertRecord[] } {
  const p = compileSources([{ file: 'r.vigil', text }]);
  expect(p.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const alerts: AlertRecord[] = [];
  const engine = new Engine({ now: () => 0, output: { alert: (a) => void alerts.push(a), late: () => {} } });
  for (const s of p.streams.values()) engine.setStream(s);
  for (const r of p.rules) engine.setRule(r);
  return { engine, alerts };
}

const HEARTBEAT = (idle: string) => `stream beats {
  key sensor
  time ts
  watermark 2s
${idle}}
rule silent {
  from beats
  match beat: true then not again: true for 1m
  alert critical "sensor {sensor} silent"
}
`;

describe('idle streams', () => {
  const T = 1_800_000_000_000; // event time ≈ wall clock

  it('without idle, a quiet stream never moves its watermark: the absence waits', () => {
    const { engine, alerts } = engineFor(HEARTBEAT(''));
    engine.ingest('beats', { sensor: 's1', ts: T }, T);
    engine.tick(T + 10 * 60_000);
    expect(alerts).toEqual([]);
    expect(engine.streams.get('beats')!.watermark).toBe(T - 2000);
  });

  it('with idle, the watermark follows the wall clock once the stream has been quiet that long', () => {
    const { engine, alerts } = engineFor(HEARTBEAT('  idle 30s\n'));
    engine.ingest('beats', { sensor: 's1', ts: T }, T);
    engine.tick(T + 29_000); // quiet for less than 30 s: nothing moves
    expect(engine.streams.get('beats')!.watermark).toBe(T - 2000);
    engine.tick(T + 31_000); // idle: W = wall clock − watermark delay
    expect(engine.streams.get('beats')!.watermark).toBe(T + 29_000);
    expect(alerts).toEqual([]); // the deadline T + 60 s is not reached yet
    engine.tick(T + 62_500);
    expect(alerts.map((a) => [a.key, a.time, a.message])).toEqual([['s1', new Date(T + 60_000).toISOString(), 'sensor s1 silent']]);
  });

  it('a heartbeat that comes in time resets the absence; an idle tick does not fire it early', () => {
    const { engine, alerts } = engineFor(HEARTBEAT('  idle 30s\n'));
    engine.ingest('beats', { sensor: 's1', ts: T }, T);
    engine.ingest('beats', { sensor: 's1', ts: T + 40_000 }, T + 40_000);
    engine.tick(T + 71_000); // quiet 31 s: W = T + 69 s — past T + 60 s, but the beat at T + 40 s broke that absence
    expect(alerts).toEqual([]);
    engine.tick(T + 103_000); // W = T + 101 s ≥ T + 40 s + 60 s: the second beat's absence completes
    expect(alerts.map((a) => a.time)).toEqual([new Date(T + 100_000).toISOString()]);
  });

  it('a rule over two streams moves once the quiet one is idle (the least watermark)', () => {
    const text = `stream orders {
  key id
  time ts
}
stream shipments {
  key id
  time ts
  idle 10s
}
rule late_shipment {
  from orders, shipments
  match o: stream() == "orders" then not s: stream() == "shipments" for 1m
  alert high "order {id} not shipped"
}
`;
    const { engine, alerts } = engineFor(text);
    engine.ingest('orders', { id: 'o1', ts: T }, T);
    engine.ingest('orders', { id: 'o2', ts: T + 120_000 }, T + 120_000);
    expect(alerts).toEqual([]); // shipments has no watermark yet: the rule's is the least
    engine.tick(T + 125_000); // shipments has been quiet (never heard of) for more than 10 s
    expect(alerts.map((a) => a.key)).toEqual(['o1']);
  });
});
