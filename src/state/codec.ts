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
import { dataFromStoredForm, keyFromStoredForm, storedDataForm, storedKeyForm } from '../core/lone-surrogates.js';

export const KEY_STATE_VERSION = 2;

/** An event: [seq, time, stream, topic | null, data]. */
export type EncodedEvent = [number, number, string, string | null, Json];

/** Version 1: nested arrays (still read; written by earlier builds). */
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
  return [e.seq, e.time, e.stream, e.topic ?? null, storedDataForm(e.data) as Json];
}

export function decodeEvent(x: EncodedEvent): StreamEvent {
  return { seq: x[0], time: x[1], stream: x[2], topic: x[3] ?? undefined, data: dataFromStoredForm(x[4] as { [k: string]: Json }) };
}

/**
 * Version 2: one flat array per key state, so that a restart decodes one array (plus the events'
 * data) per key instead of one per event, bound node and partial match:
 * `[2, key, nEvents, (seq, time, stream, topic, data)…, nNodes, (nameId, event, prev)…,
 *   nRuns, (node, count, fresh, link, guards, nextGuards, deadline, bound, startTime, startSeq,
 *   deadExits)…, nCompleted, (bound, time, startTime, startSeq)…]`.
 */
export type EncodedKeyStateV2 = unknown[];

export function encodeKeyState(ks: KeyState, graph: NfaGraph): EncodedKeyStateV2 {
  const guardIds = new Map<unknown, number>();
  graph.guardSets.forEach((g, i) => guardIds.set(g, i));
  const eventIds = new Map<StreamEvent, number>();
  const nodeIds = new Map<BoundNode, number>();
  const events: unknown[] = [];
  const nodes: number[] = [];
  let nEvents = 0;
  let nNodes = 0;
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
        ev = nEvents++;
        eventIds.set(m.event, ev);
        events.push(m.event.seq, m.event.time, m.event.stream, m.event.topic ?? null, storedDataForm(m.event.data));
      }
      nodes.push(m.nameId, ev, m.prev === null ? -1 : nodeIds.get(m.prev)!);
      nodeIds.set(m, nNodes++);
    }
    return nodeIds.get(n)!;
  };
  const gid = (g: unknown[] | null): number => (g === null ? -1 : (guardIds.get(g) ?? -1));
  const runs: unknown[] = [];
  for (const r of ks.runs) {
    runs.push(r.node, r.count, r.fresh ? 1 : 0, r.link, gid(r.guards), gid(r.nextGuards), r.deadline === Infinity ? null : r.deadline, nodeId(r.bound), r.startTime, r.startSeq, r.deadExits);
  }
  const completed: unknown[] = [];
  for (const c of ks.completed) completed.push(nodeId(c.bound), c.time, c.startTime, c.startSeq);
  return [2, storedKeyForm(ks.key, ks.mapKey) as Json, nEvents, ...events, nNodes, ...nodes, ks.runs.length, ...runs, ks.completed.length, ...completed];
}

/** Decodes a stored key state of any known version (1: nested arrays, 2: flat). */
export function decodeKeyState(x: EncodedKeyState | EncodedKeyStateV2, graph: NfaGraph): KeyState {
  if (!Array.isArray(x)) return decodeKeyStateV1(x, mapKeyOf(x.key), graph);
  const key = keyFromStoredForm(x[1]) as Json;
  const mapKey = mapKeyOf(key);
  if (x[0] !== 2) throw new Error(`unknown key state version ${String(x[0])}`);
  const guards = (i: number) => (i < 0 ? null : (graph.guardSets[i] ?? null));
  let p = 2;
  const nEvents = x[p++] as number;
  const events: StreamEvent[] = new Array(nEvents);
  for (let i = 0; i < nEvents; i++, p += 5) {
    events[i] = { seq: x[p] as number, time: x[p + 1] as number, stream: x[p + 2] as string, topic: (x[p + 3] as string | null) ?? undefined, data: dataFromStoredForm(x[p + 4] as { [k: string]: Json }) };
  }
  const nNodes = x[p++] as number;
  const nodes: BoundNode[] = new Array(nNodes);
  for (let i = 0; i < nNodes; i++, p += 3) {
    const prev = x[p + 2] as number;
    const pn = prev < 0 ? null : nodes[prev]!;
    nodes[i] = { nameId: x[p] as number, event: events[x[p + 1] as number]!, prev: pn, length: pn === null ? 1 : pn.length + 1 };
  }
  const ks = new KeyState(key, mapKey);
  const nRuns = x[p++] as number;
  const runs: Run[] = new Array(nRuns);
  for (let i = 0; i < nRuns; i++, p += 11) {
    runs[i] = new Run(
      x[p] as number,
      x[p + 1] as number,
      x[p + 2] === 1,
      x[p + 3] as 0 | 1 | 2,
      guards(x[p + 4] as number),
      guards(x[p + 5] as number),
      (x[p + 6] as number | null) ?? Infinity,
      nodes[x[p + 7] as number]!,
      x[p + 8] as number,
      x[p + 9] as number,
      x[p + 10] as number,
    );
  }
  ks.runs = runs;
  const nCompleted = x[p++] as number;
  if (nCompleted > 0) {
    const completed: Completed[] = new Array(nCompleted);
    for (let i = 0; i < nCompleted; i++, p += 4) {
      completed[i] = { bound: nodes[x[p] as number]!, time: x[p + 1] as number, startTime: x[p + 2] as number, startSeq: x[p + 3] as number };
    }
    ks.completed = completed;
  }
  return ks;
}

/** Version 1 (nested arrays), as written before the flat encoding: still read. */
function decodeKeyStateV1(x: EncodedKeyState, mapKey: unknown, graph: NfaGraph): KeyState {
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

