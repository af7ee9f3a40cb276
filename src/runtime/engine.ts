// The engine: streams with their watermarks, late side output, and the loaded rules
// (language §8). One Engine serves `vigil run`, backtests and the live service; it is a
// deterministic function of its inputs (events with their arrival times, watermark markers,
// idle ticks, rule changes), so the service can rebuild it by replaying its log.
// No I/O here: alerts and late events go to the `EngineOutput` callbacks, synchronously.

import type { AlertRecord } from '../core/alert.js';
import type { EvalScope, StreamEvent } from '../core/event.js';
import type { CompiledAlert, CompiledRule } from '../compiler/rule.js';
import { checkEventInto, implicitStream, MAX_EVENT_DEPTH, nestedDeeperThan, type CompiledStream } from '../compiler/streams.js';
import { RuleRuntime } from './rule-runtime.js';

export interface EngineOutput {
  alert(record: AlertRecord, alert: CompiledAlert, rule: CompiledRule, scope: EvalScope): void;
  late(stream: string, event: StreamEvent): void;
}

export type IngestResult = { status: 'accepted' } | { status: 'late' } | { status: 'rejected'; error: string };

const ACCEPTED: IngestResult = Object.freeze({ status: 'accepted' });
const LATE: IngestResult = Object.freeze({ status: 'late' });

export interface StreamCounters {
  accepted: number;
  late: number;
  /** Every rejected event, those over a limit below included. */
  rejected: number;
  /** Rejected: larger than the stream's maximum event size (checked by the service at the door). */
  tooLarge: number;
  /** Rejected: event time further ahead of the arrival wall clock than the stream's maximum lead. */
  tooFarAhead: number;
}

export class StreamRuntime {
  maxTime = -Infinity;
  watermark = -Infinity;
  /** Wall clock of the last event (for `idle`). */
  lastArrival = -Infinity;
  readonly counters: StreamCounters = { accepted: 0, late: 0, rejected: 0, tooLarge: 0, tooFarAhead: 0 };
  readonly rules: RuleRuntime[] = [];
  constructor(public compiled: CompiledStream) {}
}

export interface EngineOptions {
  /** The wall clock (ms), for `detectedAt`. */
  now?: () => number;
  output: EngineOutput;
  /**
   * How far an event's time may be ahead of its arrival time (ms) on a stream with a `time`
   * field, unless the stream sets its own `max lead`. Default null: no check at all, `max lead`
   * clauses included — `vigil run` and backtests replay recorded events whose arrival time is
   * not the time they were recorded; the service sets one (VIGIL_MAX_LEAD_MS) so that one
   * sender cannot move a watermark.
   */
  maxLeadMs?: number | null;
}

export class Engine {
  readonly streams = new Map<string, StreamRuntime>();
  /** Loaded rules by name, in load order. */
  readonly rules = new Map<string, RuleRuntime>();
  /** The next arrival sequence number (identity of the next accepted event). */
  seq = 0;
  readonly now: () => number;
  private readonly scope: EvalScope = { candidate: null, bound: null, key: null, time: 0 };
  /** Reused: which rules of the stream can use the event being ingested. */
  private readonly uses: boolean[] = [];
  /** Reused for validating and filtering an event before it is known to be needed. */
  private readonly probe: StreamEvent = { data: {}, time: 0, seq: 0, stream: '', topic: undefined };
  private readonly output: EngineOutput;
  /** See EngineOptions.maxLeadMs (null: no check). */
  readonly maxLeadMs: number | null;

  constructor(options: EngineOptions) {
    this.now = options.now ?? Date.now;
    this.output = options.output;
    this.maxLeadMs = options.maxLeadMs ?? null;
  }

  /** Declares or redeclares a stream (its runtime state, watermark included, is kept). */
  setStream(compiled: CompiledStream): StreamRuntime {
    const existing = this.streams.get(compiled.name);
    if (existing) {
      if (compiled.declared || !existing.compiled.declared) existing.compiled = compiled;
      return existing;
    }
    const st = new StreamRuntime(compiled);
    this.streams.set(compiled.name, st);
    return st;
  }

  /** Loads a rule version; a rule of the same name is replaced (its state dropped unless `keep`). */
  setRule(rule: CompiledRule, keep?: RuleRuntime): RuleRuntime {
    this.removeRule(rule.name);
    const rr = new RuleRuntime(rule, this.scope, this.now, (record, alert, r, scope) => this.output.alert(record, alert, r.rule, scope));
    if (keep) {
      for (const [k, ks] of keep.keys) rr.keys.set(k, ks);
      rr.adoptFrom(keep);
    }
    for (const name of rule.streams) {
      const st = this.streams.get(name) ?? this.setStream(implicitStream(name));
      st.rules.push(rr);
    }
    this.rules.set(rule.name, rr);
    rr.watermark = keep ? keep.watermark : this.ruleWatermark(rr);
    return rr;
  }

  removeRule(name: string): RuleRuntime | undefined {
    const rr = this.rules.get(name);
    if (!rr) return undefined;
    this.rules.delete(name);
    for (const st of this.streams.values()) {
      const i = st.rules.indexOf(rr);
      if (i >= 0) st.rules.splice(i, 1);
    }
    return rr;
  }

  /**
   * Offers one event to a stream. Rejected: not an object, bad time or key, schema broken.
   * Late: time below the stream's watermark (kept on the late side output, never matched).
   */
  ingest(streamName: string, data: unknown, arrivalTime: number, topic?: string): IngestResult {
    const st = this.streams.get(streamName);
    if (!st) return { status: 'rejected', error: `unknown stream '${streamName}'` };
    const probe = this.probe;
    probe.topic = topic;
    probe.seq = this.seq;
    const checked = checkEventInto(st.compiled, data, arrivalTime, this.scope, probe);
    if (typeof checked === 'string') {
      st.counters.rejected++;
      return { status: 'rejected', error: checked };
    }
    // Without a time field, event time is the arrival time, never going backwards.
    const time = st.compiled.timeOf === null ? Math.max(checked, st.maxTime) : checked;
    // A time far ahead of the wall clock would move the watermark there for good: every timer
    // would fire at once and every later event would be late. Rejected before anything changes.
    if (this.maxLeadMs !== null && time - arrivalTime > (st.compiled.maxLeadMs ?? this.maxLeadMs) && st.compiled.timeOf !== null) {
      st.counters.rejected++;
      st.counters.tooFarAhead++;
      return { status: 'rejected', error: tooFarAheadText(time, arrivalTime, st.compiled.maxLeadMs ?? this.maxLeadMs, st.compiled.maxLeadMs !== null) };
    }
    probe.time = time;
    const late = time < st.watermark;

    // Which rules can use the event (most events of a busy stream satisfy no condition of any
    // rule, and skip the key lookup and the matcher). Decided before anything changes, so that
    // an event stored nowhere costs nothing more, and one that is stored is checked first.
    const rules = st.rules;
    const use = this.uses;
    let anyUse = false;
    if (!late) {
      const scope = this.scope;
      for (let i = 0; i < rules.length; i++) {
        const relevant = rules[i]!.rule.relevant;
        let u = true;
        if (relevant !== null) {
          scope.candidate = probe;
          scope.bound = null;
          scope.time = time;
          u = relevant(scope);
        }
        use[i] = u;
        if (u) anyUse = true;
      }
    }
    // An event that partial matches or the late output will hold must stay encodable.
    if ((late || anyUse) && nestedDeeperThan(probe.data, MAX_EVENT_DEPTH)) {
      st.counters.rejected++;
      return { status: 'rejected', error: `an event may nest objects and lists at most ${MAX_EVENT_DEPTH} levels deep` };
    }

    st.lastArrival = arrivalTime;
    this.seq++;
    if (late) {
      st.counters.late++;
      this.output.late(streamName, { data: probe.data, time, seq: probe.seq, stream: streamName, topic });
      return LATE;
    }
    st.counters.accepted++;
    if (time > st.maxTime) {
      st.maxTime = time;
      const w = time - st.compiled.watermarkMs;
      if (w > st.watermark) st.watermark = w;
    }
    let e: StreamEvent | null = null;
    for (let i = 0; i < rules.length; i++) {
      const rr = rules[i]!;
      const w = rr.rule.streams.length === 1 ? st.watermark : this.ruleWatermark(rr);
      if (!use[i]) {
        rr.counters.eventsIn++;
        rr.advance(w);
        continue;
      }
      e ??= { data: probe.data, time, seq: probe.seq, stream: streamName, topic };
      rr.receive(e, w);
    }
    return ACCEPTED;
  }


  /** A watermark marker (`{"$watermark": N}`): W = max(W, N) for the given streams (all when omitted). */
  advanceWatermark(watermark: number, streamNames?: Iterable<string>): void {
    const touched = new Set<RuleRuntime>();
    for (const name of streamNames ?? this.streams.keys()) {
      const st = this.streams.get(name);
      if (!st || watermark <= st.watermark) continue;
      st.watermark = watermark;
      for (const rr of st.rules) touched.add(rr);
    }
    this.advanceRules(touched);
  }

  /** Wall-clock tick: a stream with `idle D` quiet for D follows the wall clock (language §3). */
  tick(now: number): void {
    const touched = new Set<RuleRuntime>();
    for (const st of this.streams.values()) {
      const idle = st.compiled.idleMs;
      if (idle === null || now - st.lastArrival < idle) continue;
      const w = now - st.compiled.watermarkMs;
      if (w <= st.watermark) continue;
      st.watermark = w;
      for (const rr of st.rules) touched.add(rr);
    }
    this.advanceRules(touched);
  }

  /** The end of a bounded input: W = +∞ everywhere; every buffered event and every timer fires. */
  end(): void {
    this.advanceWatermark(Infinity);
    // Rules whose streams were all at +∞ already still owe their end-of-input pass.
    for (const rr of this.rules.values()) rr.advance(Infinity);
  }

  private advanceRules(touched: Set<RuleRuntime>): void {
    // Rules are served in load order.
    for (const rr of this.rules.values()) if (touched.has(rr)) rr.advance(this.ruleWatermark(rr));
  }

  /** A rule reading several streams uses the least of their watermarks. */
  ruleWatermark(rr: RuleRuntime): number {
    let w = Infinity;
    for (const name of rr.rule.streams) {
      const st = this.streams.get(name);
      const sw = st ? st.watermark : -Infinity;
      if (sw < w) w = sw;
    }
    return w;
  }
}

/** The reason given for an event whose time is too far ahead of the wall clock. */
export function tooFarAheadText(time: number, arrivalTime: number, maxLeadMs: number, fromStream: boolean): string {
  const iso = (ms: number) => {
    const d = new Date(ms);
    return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
  };
  const setting = fromStream ? "the stream's 'max lead' clause" : 'VIGIL_MAX_LEAD_MS';
  return `event time ${iso(time)} is ${durationText(time - arrivalTime)} ahead of the arrival time ${iso(arrivalTime)}: more than the maximum lead of ${durationText(maxLeadMs)} (${setting})`;
}

/** A duration for messages in its largest unit, e.g. 1h, 90s, 2.5h, 2500ms. */
export function durationText(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size) return `${Math.round((ms / size) * 10) / 10}${unit}`;
  }
  return `${ms}ms`;
}
