// The key-state codec: a round trip keeps every partial match, its fields and the sharing of
// event chains; records written in the earlier version (1) still decode.

import { describe, expect, it } from 'vitest';
import { compileSources } from '../../src/compiler/rule.js';
import type { StreamEvent } from '../../src/core/event.js';
import { KeyState, Nfa } from '../../src/nfa/nfa.js';
import { decodeKeyState, encodeKeyState } from '../../src/state/codec.js';

const rule = compileSources([
  { file: 'r', text: 'stream s {\n  key k\n  time ts\n}\nrule r {\n  from s\n  match a: t == "a" then any b+: t == "b" then c: t == "c"\n  within 1h\n}\n' },
]).rules[0]!;

function stateAfter(types: string[]): KeyState {
  const nfa = new Nfa(rule.graph, rule.nfa);
  const ks = new KeyState('u', 'u');
  const scope = { candidate: null, bound: null, key: null, time: 0 };
  const out = { match() {}, timeout() {}, discarded() {}, schedule() {} };
  types.forEach((t, i) => {
    const e: StreamEvent = { data: { k: 'u', ts: 1000 + i, t, n: i }, time: 1000 + i, seq: i, stream: 's', topic: i % 2 ? 'x/y' : undefined };
    nfa.process(ks, e, scope, out);
  });
  return ks;
}

describe('key state codec', () => {
  it('round-trips partial matches with their fields and shared prefixes', () => {
    const ks = stateAfter(['a', 'b', 'b', 'x', 'b']);
    expect(ks.runs.length).toBeGreaterThan(3);
    const back = decodeKeyState(encodeKeyState(ks, rule.graph), rule.graph);
    expect(back.key).toBe('u');
    expect(back.mapKey).toBe('u');
    const view = (k: KeyState) =>
      k.runs.map((r) => [r.node, r.count, r.fresh, r.link, r.deadline, r.startTime, r.startSeq, r.deadExits, r.bound.length, r.bound.event.seq, r.bound.event.topic]);
    expect(view(back)).toEqual(view(ks));
    // Runs that shared a chain node still share one object.
    const shared = (k: KeyState) => new Set(k.runs.map((r) => r.bound.prev)).size;
    expect(shared(back)).toBe(shared(ks));
    expect(back.runs[0]!.bound.event.data).toEqual(ks.runs[0]!.bound.event.data);
  });

  it('keeps the greedy guard of a partial match that left a greedy loop early (issue 14 point 1)', () => {
    const greedy = compileSources([
      { file: 'g', text: 'stream s {\n  key k\n  time ts\n}\nrule g {\n  from s\n  match a: t == "a" then b+: t == "b" greedy then c: t == "c"\n  skip none\n}\n' },
    ]).rules[0]!;
    const nfa = new Nfa(greedy.graph, greedy.nfa);
    const scope = { candidate: null, bound: null, key: null, time: 0 };
    const matches: number[] = [];
    const out = { match: (_k: KeyState, b: { length: number }) => void matches.push(b.length), timeout() {}, discarded() {}, schedule() {} };
    const ev = (t: string, i: number): StreamEvent => ({ data: { k: 'u', ts: 1000 + i, t }, time: 1000 + i, seq: i, stream: 's', topic: undefined });
    const ks = new KeyState('u', 'u');
    ['a', 'b', 'x'].forEach((t, i) => nfa.process(ks, ev(t, i), scope, out));
    // {a, b1} left the loop at x and waits for c, held back by the loop's greedy guard.
    const waiting = ks.runs.filter((r) => r.count === 0 && r.nextGuards !== null);
    expect(waiting.length).toBe(1);
    const back = decodeKeyState(encodeKeyState(ks, greedy.graph), greedy.graph);
    expect(back.runs.map((r) => r.nextGuards)).toEqual(ks.runs.map((r) => r.nextGuards));
    expect(back.runs.find((r) => r.count === 0)!.nextGuards).toBe(waiting[0]!.nextGuards);
    // After the restore the guard still works: b2 is taken by the loop, so {a, b1} dies, and c
    // completes only {a, b1 b2, c} (4 events).
    ['b', 'c'].forEach((t, i) => nfa.process(back, ev(t, 3 + i), scope, out));
    expect(matches).toEqual([4]);
  });

  it('reads version 1 records (nested arrays)', () => {
    const v1 = {
      v: 1 as const,
      key: 'u',
      events: [[7, 1000, 's', null, { k: 'u', t: 'a' }]] as [number, number, string, string | null, { k: string; t: string }][],
      nodes: [[0, 0, -1]] as [number, number, number][],
      runs: [[0, 1, 1, 1, -1, -1, null, 0, 1000, 7]] as [number, number, 0 | 1, number, number, number, number | null, number, number, number][],
      completed: [],
    };
    const ks = decodeKeyState(v1, rule.graph);
    expect(ks.runs).toHaveLength(1);
    expect(ks.runs[0]).toMatchObject({ node: 0, count: 1, fresh: true, startSeq: 7, deadline: Infinity, deadExits: 0 });
    expect(ks.runs[0]!.bound.event).toMatchObject({ seq: 7, time: 1000, stream: 's', topic: undefined, data: { k: 'u', t: 'a' } });
  });

  it('rejects an unknown version', () => {
    expect(() => decodeKeyState([9, 'u'], rule.graph)).toThrow(/unknown key state version/);
  });
});
