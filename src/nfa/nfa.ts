// The matcher (language §5, §6). Pure: the compiled graph lives here, the per-key state
// (partial matches, completed matches waiting for release) is passed in on every call, as in
// Flink CEP's `nfa.process(state, event)` / `nfa.advanceTime(state, time)`. No clocks, no I/O,
// no imports from runtime/, state/, sinks/ or api/.
//
// A partial match (Run) is a position in the graph plus the chain of events it has bound
// (BoundNode, shared with every partial match it was forked from). On each event a run may:
//   TAKE    the event into its current step (loop) or into a next step (after a proceed),
//   IGNORE  it and stay (relaxed / skip-till-any contiguity, unless a `then not` guard holds),
//   PROCEED past its step (count ≥ min) to the steps the closure (graph.ts) lists.
// Like Flink's compiled NFA, a run that ignores an event while it could also have proceeded
// is split eagerly: the run that stays can only loop on (it is no longer `fresh`), and the
// proceeded alternative becomes its own run waiting at the next step. Each run is therefore
// one concrete choice of counts, which gives "a match at every admissible count".

import type { Condition } from '../compiler/expressions.js';
import type { BoundNode, EvalScope, Json, StreamEvent } from '../core/event.js';
import { ANY, RELAXED, STRICT, greedyKey, type Contiguity, type GreedyEntry, type NfaGraph, type StepNode } from './graph.js';

/** Run.node of a partial match that has passed its last step and waits for a trailing negation. */
export const WAIT_FINAL = -2;

export type SkipStrategy = 'none' | 'toNext' | 'pastLast' | 'toFirst' | 'toLast';

export class Run {
  constructor(
    /** Step index, or WAIT_FINAL. */
    public node: number,
    /** Events taken by the current step so far (0: waiting for its first event). */
    public count: number,
    /** No event has been ignored since the last take: the run may still proceed. */
    public fresh: boolean,
    /** Contiguity of the wait for the current step's first event (count 0). */
    public link: Contiguity,
    /** `then not` guards while waiting at count 0; absence guards for WAIT_FINAL. */
    public guards: Condition[] | null,
    /** WAIT_FINAL: trailing `next not` guards still to check on the next event. */
    public nextGuards: Condition[] | null,
    /** WAIT_FINAL: absence deadline (t + D), or Infinity for a trailing `next not`. */
    public deadline: number,
    public bound: BoundNode,
    public startTime: number,
    public startSeq: number,
    /**
     * Exits (by index in the step's exits) closed for this run: a `then not` guard of that exit
     * held on an event the run ignored while looping in this step. A negation after a
     * quantified step guards the whole stretch from the step's first event on (language §5) —
     * but only on the paths that go through it.
     */
    public deadExits = 0,
  ) {}
}

/** A finished match waiting for release in start order (language §6). */
export interface Completed {
  bound: BoundNode;
  time: number;
  startTime: number;
  startSeq: number;
}

/** Shared by every key with no finished match waiting (never mutated while empty). */
const NO_COMPLETED: Completed[] = [];

/** The per-key state of one rule: what a checkpoint stores for (rule, key). */
export class KeyState {
  runs: Run[] = [];
  completed: Completed[] = NO_COMPLETED;
  constructor(
    public readonly key: Json,
    public readonly mapKey: unknown,
  ) {}

  get empty(): boolean {
    return this.runs.length === 0 && this.completed.length === 0;
  }
}

/** Where the matcher reports what it finds. */
export interface NfaOutput {
  /**
   * Asks for advanceTime(ks, time) once the watermark reaches `time`: for a `within` expiry
   * (kind 0, start + D) or an absence deadline (kind 1, t + D). Each kind's times never go
   * backwards (events are released in time order), so the runtime can keep them in FIFO queues.
   */
  schedule(ks: KeyState, time: number, kind: 0 | 1): void;
  match(ks: KeyState, bound: BoundNode, time: number): void;
  /** A partial match died because `within` ran out; `time` is start + D. */
  timeout(ks: KeyState, bound: BoundNode, time: number): void;
  /** Partial matches discarded: by the skip strategy, by `max partials`, or timed out silently. */
  discarded(reason: 'skip' | 'maxPartials', n: number): void;
}

export interface NfaOptions {
  withinMs: number | null;
  skip: SkipStrategy;
  /** nameId of the step of `skip to first/last v`. */
  skipNameId: number;
  maxPartials: number;
}

export class Nfa {
  readonly steps: StepNode[];
  private readonly within: number;
  private scratch: Run[] = [];
  /** The output of the call under way (process / advanceTime). */
  private out: NfaOutput | null = null;

  constructor(
    readonly graph: NfaGraph,
    readonly options: NfaOptions,
  ) {
    this.steps = graph.steps;
    this.within = options.withinMs ?? Infinity;
  }

  /** Feeds one event (released in event-time order) to the partial matches of one key. */
  process(ks: KeyState, e: StreamEvent, scope: EvalScope, out: NfaOutput): void {
    const t = e.time;
    this.out = out;
    const runs = ks.runs;
    const next = this.scratch;
    next.length = 0;
    scope.candidate = e;
    scope.time = t;
    scope.key = ks.key;
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i]!;
      // A partial match started at s is dead once time reaches s + D; its timer reports it.
      if (t >= r.startTime + this.within) next.push(r);
      else if (r.node === WAIT_FINAL) this.stepFinal(ks, r, e, scope, next);
      else this.stepRun(ks, r, scope, next);
    }
    this.start(ks, scope, next);
    this.scratch = runs;
    runs.length = 0;
    ks.runs = next;
    if (next.length > this.options.maxPartials) this.cap(ks, out);
    if (ks.completed.length > 0) this.release(ks, t, out);
  }

  /** Fires what is due at `time`: `within` expiry (timeouts), absences, and at +∞ trailing `next not`. */
  advanceTime(ks: KeyState, time: number, out: NfaOutput): void {
    this.out = out;
    const runs = ks.runs;
    let expired: Run[] | null = null;
    let w = 0;
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i]!;
      const expiry = r.startTime + this.within;
      if (expiry !== Infinity && expiry <= time) (expired ??= []).push(r);
      else if (r.node === WAIT_FINAL && r.deadline <= time) {
        this.complete(ks, r.bound, r.deadline === Infinity ? r.bound.event.time : r.deadline, r.startTime, r.startSeq);
      } else runs[w++] = r;
    }
    runs.length = w;
    if (expired !== null) {
      expired.sort(compareChains);
      let last: BoundNode | null = null;
      for (const r of expired) {
        // Runs split from one another share their chain: one partial match, one timeout.
        if (r.bound === last) continue;
        last = r.bound;
        out.timeout(ks, r.bound, r.startTime + this.within);
      }
    }
    if (ks.completed.length > 0) this.release(ks, time, out);
  }

  /** Every pending deadline of a key, [time, kind] (to re-arm timers after a restore). */
  deadlines(ks: KeyState): [number, 0 | 1][] {
    const out: [number, 0 | 1][] = [];
    for (const r of ks.runs) {
      const exp = r.startTime + this.within;
      if (exp !== Infinity) out.push([exp, 0]);
      if (r.node === WAIT_FINAL && r.deadline !== Infinity) out.push([r.deadline, 1]);
    }
    return out;
  }



  // ------------------------------------------------------------ one event, one run

  private stepRun(ks: KeyState, r: Run, scope: EvalScope, next: Run[]): void {
    const s = this.steps[r.node]!;
    const c = r.count;
    scope.bound = r.bound;
    // A run that left a greedy loop early dies as soon as the loop takes another event.
    if (c === 0 && r.nextGuards !== null && !this.greedyGuard(r, scope)) return;
    // `until C`: the first event satisfying C ends the loop, started or not, and is not taken —
    // except a partial match waiting under `then any` to start it: every later candidate can
    // start its own run (language §5, issue 14 point 2).
    const untilHit = s.until !== null && s.until(scope);
    const canLoop = c < s.max && !untilHit;
    const took = canLoop && s.cond(scope);
    if (took) this.take(ks, r, s, c + 1, scope.candidate!, next);
    let stay = false;
    let dead = r.deadExits;
    if (c === 0 && untilHit && r.link === ANY) stay = r.guards === null || !anyHolds(r.guards, scope);
    else if (canLoop) {
      const contiguity = c === 0 ? r.link : s.loop;
      if (contiguity === ANY || (contiguity === RELAXED && !took)) {
        if (c === 0) stay = r.guards === null || !anyHolds(r.guards, scope);
        else {
          // Ignoring the event inside the loop: it is "between" this step and every exit whose
          // `then not` guard it satisfies; those paths are closed for good.
          const exits = s.exits;
          for (let i = 0; i < exits.length; i++) {
            const x = exits[i]!;
            if ((dead & (1 << i)) !== 0) continue;
            const g = x.thenGuards;
            if (g !== null && anyHolds(g, scope)) dead |= 1 << i;
            // `next not` after a quantified step guards the whole stretch: the event right after
            // one of its events (a take: the run is fresh) that the stretch does not take must not
            // satisfy it (issue 14 point 3).
            else if (r.fresh && x.nextGuards !== null && anyHolds(x.nextGuards, scope)) dead |= 1 << i;
          }
          stay = s.finals.length > 0 || dead !== (1 << exits.length) - 1;
        }
      }
    }
    // Proceed only from a run that has ignored nothing since its last take; a greedy step
    // does not let the next step have an event it can take itself.
    if (r.fresh && c >= s.min && !(took && s.greedy)) {
      const exits = s.exits;
      // Leaving a greedy loop that could still take events: the waiting run carries its guard.
      const leaving = s.greedy && canLoop;
      for (let i = 0; i < exits.length; i++) {
        const x = exits[i]!;
        if ((r.deadExits & (1 << i)) !== 0) continue;
        if (x.nextGuards !== null && anyHolds(x.nextGuards, scope)) continue;
        if (x.bypassed !== null && anyTakes(x.bypassed, scope)) continue;
        const q = this.steps[x.target]!;
        // `until` ends the wait to start a loop under `then`; under `then any` the event is
        // only not taken (issue 14 point 2).
        const qUntil = q.until !== null && q.until(scope);
        if (qUntil && x.link !== ANY) continue;
        const qTook = !qUntil && q.cond(scope);
        if (qTook) this.take(ks, r, q, 1, scope.candidate!, next);
        if (x.link === STRICT) continue;
        if (x.link === ANY || !qTook) {
          if (x.thenGuards === null || !anyHolds(x.thenGuards, scope)) {
            const greedy = leaving ? x.leaveGuard : x.bypassGuard;
            const w = new Run(q.index, 0, false, x.link, x.thenGuards, greedy, Infinity, r.bound, r.startTime, r.startSeq);
            // A passed-over step whose `until` this event satisfies has ended already.
            if (greedy !== null) this.greedyGuard(w, scope);
            next.push(w);
          }
        }
      }
    }
    if (stay) {
      r.fresh = false;
      r.deadExits = dead;
      next.push(r);
    }
  }

  private stepFinal(ks: KeyState, r: Run, e: StreamEvent, scope: EvalScope, next: Run[]): void {
    scope.bound = r.bound;
    if (r.nextGuards !== null) {
      if (anyHolds(r.nextGuards, scope)) return;
      if (r.deadline === Infinity) {
        // Trailing `next not`: the key's next event did not satisfy it, so the match is complete.
        this.complete(ks, r.bound, r.bound.event.time, r.startTime, r.startSeq);
        return;
      }
      r.nextGuards = null;
    }
    // Absence: broken only by an event with time in [t, t + D).
    if (r.guards !== null && e.time < r.deadline && anyHolds(r.guards, scope)) return;
    next.push(r);
  }

  /**
   * A waiting run's greedy guard (held in `nextGuards`, see NfaGraph.greedyGuards): false when
   * a greedy step it passed over or left would take the candidate (the run dies). A step whose
   * `until` the candidate satisfies has ended its loop and leaves the guard.
   */
  private greedyGuard(r: Run, scope: EvalScope): boolean {
    const es = this.graph.greedyGuards.get(r.nextGuards!);
    if (es === undefined) return true;
    let ended: GreedyEntry[] | null = null;
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      const g = e.step;
      if (g.until !== null && g.until(scope)) {
        if (!e.sticky) (ended ??= []).push(e);
      } else if (g.cond(scope)) return false;
    }
    if (ended !== null) {
      const rest = es.filter((e) => !ended.includes(e));
      r.nextGuards = rest.length === 0 ? null : (this.graph.greedyGuardOf.get(greedyKey(rest)) ?? null);
    }
    return true;
  }

  /** Can `scope.candidate` start a partial match (its first step takes it)? */
  canStart(scope: EvalScope): boolean {
    scope.bound = null;
    const exits = this.graph.startExits;
    for (let i = 0; i < exits.length; i++) {
      const x = exits[i]!;
      if (x.bypassed !== null && anyTakes(x.bypassed, scope)) continue;
      const q = this.steps[x.target]!;
      if (q.until !== null && q.until(scope)) continue;
      if (q.cond(scope)) return true;
    }
    return false;
  }

  private start(ks: KeyState, scope: EvalScope, next: Run[]): void {
    scope.bound = null;
    const exits = this.graph.startExits;
    for (let i = 0; i < exits.length; i++) {
      const x = exits[i]!;
      // An optional greedy first step that can take the event is not passed over.
      if (x.bypassed !== null && anyTakes(x.bypassed, scope)) continue;
      const q = this.steps[x.target]!;
      if (q.until !== null && q.until(scope)) continue;
      if (q.cond(scope)) this.take(ks, null, q, 1, scope.candidate!, next);
    }
  }

  /** `r` (or a new partial match when null) takes `e` into step `s`, now holding `count` events. */
  private take(ks: KeyState, r: Run | null, s: StepNode, count: number, e: StreamEvent, next: Run[]): void {
    const prev = r === null ? null : r.bound;
    const bound: BoundNode = { nameId: s.nameId, event: e, prev, length: prev === null ? 1 : prev.length + 1 };
    const startTime = r === null ? e.time : r.startTime;
    const startSeq = r === null ? e.seq : r.startSeq;
    if (r === null && this.within !== Infinity) this.out!.schedule(ks, startTime + this.within, 0);
    if (count < s.max || s.exits.length > 0) {
      // Looping on in the same step keeps the exits its stretch has closed.
      const dead = r !== null && r.node === s.index && count > 1 ? r.deadExits : 0;
      next.push(new Run(s.index, count, true, RELAXED, null, null, Infinity, bound, startTime, startSeq, dead));
    }
    if (count >= s.min) {
      const finals = s.finals;
      for (let i = 0; i < finals.length; i++) {
        const f = finals[i]!;
        if (f.nextGuards === null && f.absenceMs === null) this.complete(ks, bound, e.time, startTime, startSeq);
        else {
          const deadline = f.absenceMs === null ? Infinity : e.time + f.absenceMs;
          if (deadline !== Infinity) this.out!.schedule(ks, deadline, 1);
          next.push(new Run(WAIT_FINAL, 0, false, RELAXED, f.absenceGuards, f.nextGuards, deadline, bound, startTime, startSeq));
        }
      }
    }
  }

  private complete(ks: KeyState, bound: BoundNode, time: number, startTime: number, startSeq: number): void {
    let completed = ks.completed;
    if (completed === NO_COMPLETED) ks.completed = completed = [];
    for (let i = 0; i < completed.length; i++) if (completed[i]!.bound === bound) return;
    completed.push({ bound, time, startTime, startSeq });
  }

  // ------------------------------------------------------------ release and skip (language §6)

  private release(ks: KeyState, now: number, out: NfaOutput): void {
    const completed = ks.completed;
    if (completed.length > 1) completed.sort(compareCompleted);
    if (this.options.skip === 'none') {
      for (const m of completed) out.match(ks, m.bound, m.time);
      completed.length = 0;
      return;
    }
    while (completed.length > 0) {
      const m = completed[0]!;
      // A finished match waits while a partial match that started earlier is alive.
      if (this.blocked(ks, m, now)) return;
      completed.shift();
      out.match(ks, m.bound, m.time);
      this.prune(ks, m, out);
    }
  }

  private blocked(ks: KeyState, m: Completed, now: number): boolean {
    const runs = ks.runs;
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i]!;
      if (r.startTime + this.within <= now) continue;
      if (r.startTime < m.startTime || (r.startTime === m.startTime && r.startSeq < m.startSeq)) return true;
    }
    return false;
  }

  private prune(ks: KeyState, m: Completed, out: NfaOutput): void {
    let keep: (startTime: number, startSeq: number) => boolean;
    switch (this.options.skip) {
      case 'toNext':
        keep = (_t, startSeq) => startSeq !== m.startSeq;
        break;
      case 'pastLast': {
        const { time, seq } = m.bound.event;
        keep = (t, q) => t > time || (t === time && q > seq);
        break;
      }
      case 'toFirst':
      case 'toLast': {
        const target = this.boundTo(m.bound, this.options.skipNameId, this.options.skip === 'toFirst');
        if (target === null) return; // v bound nothing: skip none for this match
        const { time, seq } = target;
        keep = (t, q) => t > time || (t === time && q >= seq);
        break;
      }
      default:
        return;
    }
    // In place: release() and process() hold these arrays.
    let n = 0;
    const runs = ks.runs;
    let w = 0;
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i]!;
      if (keep(r.startTime, r.startSeq)) runs[w++] = r;
    }
    n += runs.length - w;
    runs.length = w;
    const completed = ks.completed;
    w = 0;
    for (let i = 0; i < completed.length; i++) {
      const c = completed[i]!;
      if (keep(c.startTime, c.startSeq)) completed[w++] = c;
    }
    n += completed.length - w;
    completed.length = w;
    if (n > 0) out.discarded('skip', n);
  }

  private boundTo(bound: BoundNode, nameId: number, first: boolean): StreamEvent | null {
    let found: StreamEvent | null = null;
    for (let n: BoundNode | null = bound; n !== null; n = n.prev) {
      if (n.nameId === nameId) {
        found = n.event;
        if (!first) return found; // the chain is newest first
      }
    }
    return found;
  }

  /** `max partials N`: keep the N youngest partial matches of the key, count the rest. */
  private cap(ks: KeyState, out: NfaOutput): void {
    const runs = ks.runs;
    const drop = runs.length - this.options.maxPartials;
    runs.sort(compareRuns);
    runs.splice(0, drop);
    out.discarded('maxPartials', drop);
  }
}

/** Would one of these (greedy, passed-over) steps take the candidate as its first event? */
function anyTakes(steps: StepNode[], scope: EvalScope): boolean {
  for (let i = 0; i < steps.length; i++) {
    const g = steps[i]!;
    if ((g.until === null || !g.until(scope)) && g.cond(scope)) return true;
  }
  return false;
}

function anyHolds(guards: Condition[], scope: EvalScope): boolean {
  for (let i = 0; i < guards.length; i++) if (guards[i]!(scope)) return true;
  return false;
}

function compareRuns(a: Run, b: Run): number {
  return a.startTime - b.startTime || a.startSeq - b.startSeq;
}

/** The events of a chain, oldest first. */
export function chainEvents(bound: BoundNode | null): StreamEvent[] {
  const out: StreamEvent[] = new Array(bound === null ? 0 : bound.length);
  let i = out.length - 1;
  for (let n = bound; n !== null; n = n.prev) out[i--] = n.event;
  return out;
}

/** Start first; among equal starts, event by event in processing (time, arrival) order, a prefix first. */
function compareChains(a: { startTime: number; startSeq: number; bound: BoundNode }, b: { startTime: number; startSeq: number; bound: BoundNode }): number {
  const d = a.startTime - b.startTime || a.startSeq - b.startSeq;
  if (d !== 0 || a.bound === b.bound) return d;
  const ea = chainEvents(a.bound);
  const eb = chainEvents(b.bound);
  for (let i = 0; i < ea.length && i < eb.length; i++) {
    const x = ea[i]!;
    const y = eb[i]!;
    if (x !== y) return x.time - y.time || x.seq - y.seq;
  }
  return ea.length - eb.length;
}

const compareCompleted: (a: Completed, b: Completed) => number = compareChains;
