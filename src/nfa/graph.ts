// The compiled NFA graph of one pattern (language §5). Built once per rule version from the
// pattern's syntax tree and the compiled conditions; read by the matcher (nfa.ts). Pure data
// after construction: no clocks, no I/O, no per-key state.
//
// Construction (Thompson style, then closed over epsilon edges):
//   1. Every positive step instance becomes a StepNode with an "in" and an "out" port; a
//      step's quantifier {min,max} is kept as a count on the partial match, not unrolled.
//   2. Groups are unrolled: {n,m} gives n mandatory copies and m−n optional ones; an unbounded
//      group loops from its last copy back to that copy (linked by relaxed contiguity).
//   3. Negated steps are not nodes: they become guards on the edge into the next positive
//      element (`then not` → a guard on every event between; `next not` → a guard on the
//      first event after). A trailing `next not` / absence becomes a pending final.
//   4. For every step's out port (and for the start) the epsilon closure gives its exits:
//      which step can take the next event, by which link, under which guards — or the final
//      state. The matcher never walks epsilon edges at run time.

import type { Condition } from '../compiler/expressions.js';
import type { Span } from '../core/diagnostics.js';

/** Contiguity of a transition (language §5, "Links between steps"). */
export const STRICT = 0;
export const RELAXED = 1;
export const ANY = 2;
export type Contiguity = typeof STRICT | typeof RELAXED | typeof ANY;

/** The exit target that means "the pattern is complete". */
export const FINAL = -1;

export interface StepNode {
  index: number;
  name: string;
  nameId: number;
  cond: Condition;
  /** `until C`: the first event satisfying C ends the loop and is not taken. */
  until: Condition | null;
  min: number;
  max: number;
  /** Contiguity between the events this step takes (relaxed; `consecutive`; `combinations`). */
  loop: Contiguity;
  greedy: boolean;
  /** Where a partial match can go after this step (only when count ≥ min). */
  exits: Exit[];
  /** Exits to FINAL only, split out so a take can complete a match without scanning. */
  finals: FinalExit[];
  span: Span;
}

export interface Exit {
  target: number;
  /** Contiguity of the transition into the target's first event. */
  link: Contiguity;
  /** `then not` guards active while waiting for the target's first event. */
  thenGuards: Condition[] | null;
  /** `next not` guards checked on the first event after the previous step. */
  nextGuards: Condition[] | null;
  /**
   * Optional `greedy` steps this exit passes over without taking an event (count 0). The exit
   * is not taken on an event one of them can take: a greedy step takes as many as it can,
   * including over the zero count (language §5).
   */
  bypassed: StepNode[] | null;
  /** The greedy guard (see NfaGraph.greedyGuards) of a run waiting at the target after this exit: the bypassed steps whose link is not strict. */
  bypassGuard: Condition[] | null;
  /** The same with the departed step itself, for a run that leaves a greedy loop that could still take events. */
  leaveGuard: Condition[] | null;
}

export interface FinalExit {
  /** Trailing `next not`: the match completes at the key's next event unless it satisfies one. */
  nextGuards: Condition[] | null;
  /** Trailing absence `then not x: C for D`: D, and the guards that break it. */
  absenceMs: number | null;
  absenceGuards: Condition[] | null;
}

export interface NfaGraph {
  steps: StepNode[];
  /** Exits from the start: the steps that can take a partial match's first event. */
  startExits: Exit[];
  /**
   * Every distinct guard list a partial match can hold, in a fixed order: a checkpoint stores
   * a run's guards as an index here (conditions are code, not data).
   */
  guardSets: Condition[][];
  /**
   * Greedy guards: a run that left a greedy loop early (or passed over an optional greedy step)
   * and waits for the next step's first event dies as soon as the loop could take an event
   * (language §5, issue 14 point 1). The run holds the guard as its `nextGuards` (a waiting run
   * has no other use for it), one of these lists, whose conditions are the steps' own; this map
   * gives their steps. Every subset a step's `until` can leave is listed too (greedyGuardOf).
   */
  greedyGuards: Map<Condition[], GreedyEntry[]>;
  /** The registered greedy guard for a set of entries (by greedyKey), or undefined. */
  greedyGuardOf: Map<string, Condition[]>;
}

/** One greedy step a waiting run is held back by. */
export interface GreedyEntry {
  step: StepNode;
  /**
   * The step was passed over at count 0 under `then any`: its `until` does not end the wait to
   * start it (issue 14 point 2), so it stays in the guard. Otherwise the first event satisfying
   * its `until` ends the loop and drops it from the guard.
   */
  sticky: boolean;
  key: string;
}

/** The key of a set of greedy entries in NfaGraph.greedyGuardOf. */
export function greedyKey(entries: readonly { key: string }[]): string {
  return entries.map((e) => e.key).sort().join(',');
}

// ---------------------------------------------------------------- construction input

/** A pattern element after the compiler has checked it and compiled its conditions. */
export type PatternPlan =
  | {
      kind: 'step';
      negated: boolean;
      name: string;
      nameId: number;
      cond: Condition;
      until: Condition | null;
      min: number;
      max: number;
      loop: Contiguity;
      greedy: boolean;
      absenceMs: number | null;
      span: Span;
    }
  | { kind: 'group'; elements: PatternPlan[]; links: Contiguity[]; linkIsNext: boolean[]; min: number; max: number; span: Span };

export interface SequencePlan {
  elements: PatternPlan[];
  /** links[i] joins elements[i] and elements[i+1]. */
  links: Contiguity[];
  /** linkIsNext[i]: the link was written `next` (so a following negation is `next not`). */
  linkIsNext: boolean[];
}

interface Guard {
  type: 'then' | 'next';
  cond: Condition;
}

interface ENode {
  /** Set when this node is the in port of a step. */
  step: number;
  final: boolean;
  edges: EEdge[];
}

interface EEdge {
  to: ENode;
  link: Contiguity | null;
  guards: Guard[];
  /** Trailing negations of the whole pattern (only on the edge into FINAL). */
  trailing: { next: Condition[]; absenceMs: number | null; absence: Condition[] } | null;
  /** The step this edge passes over (an optional step's bypass), or -1. */
  bypass?: number;
}

/** Limits that keep unrolling and closure computation bounded. */
export const MAX_STEP_INSTANCES = 512;
const MAX_EXITS = 256;
/** Exits of one step (bits of Run.deadExits). */
export const MAX_EXITS_PER_STEP = 30;

export class GraphTooLarge extends Error {}

export function buildGraph(plan: SequencePlan): NfaGraph {
  const steps: StepNode[] = [];
  const stepIn: ENode[] = [];
  const stepOut: ENode[] = [];
  const node = (): ENode => ({ step: -1, final: false, edges: [] });
  const edge = (from: ENode, to: ENode, link: Contiguity | null, guards: Guard[]): void => {
    from.edges.push({ to, link, guards, trailing: null });
  };

  const addStep = (p: Extract<PatternPlan, { kind: 'step' }>): number => {
    if (steps.length >= MAX_STEP_INSTANCES) throw new GraphTooLarge();
    const index = steps.length;
    steps.push({
      index,
      name: p.name,
      nameId: p.nameId,
      cond: p.cond,
      until: p.until,
      min: p.min,
      max: p.max,
      loop: p.loop,
      greedy: p.greedy,
      exits: [],
      finals: [],
      span: p.span,
    });
    const inPort = node();
    inPort.step = index;
    stepIn.push(inPort);
    stepOut.push(node());
    return index;
  };

  /** Builds a sequence between two junctions; returns the guards still pending at its end. */
  const buildSequence = (seq: SequencePlan, entry: ENode, exit: ENode, topLevel: boolean): void => {
    let cur = entry;
    let pending: Guard[] = [];
    let linkInto: Contiguity | null = null;
    const trailing = { next: [] as Condition[], absenceMs: null as number | null, absence: [] as Condition[] };
    for (let i = 0; i < seq.elements.length; i++) {
      const el = seq.elements[i]!;
      const linkBefore = i === 0 ? null : seq.links[i - 1]!;
      const isNextLink = i === 0 ? false : seq.linkIsNext[i - 1]!;
      if (el.kind === 'step' && el.negated) {
        const isLast = i === seq.elements.length - 1;
        if (topLevel && isLast) {
          if (el.absenceMs !== null) {
            trailing.absenceMs = el.absenceMs;
            trailing.absence.push(el.cond);
          } else if (isNextLink) trailing.next.push(el.cond);
          else trailing.absence.push(el.cond); // compiler rejects this shape; kept total
        } else pending.push({ type: isNextLink ? 'next' : 'then', cond: el.cond });
        continue;
      }
      linkInto = linkBefore;
      const j = node();
      edge(cur, j, linkInto, pending);
      pending = [];
      const out = node();
      buildElement(el, j, out);
      cur = out;
    }
    if (topLevel) {
      const hasTrailing = trailing.next.length > 0 || trailing.absence.length > 0;
      if (hasTrailing) {
        // Negations just before a trailing one guard the same wait (`a then not x then not y for 5m`).
        for (const g of pending) {
          if (g.type === 'next' || trailing.absenceMs === null) trailing.next.push(g.cond);
          else trailing.absence.push(g.cond);
        }
        pending = [];
      }
      cur.edges.push({ to: exit, link: null, guards: pending, trailing: hasTrailing ? trailing : null });
    } else edge(cur, exit, null, pending);
  };

  const buildElement = (el: PatternPlan, entry: ENode, exit: ENode): void => {
    if (el.kind === 'step') {
      const s = addStep(el);
      edge(entry, stepIn[s]!, null, []);
      edge(stepOut[s]!, exit, null, []);
      if (el.min === 0) {
        edge(entry, exit, null, []);
        entry.edges[entry.edges.length - 1]!.bypass = s;
      }
      return;
    }
    const inner: SequencePlan = { elements: el.elements, links: el.links, linkIsNext: el.linkIsNext };
    const unbounded = el.max === Infinity;
    const copies = unbounded ? Math.max(el.min, 1) : el.max;
    let cur = entry;
    for (let k = 1; k <= copies; k++) {
      const copyIn = node();
      // Repetitions of a group are related by relaxed contiguity.
      edge(cur, copyIn, k === 1 ? null : RELAXED, []);
      const copyOut = node();
      buildSequence(inner, copyIn, copyOut, false);
      if (k > el.min) edge(copyIn, exit, null, []);
      if (unbounded && k === copies) edge(copyOut, copyIn, RELAXED, []);
      cur = copyOut;
    }
    edge(cur, exit, null, []);
  };

  const start = node();
  const final = node();
  final.final = true;
  buildSequence(plan, start, final, true);

  // Closure: every (target, link, guards) reachable over epsilon edges from a port.
  const closure = (from: ENode): { exits: Exit[]; finals: FinalExit[] } => {
    const exits: Exit[] = [];
    const finals: FinalExit[] = [];
    const onPath = new Set<ENode>();
    const walk = (n: ENode, link: Contiguity, guards: Guard[], skipped: Bypass[]): void => {
      if (exits.length + finals.length > MAX_EXITS) throw new GraphTooLarge();
      for (const e of n.edges) {
        const l = e.link ?? link;
        const g = e.guards.length > 0 ? guards.concat(e.guards) : guards;
        const b = e.bypass !== undefined && e.bypass >= 0 && steps[e.bypass]!.greedy ? skipped.concat({ step: e.bypass, link: l }) : skipped;
        const to = e.to;
        if (to.step >= 0) {
          exits.push(makeExit(to.step, l, g, b));
        } else if (to.final) {
          // Guards of negations followed only by optional steps do not hold a match back.
          const t = e.trailing;
          finals.push({
            nextGuards: t && t.next.length > 0 ? t.next : null,
            absenceMs: t ? t.absenceMs : null,
            absenceGuards: t && t.absence.length > 0 ? t.absence : null,
          });
        } else if (!onPath.has(to)) {
          onPath.add(to);
          walk(to, l, g, b);
          onPath.delete(to);
        }
      }
    };
    onPath.add(from);
    walk(from, RELAXED, [], []);
    return { exits: dedupeExits(exits), finals: dedupeFinals(finals) };
  };

  for (const s of steps) {
    const { exits, finals } = closure(stepOut[s.index]!);
    s.exits = exits;
    s.finals = finals;
    // A run remembers which exits a `then not` guard has closed with one bit each.
    if (exits.length > MAX_EXITS_PER_STEP) throw new GraphTooLarge();
  }
  const startClosure = closure(start);

  // Greedy guards, canonical by their set of steps (a checkpoint finds them by identity).
  const greedyGuards = new Map<Condition[], GreedyEntry[]>();
  const greedyGuardOf = new Map<string, Condition[]>();
  const entry = (index: number, sticky: boolean): GreedyEntry => ({ step: steps[index]!, sticky, key: sticky ? `${index}*` : `${index}` });
  const register = (entries: GreedyEntry[]): Condition[] => {
    const unique = entries.filter((e, i) => entries.findIndex((f) => f.key === e.key) === i);
    const key = greedyKey(unique);
    let list = greedyGuardOf.get(key);
    if (list === undefined) {
      list = unique.map((e) => e.step.cond);
      greedyGuardOf.set(key, list);
      greedyGuards.set(list, unique);
    }
    return list;
  };
  const guardFor = (entries: GreedyEntry[]): Condition[] | null => {
    if (entries.length === 0) return null;
    const list = register(entries);
    // `until` of a step ends its loop and drops it from the guard: every subset may occur.
    const es = greedyGuards.get(list)!;
    if (es.length <= 6) {
      for (let mask = 1; mask < (1 << es.length) - 1; mask++) register(es.filter((_, i) => (mask & (1 << i)) !== 0));
    }
    return list;
  };
  const settleExit = (x: Exit, from: StepNode | null): void => {
    const skipped = (x as ExitBuild).skipped;
    x.bypassed = skipped.length > 0 ? skipped.map((k) => steps[k.step]!) : null;
    const loose = skipped.filter((k) => k.link !== STRICT).map((k) => entry(k.step, k.link === ANY));
    x.bypassGuard = guardFor(loose);
    x.leaveGuard = from !== null && from.greedy && from.loop !== STRICT && from.max > 1 ? guardFor([...loose, entry(from.index, false)]) : x.bypassGuard;
    delete (x as Partial<ExitBuild>).skipped;
  };
  for (const s of steps) for (const x of s.exits) settleExit(x, s);
  for (const x of startClosure.exits) settleExit(x, null);

  const guardSets: Condition[][] = [];
  const note = (g: Condition[] | null) => {
    if (g !== null && !guardSets.includes(g)) guardSets.push(g);
  };
  for (const s of steps) {
    for (const x of s.exits) {
      note(x.thenGuards);
      note(x.nextGuards);
    }
    for (const f of s.finals) {
      note(f.nextGuards);
      note(f.absenceGuards);
    }
  }
  // Last, so that the indices of the other guard lists stay those of checkpoints written before greedy guards existed.
  for (const list of greedyGuards.keys()) note(list);
  return { steps, startExits: startClosure.exits, guardSets, greedyGuards, greedyGuardOf };
}

/** An optional greedy step passed over on the way to an exit, with the link into it. */
interface Bypass {
  step: number;
  link: Contiguity;
}

/** An exit while the graph is built: the bypassed steps, before they become guards. */
type ExitBuild = Exit & { skipped: Bypass[] };

function makeExit(target: number, link: Contiguity, guards: Guard[], skipped: Bypass[]): Exit {
  const thenGuards = guards.filter((g) => g.type === 'then').map((g) => g.cond);
  const nextGuards = guards.filter((g) => g.type === 'next').map((g) => g.cond);
  const x: ExitBuild = {
    target,
    link,
    thenGuards: thenGuards.length > 0 ? thenGuards : null,
    nextGuards: nextGuards.length > 0 ? nextGuards : null,
    bypassed: null,
    bypassGuard: null,
    leaveGuard: null,
    skipped,
  };
  return x;
}

function sameList<T>(a: readonly T[] | null, b: readonly T[] | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  return a.every((x, i) => x === b[i]);
}

function dedupeExits(exits: Exit[]): Exit[] {
  const out: Exit[] = [];
  for (const x of exits) {
    const same = out.find((y) => y.target === x.target && y.link === x.link && sameList(y.thenGuards, x.thenGuards) && sameList(y.nextGuards, x.nextGuards));
    if (same === undefined) out.push(x);
    else {
      // Two ways to the same place: the greedy steps either passes over all hold it back.
      const a = (same as ExitBuild).skipped;
      const more = (x as ExitBuild).skipped.filter((k) => !a.some((j) => j.step === k.step));
      if (more.length > 0) (same as ExitBuild).skipped = a.concat(more);
    }
  }
  return out;
}

function dedupeFinals(finals: FinalExit[]): FinalExit[] {
  const out: FinalExit[] = [];
  for (const f of finals) {
    if (!out.some((g) => g.absenceMs === f.absenceMs && sameList(g.nextGuards, f.nextGuards) && sameList(g.absenceGuards, f.absenceGuards))) out.push(f);
  }
  return out;
}
