// One loaded rule version at run time: its key states, its event buffer and its timers
// (language §8). Owns event time for the rule: events wait in the buffer until the rule's
// watermark (the least of its streams') passes them, are released in (time, arrival) order,
// and then timers due by the same watermark fire. Matches and timeouts become alert records.

import { hash } from 'node:crypto';
import type { AlertRecord } from '../core/alert.js';
import type { BoundNode, EvalScope, Json, StreamEvent } from '../core/event.js';
import type { CompiledAlert, CompiledRule } from '../compiler/rule.js';
import type { Evaluator } from '../compiler/expressions.js';
import { KeyState, Nfa, type NfaOutput } from '../nfa/nfa.js';
import { Heap } from './heap.js';

export interface RuleCounters {
  eventsIn: number;
  /** Events skipped because the rule's key (`by`) evaluated to null. */
  unkeyed: number;
  matches: number;
  timeouts: number;
  /** Timed-out partial matches of a rule without `on timeout` (dropped silently, counted). */
  timeoutsDropped: number;
  discardedBySkip: number;
  droppedByMaxPartials: number;
  throttled: number;
}

export interface AlertOut {
  (record: AlertRecord, alert: CompiledAlert, rule: RuleRuntime, scope: EvalScope): void;
}

/**
 * Timers of one kind, in time order. `within` expiries (start + D) and absence deadlines
 * (t + D) are each requested in nondecreasing time, because events reach the matcher in event
 * time order: a FIFO queue keeps them sorted at O(1) per timer.
 */
class TimerQueue {
  private times: number[] = [];
  private keys: KeyState[] = [];
  private head = 0;

  get size(): number {
    return this.times.length - this.head;
  }
  peekTime(): number {
    return this.head < this.times.length ? this.times[this.head]! : Infinity;
  }
  push(time: number, ks: KeyState): void {
    const n = this.times.length;
    if (n > this.head && this.keys[n - 1] === ks && this.times[n - 1] === time) return;
    if (n > this.head && time < this.times[n - 1]!) {
      // Not expected (times arrive in order); stay correct anyway.
      let i = n;
      while (i > this.head && this.times[i - 1]! > time) i--;
      this.times.splice(i, 0, time);
      this.keys.splice(i, 0, ks);
      return;
    }
    this.times.push(time);
    this.keys.push(ks);
  }
  pop(): KeyState {
    const ks = this.keys[this.head]!;
    this.keys[this.head] = undefined as unknown as KeyState;
    this.head++;
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.keys = this.keys.slice(this.head);
      this.head = 0;
    }
    return ks;
  }
  clear(): void {
    this.times = [];
    this.keys = [];
    this.head = 0;
  }
}

/** The map key of an unkeyed rule's single key state (a keyed rule never has a null key). */
const NO_KEY = null;

/**
 * What changed since the last checkpoint, kept only when the engine is durable: the state
 * store writes exactly these (dirty key states, removed keys, buffer additions and releases).
 */
export interface RuleJournal {
  dirty: Set<KeyState>;
  /** map key → key value of the key states that became empty. */
  removed: Map<unknown, Json>;
  bufferAdded: StreamEvent[];
  bufferReleased: number[];
  throttle: boolean;
}

export function newJournal(): RuleJournal {
  return { dirty: new Set(), removed: new Map(), bufferAdded: [], bufferReleased: [], throttle: false };
}

export class RuleRuntime implements NfaOutput {
  readonly nfa: Nfa;
  readonly keys = new Map<unknown, KeyState>();
  /** The rule's watermark: the least of its streams' watermarks. */
  watermark = -Infinity;
  readonly counters: RuleCounters = {
    eventsIn: 0,
    unkeyed: 0,
    matches: 0,
    timeouts: 0,
    timeoutsDropped: 0,
    discardedBySkip: 0,
    droppedByMaxPartials: 0,
    throttled: 0,
  };
  private readonly buffer = new Heap<StreamEvent>((a, b) => a.time < b.time || (a.time === b.time && a.seq < b.seq));
  private readonly withinTimers = new TimerQueue();
  private readonly absenceTimers = new TimerQueue();
  /** Set by a durable engine; null when nothing needs to know what changed. */
  journal: RuleJournal | null = null;
  private readonly throttleSent = new Map<unknown, number[]>();
  private throttleSweptAt = -Infinity;
  /**
   * How far before the watermark an alert still to come can be stamped: 0 when every alert is
   * stamped at or after the watermark of the last advance; `within` when matches can be held
   * (skip strategies) or complete on a later event (trailing `next not`); unbounded without
   * `within`. Sent alert times older than (floor − per) can no longer share a window with one.
   */
  private readonly throttleHorizon: number;
  /** The watermark of the last finished advance minus the horizon: no alert to come is stamped before it. */
  private throttleFloor = -Infinity;

  constructor(
    readonly rule: CompiledRule,
    private readonly scope: EvalScope,
    private readonly now: () => number,
    private readonly emit: AlertOut,
  ) {
    this.nfa = new Nfa(rule.graph, rule.nfa);
    this.singleKeyOf = rule.streams.length === 1 ? (rule.keyOf.get(rule.streams[0]!) ?? null) : undefined;
    const steps = rule.graph.steps;
    const trailingNext = steps.some((st) => st.finals.some((f) => f.nextGuards !== null && f.absenceMs === null));
    // One plain step (maybe followed by an absence) completes its partial matches in start order: nothing is held.
    const onePlainStep = steps.length === 1 && steps[0]!.min === 1 && steps[0]!.max === 1 && steps[0]!.exits.length === 0;
    const inOrder = (rule.nfa.skip === 'none' || onePlainStep) && !trailingNext;
    this.throttleHorizon = inOrder ? 0 : (rule.nfa.withinMs ?? Infinity);
  }

  /** The key of a rule that reads one stream (saves a lookup per event); undefined for several. */
  private readonly singleKeyOf: Evaluator | null | undefined;

  /**
   * Takes an accepted event of one of the rule's streams that the rule can use (the engine
   * filters with `rule.relevant`); `watermark` is the rule's watermark now.
   */
  receive(e: StreamEvent, watermark: number): void {
    if (this.buffer.size === 0 && e.time <= watermark) this.process(e);
    else {
      this.buffer.push(e);
      this.journal?.bufferAdded.push(e);
    }
    if (watermark > this.watermark) this.advance(watermark);
  }

  /** Moves the rule's watermark: releases buffered events up to it, then fires due timers. */
  advance(watermark: number): void {
    if (watermark <= this.watermark) return;
    this.watermark = watermark;
    const buffer = this.buffer;
    for (let top = buffer.peek(); top !== undefined && top.time <= watermark; top = buffer.peek()) {
      buffer.pop();
      this.journal?.bufferReleased.push(top.seq);
      this.process(top);
    }
    // Timers in time order; at equal times a `within` expiry comes before an absence (language §5: it wins).
    for (;;) {
      const tw = this.withinTimers.peekTime();
      const ta = this.absenceTimers.peekTime();
      const time = tw <= ta ? tw : ta;
      if (time > watermark || time === Infinity) break;
      const ks = (tw <= ta ? this.withinTimers : this.absenceTimers).pop();
      if (this.keys.get(ks.mapKey) !== ks) continue; // the key was emptied since
      this.nfa.advanceTime(ks, time, this);
      this.settle(ks);
    }
    if (watermark === Infinity) {
      // Bounded input: what waits for "the key's next event" completes at the end (language §5).
      for (const ks of [...this.keys.values()]) {
        this.nfa.advanceTime(ks, Infinity, this);
        this.settle(ks);
      }
    }
    if (this.rule.throttle) {
      this.throttleFloor = watermark - this.throttleHorizon;
      if (watermark - this.throttleSweptAt >= this.rule.throttle.perMs) this.sweepThrottle(watermark);
    }
  }

  private process(e: StreamEvent): void {
    const scope = this.scope;
    this.counters.eventsIn++;
    const keyOf = this.singleKeyOf !== undefined ? this.singleKeyOf : this.rule.keyOf.get(e.stream);
    let key: Json = null;
    let mapKey: unknown = NO_KEY;
    if (keyOf) {
      scope.candidate = e;
      scope.bound = null;
      scope.time = e.time;
      key = keyOf(scope);
      if (key === null) {
        this.counters.unkeyed++;
        return;
      }
      mapKey = typeof key === 'object' ? JSON.stringify(key) : key;
    }
    let ks = this.keys.get(mapKey);
    if (ks === undefined) {
      // A key with nothing alive: only an event that can start a partial match makes state.
      scope.candidate = e;
      scope.time = e.time;
      if (!this.nfa.canStart(scope)) return;
      ks = new KeyState(key, mapKey);
      this.keys.set(mapKey, ks);
    }
    this.nfa.process(ks, e, scope, this);
    this.settle(ks);
  }

  /** Drops a key that holds nothing (bounded state) and notes what changed for the checkpoint. */
  private settle(ks: KeyState): void {
    const journal = this.journal;
    if (ks.empty) {
      this.keys.delete(ks.mapKey);
      if (journal !== null) {
        journal.dirty.delete(ks);
        journal.removed.set(ks.mapKey, ks.key);
      }
      return;
    }
    if (journal !== null) {
      journal.dirty.add(ks);
      journal.removed.delete(ks.mapKey);
    }
  }

  /** Re-arms every key's timers in time order (after a restore or a swap that kept the state). */
  private rearmTimers(): void {
    this.withinTimers.clear();
    this.absenceTimers.clear();
    const times: number[] = [];
    const kinds: (0 | 1)[] = [];
    const owners: KeyState[] = [];
    let min = Infinity;
    let max = -Infinity;
    for (const ks of this.keys.values()) {
      for (const [t, kind] of this.nfa.deadlines(ks)) {
        times.push(t);
        kinds.push(kind);
        owners.push(ks);
        if (t < min) min = t;
        if (t > max) max = t;
      }
    }
    const n = times.length;
    // A million restored keys: sort packed numbers natively rather than tuples with a comparator.
    // (time − min) · 2^21 + index is exact while the times span < 2^32 ms and n < 2^21.
    let order: ArrayLike<number>;
    if (n < 2 ** 21 && max - min < 2 ** 32) {
      const packed = new Float64Array(n);
      for (let i = 0; i < n; i++) packed[i] = (times[i]! - min) * 2 ** 21 + i;
      packed.sort();
      const idx = new Uint32Array(n);
      for (let i = 0; i < n; i++) idx[i] = packed[i]! % 2 ** 21;
      order = idx;
    } else {
      order = Array.from({ length: n }, (_, i) => i).sort((a, b) => times[a]! - times[b]!);
    }
    for (let j = 0; j < n; j++) {
      const i = order[j]!;
      (kinds[i] === 0 ? this.withinTimers : this.absenceTimers).push(times[i]!, owners[i]!);
    }
  }

  // ------------------------------------------------------------ NfaOutput

  schedule(ks: KeyState, time: number, kind: 0 | 1): void {
    (kind === 0 ? this.withinTimers : this.absenceTimers).push(time, ks);
  }

  match(ks: KeyState, bound: BoundNode, time: number): void {
    this.counters.matches++;
    this.raise('match', this.rule.alert, ks, bound, time);
  }

  timeout(ks: KeyState, bound: BoundNode, time: number): void {
    if (!this.rule.onTimeout) {
      this.counters.timeoutsDropped++;
      return;
    }
    this.counters.timeouts++;
    this.raise('timeout', this.rule.onTimeout, ks, bound, time);
  }

  discarded(reason: 'skip' | 'maxPartials', n: number): void {
    if (reason === 'skip') this.counters.discardedBySkip += n;
    else this.counters.droppedByMaxPartials += n;
  }

  private raise(kind: 'match' | 'timeout', alert: CompiledAlert, ks: KeyState, bound: BoundNode, time: number): void {
    const scope = this.scope;
    scope.candidate = null;
    scope.bound = bound;
    scope.key = ks.key;
    scope.time = time;
    if (this.rule.throttle && this.throttled(time, ks)) {
      this.counters.throttled++;
      return;
    }
    const nodes: BoundNode[] = new Array(bound.length);
    let i = nodes.length - 1;
    for (let n: BoundNode | null = bound; n !== null; n = n.prev) nodes[i--] = n;
    const events: { [step: string]: Json[] } = {};
    let identity = `${this.rule.name}\u0000${this.rule.version}\u0000${kind}\u0000${time}`;
    for (const n of nodes) {
      const step = this.rule.stepNames[n.nameId]!;
      (events[step] ??= []).push(n.event.data);
      identity += `\u0000${n.nameId}:${n.event.seq}`;
    }
    const record: AlertRecord = {
      id: hash('sha256', identity, 'hex').slice(0, 32),
      kind,
      rule: this.rule.name,
      version: this.rule.version,
      key: ks.key,
      severity: alert.severity,
      message: alert.message(scope),
      time: isoTime(time),
      detectedAt: this.detectedAt(),
      events,
    };
    this.emit(record, alert, this, scope);
  }

  private lastNow = NaN;
  private lastNowText = '';

  /** The wall clock as ISO text, computed once per millisecond. */
  private detectedAt(): string {
    const now = this.now();
    if (now !== this.lastNow) {
      this.lastNow = now;
      this.lastNowText = isoTime(now);
    }
    return this.lastNowText;
  }

  /**
   * Sliding window of event time (language §9): an alert at time T is sent only if, with the
   * alerts already sent for its throttle key, no span of D of event time holds more than N —
   * looking at sent alerts on both sides of T, since alerts are not released in time order
   * (timers fire after the events of the same advance, held matches wait). `sent` is sorted.
   */
  private throttled(time: number, ks: KeyState): boolean {
    const t = this.rule.throttle!;
    const k = t.by ? stableKey(t.by(this.scope)) : ks.mapKey;
    let sent = this.throttleSent.get(k);
    if (!sent) {
      sent = [];
      this.throttleSent.set(k, sent);
    }
    const per = t.perMs;
    // Times that no alert still to come can share a window with.
    const stale = this.throttleFloor - per;
    while (sent.length > 0 && sent[0]! <= stale) sent.shift();
    // j: where T goes among the sent times (after equal ones). With T inserted, every run of
    // N + 1 consecutive times that includes T must span D or more.
    let j = sent.length;
    while (j > 0 && sent[j - 1]! > time) j--;
    const n = t.count;
    const at = (x: number): number => (x < j ? sent[x]! : x === j ? time : sent[x - 1]!);
    for (let i = Math.max(0, j - n); i <= j && i + n <= sent.length; i++) {
      if (at(i + n) - at(i) < per) return true;
    }
    sent.splice(j, 0, time);
    if (this.journal) this.journal.throttle = true;
    return false;
  }

  private sweepThrottle(watermark: number): void {
    this.throttleSweptAt = watermark;
    if (this.journal) this.journal.throttle = true;
    const stale = this.throttleFloor - this.rule.throttle!.perMs;
    for (const [k, sent] of this.throttleSent) {
      if (sent.length === 0 || sent[sent.length - 1]! <= stale) this.throttleSent.delete(k);
      else if (sent[0]! <= stale) {
        let i = 0;
        while (sent[i]! <= stale) i++;
        sent.splice(0, i);
      }
    }
  }

  /**
   * Takes over the event buffer and timers of the version this one replaces, when the
   * pattern did not change (its partial matches are kept; language/service §2).
   */
  adoptFrom(old: RuleRuntime): void {
    for (const e of old.buffer.toArray()) this.buffer.push(e);
    this.rearmTimers();
    for (const [k, v] of old.throttleSent) this.throttleSent.set(k, v);
  }

  // ------------------------------------------------------------ restore (checkpoints)

  /** Puts back key states read from a checkpoint and arms their timers. */
  restoreKeys(states: Iterable<KeyState>): number {
    let n = 0;
    for (const ks of states) {
      this.keys.set(ks.mapKey, ks);
      n++;
    }
    this.rearmTimers();
    return n;
  }

  restoreBuffer(events: StreamEvent[]): void {
    for (const e of events) this.buffer.push(e);
  }

  /** Throttle windows: [throttle key (JSON), sent alert times]. */
  throttleEntries(): [string, number[]][] {
    return [...this.throttleSent].map(([k, v]) => [JSON.stringify(k), v]);
  }

  restoreThrottle(entries: [string, number[]][]): void {
    for (const [k, v] of entries) this.throttleSent.set(JSON.parse(k) as unknown, v);
  }

  // ------------------------------------------------------------ introspection

  /** Live partial matches over all keys. */
  partialMatches(): number {
    let n = 0;
    for (const ks of this.keys.values()) n += ks.runs.length;
    return n;
  }
}

function stableKey(v: Json): unknown {
  return v !== null && typeof v === 'object' ? JSON.stringify(v) : v;
}

/** ISO-8601 UTC with milliseconds; times outside Date's range print as numbers. */
export function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
