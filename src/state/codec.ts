// Versioned encodings of engine state for checkpoints (service.md §4): the partial matches of
// one (rule, key) with their shared event chains, buffered events, stream bookkeeping.
// Plain arrays of numbers and JSON, so a later release can read today's data: every record
// carries `v`, and decoders accept every version they know.
//
// A key state stores each event and each bound node once: partial matches that share a prefix
// keep sharing it after a restore (the shared buffer survives a restart).

import type { BoundNode, Json, StreamEvent } from '../core/event.js';
import type { NfaGraph } from '../nfa/graph.js';
import { KeyState, Run, type Completed } from '../nfa/nfa.js';

export const KEY_STATE_VERSION = 1;

/** An event: [seq, time, stream, topic | null, data]. */
export type EncodedEvent = [number, number, string, string | null, Json];

export interface EncodedKeyState {
  v: 1;
  key: Json;
  events: EncodedEvent[];
  /** [nameId, event index, previous node index or -1]. */
  nodes: [number, number, number][];
  /** [node, count, fresh, link, guards set or -1, next guards set or -1, deadline or null (∞), bound node, startTime, startSeq, dead exits (optional, 0)]. */
  runs: [number, number, 0 | 1, number, number, number, number | null, number, number, number, number?][];
  /** [bound node, time, startTime, startSeq]. */
  completed: [number, number, number, number][];
}

export function encodeEvent(e: StreamEvent): EncodedEvent {
  return [e.seq, e.time, e.stream, e.topic ?? null, e.data];
}

export function decodeEvent(x: EncodedEvent): StreamEvent {
  return { seq: x[0], time: x[1], stream: x[2], topic: x[3] ?? undefined, data: x[4] as { [k: string]: Json } };
}

export function encodeKeyState(ks: KeyState, graph: NfaGraph): EncodedKeyState {
  const guardIds = new Map<unknown, number>();
  graph.guardSets.forEach((g, i) => guardIds.set(g, i));
  const events: EncodedEvent[] = [];
  const eventIds = new Map<StreamEvent, number>();
  const nodes: [number, number, number][] = [];
  const nodeIds = new Map<BoundNode, number>();
  const nodeId = (n: BoundNode): number => {
    const known = nodeIds.get(n);
    if (known !== undefined) return known;
    // Oldest first, so that a node's predecessor always has a smaller index.
    const chain: BoundNode[] = [];
    for (let m: BoundNode | null = n; m !== null && !nodeIds.has(m); m = m.prev) chain.push(m);
    for (let i = chain.length - 1; i >= 0; i--) {
      const m = chain[i]!;
      let ev = eventIds.get(m.event);
      if (ev === undefined) {
        ev = events.length;
        eventIds.set(m.event, ev);
        events.push(encodeEvent(m.event));
      }
      const id = nodes.length;
      nodes.push([m.nameId, ev, m.prev === null ? -1 : nodeIds.get(m.prev)!]);
      nodeIds.set(m, id);
    }
    return nodeIds.get(n)!;
  };
  const gid = (g: unknown[] | null): number => (g === null ? -1 : (guardIds.get(g) ?? -1));
  return {
    v: KEY_STATE_VERSION,
    key: ks.key,
    events,
    nodes,
    runs: ks.runs.map((r) => [
      r.node,
      r.count,
      r.fresh ? 1 : 0,
      r.link,
      gid(r.guards),
      gid(r.nextGuards),
      r.deadline === Infinity ? null : r.deadline,
      nodeId(r.bound),
      r.startTime,
      r.startSeq,
      r.deadExits,
    ]),
    completed: ks.completed.map((c) => [nodeId(c.bound), c.time, c.startTime, c.startSeq]),
  };
}

export function decodeKeyState(x: EncodedKeyState, mapKey: unknown, graph: NfaGraph): KeyState {
  if (x.v !== 1) throw new Error(`unknown key state version ${String(x.v)}`);
  const events = x.events.map(decodeEvent);
  const nodes: BoundNode[] = [];
  for (const [nameId, ev, prev] of x.nodes) {
    const p = prev < 0 ? null : nodes[prev]!;
    nodes.push({ nameId, event: events[ev]!, prev: p, length: p === null ? 1 : p.length + 1 });
  }
  const guards = (i: number) => (i < 0 ? null : (graph.guardSets[i] ?? null));
  const ks = new KeyState(x.key, mapKey);
  ks.runs = x.runs.map(
    (r) => new Run(r[0], r[1], r[2] === 1, r[3] as 0 | 1 | 2, guards(r[4]), guards(r[5]), r[6] ?? Infinity, nodes[r[7]]!, r[8], r[9], r[10] ?? 0),
  );
  ks.completed = x.completed.map((c): Completed => ({ bound: nodes[c[0]]!, time: c[1], startTime: c[2], startSeq: c[3] }));
  return ks;
}

/** The map key the runtime uses for a key value (see RuleRuntime). */
export function mapKeyOf(key: Json): unknown {
  return key !== null && typeof key === 'object' ? JSON.stringify(key) : key;
}
