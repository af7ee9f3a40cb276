// One loaded rule version at run time: its key states, its event buffer and its timers
// (language §8). Owns event time for the rule: events wait in the buffer until the rule's
// watermark (the least of its streams') passes them, are released in (time, arrival) order,
// and then timers due by the same watermark fire. Matches and timeouts become alert records.

import { createHash } from 'node:crypto';
import type { AlertRecord } from '../core/alert.js';
import type { BoundNode, EvalScope, Json, StreamEvent } from '../core/event.js';
import type { CompiledAlert, CompiledRule } from '../compiler/rule.js';
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

interface Timer {
  time: number;
  order: number;
  ks: KeyState;
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
  private readonly timers = new Heap<Timer>((a, b) => a.time < b.time || (a.time === b.time && a.order < b.order));
  private timerOrder = 0;
  /** Set by a durable engine; null when nothing needs to know what changed. */
  journal: RuleJournal | null = null;
  private readonly throttleSent = new Map<unknown, number[]>();
  private throttleSweptAt = -Infinity;

  constructor(
    readonly rule: CompiledRule,
    private readonly scope: EvalScope,
    private readonly now: () => number,
    private readonly emit: AlertOut,
  ) {
    this.nfa = new Nfa(rule.graph, rule.nfa);
  }

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
    const timers = this.timers;
    for (let top = timers.peek(); top !== undefined && top.time <= watermark; top = timers.peek()) {
      timers.pop();
      const ks = top.ks;
      if (ks.timerAt !== top.time) continue; // superseded
      ks.timerAt = Infinity;
      this.nfa.advanceTime(ks, top.time, this);
      this.settle(ks);
    }
    if (watermark === Infinity) {
      // Bounded input: what waits for "the key's next event" completes at the end (language §5).
      for (const ks of [...this.keys.values()]) {
        this.nfa.advanceTime(ks, Infinity, this);
        this.settle(ks);
      }
    }
    if (this.rule.throttle && watermark - this.throttleSweptAt >= this.rule.throttle.perMs) this.sweepThrottle(watermark);
  }

  private process(e: StreamEvent): void {
    const scope = this.scope;
    this.counters.eventsIn++;
    const keyOf = this.rule.keyOf.get(e.stream);
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
      ks = new KeyState(key, mapKey);
      this.keys.set(mapKey, ks);
    }
    this.nfa.process(ks, e, scope, this);
    this.settle(ks);
  }

  /** Re-arms the key's timer and drops a key that holds nothing (bounded state). */
  private settle(ks: KeyState): void {
    const journal = this.journal;
    if (ks.empty) {
      this.keys.delete(ks.mapKey);
      ks.timerAt = Infinity;
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
    const d = this.nfa.nextDeadline(ks);
    if (d < ks.timerAt) {
      ks.timerAt = d;
      this.timers.push({ time: d, order: this.timerOrder++, ks });
    }
  }

  // ------------------------------------------------------------ NfaOutput

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
    const hash = createHash('sha256');
    hash.update(`${this.rule.name}\u0000${this.rule.version}\u0000${kind}\u0000${time}`);
    for (const n of nodes) {
      const step = this.rule.stepNames[n.nameId]!;
      (events[step] ??= []).push(n.event.data);
      hash.update(`\u0000${n.nameId}:${n.event.seq}`);
    }
    const record: AlertRecord = {
      id: hash.digest('hex').slice(0, 32),
      kind,
      rule: this.rule.name,
      version: this.rule.version,
      key: ks.key,
      severity: alert.severity,
      message: alert.message(scope),
      time: isoTime(time),
      detectedAt: isoTime(this.now()),
      events,
    };
    this.emit(record, alert, this, scope);
  }

  /** Sliding window of event time: at most N alerts with time in (T − D, T] per throttle key. */
  private throttled(time: number, ks: KeyState): boolean {
    const t = this.rule.throttle!;
    const k = t.by ? stableKey(t.by(this.scope)) : ks.mapKey;
    let sent = this.throttleSent.get(k);
    if (!sent) {
      sent = [];
      this.throttleSent.set(k, sent);
    }
    while (sent.length > 0 && sent[0]! <= time - t.perMs) sent.shift();
    let inWindow = 0;
    for (const s of sent) if (s > time - t.perMs && s <= time) inWindow++;
    if (inWindow >= t.count) return true;
    let j = sent.length;
    while (j > 0 && sent[j - 1]! > time) j--;
    sent.splice(j, 0, time);
    if (this.journal) this.journal.throttle = true;
    return false;
  }

  private sweepThrottle(watermark: number): void {
    this.throttleSweptAt = watermark;
    if (this.journal) this.journal.throttle = true;
    const per = this.rule.throttle!.perMs;
    for (const [k, sent] of this.throttleSent) {
      if (sent.length === 0 || sent[sent.length - 1]! <= watermark - per) this.throttleSent.delete(k);
    }
  }

  /**
   * Takes over the event buffer and timers of the version this one replaces, when the
   * pattern did not change (its partial matches are kept; language/service §2).
   */
  adoptFrom(old: RuleRuntime): void {
    for (const e of old.buffer.toArray()) this.buffer.push(e);
    for (const ks of this.keys.values()) {
      ks.timerAt = Infinity;
      this.settle(ks);
    }
    for (const [k, v] of old.throttleSent) this.throttleSent.set(k, v);
  }

  // ------------------------------------------------------------ restore (checkpoints)

  /** Puts back a key state read from a checkpoint and arms its timer. */
  restoreKey(ks: KeyState): void {
    this.keys.set(ks.mapKey, ks);
    ks.timerAt = Infinity;
    this.settle(ks);
    this.journal?.dirty.delete(ks);
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

  bufferedEvents(): number {
    return this.buffer.size;
  }

  bufferSnapshot(): StreamEvent[] {
    return this.buffer.toArray();
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
