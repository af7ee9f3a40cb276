// The rule compiler: parsed files → checked, compiled rules and streams (language §2–§6).
// Collects every diagnostic it can (with positions) and never throws on user input. Conditions
// and templates compile through expressions.ts; patterns become an NFA graph (nfa/graph.ts).

import type { Diagnostic, Span } from '../core/diagnostics.js';
import { diagnostic } from '../core/diagnostics.js';
import type {
  AlertClause,
  DurationLit,
  Expr,
  Link,
  NumberLit,
  Pattern,
  PatternElement,
  Program,
  RuleClause,
  RuleDecl,
  SettingValue,
  SinkClause,
  Step,
  Template,
} from '../dsl/ast.js';
import { parseProgram } from '../dsl/parser.js';
import { ALLOW_HINT, type WebhookAddressPolicy } from '../core/webhook-address-policy.js';
import { ANY, buildGraph, GraphTooLarge, RELAXED, STRICT, type Contiguity, type NfaGraph, type PatternPlan, type SequencePlan } from '../nfa/graph.js';
import type { Diagnostic as Diag } from '../core/diagnostics.js';
import type { NfaOptions, SkipStrategy } from '../nfa/nfa.js';
import { compileCondition, compileTemplate, compileValue, referencedSteps, timePathKey, type Condition, type Evaluator, type TemplateRenderer } from './expressions.js';
import { compileStreams, fieldPath, implicitStream, type CompiledStream } from './streams.js';
import { checkExpr, checkTemplate, schemaOf, type CheckContext, type Schema } from './checks.js';
import { closest, didYouMean } from './suggest.js';
import { compileTests, type CompiledTest, type TestCompileOptions } from './tests.js';

export const DEFAULT_MAX_PARTIALS = 10_000;
/** The default of `CompileOptions.envPrefix` (VIGIL_ENV_PREFIX). */
export const DEFAULT_ENV_PREFIX = 'VIGIL_SECRET_';
/** Highest `max partials` a rule may ask for (docs/limits.md, "Work per request"). */
export const MAX_PARTIALS_CEILING = 1_000_000;
/** Highest count in a quantifier (`{n}`, `{n,}`, `{n,m}`) of a step or group. */
export const MAX_QUANTIFIER_COUNT = 10_000;
/** Most syntax nodes (steps, conditions, operators, names, literals, template parts) in one rule. */
export const MAX_RULE_NODES = 5_000;
/** Longest rule or stream name. */
export const MAX_NAME_LENGTH = 200;

export type CompiledSink =
  | { kind: 'webhook'; url: string; headers: { name: string; value: string }[]; secret: string | null }
  | { kind: 'email'; to: string[]; subject: TemplateRenderer | null }
  | { kind: 'mqtt'; topic: TemplateRenderer; qos: 0 | 1 | 2; retain: boolean }
  | { kind: 'alertmanager'; urls: string[] }
  | { kind: 'log' };

export interface CompiledAlert {
  severity: string;
  message: TemplateRenderer;
  sinks: CompiledSink[];
}

export interface CompiledRule {
  name: string;
  title: string | null;
  version: number;
  file: string;
  span: Span;
  /** The rule's own source text. */
  text: string;
  streams: string[];
  /** Per stream read: the key of an event of that stream (`by`, else the stream's `key`); null: unkeyed. */
  keyOf: Map<string, Evaluator | null>;
  stepNames: string[];
  graph: NfaGraph;
  nfa: NfaOptions;
  /**
   * False only for an event that no step, guard or `until` of the pattern can use, whatever
   * the partial matches hold; the runtime then skips the key lookup and the matcher. Null when
   * the rule cannot be filtered (strict contiguity, greedy, `next not`, or conditions that
   * depend only on bound events).
   */
  relevant: Condition | null;
  alert: CompiledAlert;
  onTimeout: CompiledAlert | null;
  throttle: { count: number; perMs: number; by: Evaluator | null } | null;
  /**
   * Identity of what decides matching (streams, key, pattern, within, skip, max partials),
   * without positions: equal fingerprints mean partial matches can be kept across versions.
   */
  fingerprint: string;
}

export interface CompileOptions {
  /** Values for `env("NAME")` in sink settings (default: process.env). */
  env?: Record<string, string | undefined>;
  /**
   * `env("NAME")` reads only names starting with this (default `VIGIL_SECRET_`); any other
   * name is an error that says the same whether the variable is set or not.
   */
  envPrefix?: string;
  /**
   * Where webhooks may post: a literal target it refuses (an internal IP, `localhost`) is a
   * compile error. Without it, targets are not checked here (`vigil check`, plain `vigil run`).
   */
  webhookPolicy?: WebhookAddressPolicy;
  /** Syntax errors of the same files: a clause that failed to parse is not also reported missing. */
  parseErrors?: Diagnostic[];
  /**
   * In the service: which sink kinds its configuration can deliver to. A rule with a sink of a
   * kind that is not configured (`to email` without VIGIL_SMTP_URL, `to mqtt` without
   * VIGIL_MQTT_URL) loads with a warning. Absent (e.g. `vigil check`): not checked.
   */
  configuredSinks?: { email: boolean; mqtt: boolean };
  /**
   * Rules declared in this file replace the rules of the same names in the other files, which
   * are left out (a backtest of an edited rule runs the edit instead of the loaded version).
   */
  replacingFile?: string;
  /** How `test` blocks read `from` files and how many events they may give (tests.ts). */
  tests?: TestCompileOptions;
}

export interface CompiledProgram {
  rules: CompiledRule[];
  /** Every rule declared in the files, compiled or not (what `vigil check` counts). */
  ruleCount?: number;
  /** The `test` blocks of the files (language §13), compiled; those with errors are left out. */
  tests?: CompiledTest[];
  streams: Map<string, CompiledStream>;
  diagnostics: Diagnostic[];
  /** File name → source text, for rendering diagnostics. */
  sources: Map<string, string>;
}

export interface SourceFile {
  file: string;
  text: string;
}

/** Parses and compiles rules files together (a rule may read a stream declared in another file). */
export function compileSources(files: SourceFile[], options: CompileOptions = {}): CompiledProgram {
  const diagnostics: Diagnostic[] = [];
  const programs: Program[] = [];
  const sources = new Map<string, string>();
  for (const f of files) {
    sources.set(f.file, f.text);
    const parsed = parseProgram(f.text, f.file);
    diagnostics.push(...parsed.diagnostics);
    programs.push(parsed.program);
  }
  const replacing = options.replacingFile === undefined ? undefined : programs.find((p) => p.file === options.replacingFile);
  if (replacing) {
    const names = new Set(replacing.decls.filter((d) => d.kind === 'rule').map((d) => d.name.name));
    for (let i = 0; i < programs.length; i++) {
      const p = programs[i]!;
      if (p !== replacing) programs[i] = { ...p, decls: p.decls.filter((d) => d.kind !== 'rule' || !names.has(d.name.name)) };
    }
  }
  const compiled = compilePrograms(programs, { ...options, parseErrors: diagnostics.filter((d) => d.severity === 'error') });
  diagnostics.push(...compiled.diagnostics);
  const ruleCount = programs.reduce((n, p) => n + p.decls.filter((d) => d.kind === 'rule').length, 0);
  const tests = programs.some((p) => p.decls.some((d) => d.kind === 'test'))
    ? compileTests(programs, compiled.rules.flatMap((r) => r.streams), compiled.streams, diagnostics, options.tests)
    : [];
  return { rules: compiled.rules, ruleCount, tests, streams: compiled.streams, diagnostics: sortDiagnostics(diagnostics), sources };
}

export function compilePrograms(programs: Program[], options: CompileOptions = {}): Omit<CompiledProgram, 'sources' | 'ruleCount'> {
  const diagnostics: Diagnostic[] = [];
  const streams = compileStreams(programs, diagnostics);
  const rules: CompiledRule[] = [];
  const seen = new Map<string, RuleDecl>();
  for (const program of programs) {
    for (const decl of program.decls) {
      if (decl.kind === 'test') continue; // compiled by tests.ts
      // Rule and stream names key the stored state, and LMDB keys are limited.
      if (decl.name.name.length > MAX_NAME_LENGTH) {
        diagnostics.push(diagnostic('error', 'compile/name-too-long', `the name of this ${decl.kind} is longer than ${MAX_NAME_LENGTH} characters`, program.file, decl.name.span));
        continue;
      }
      if (decl.kind !== 'rule') continue;
      const before = seen.get(decl.name.name);
      if (before) {
        diagnostics.push(
          diagnostic('error', 'compile/duplicate-rule', `rule '${decl.name.name}' is declared twice (first at line ${before.name.span.line})`, program.file, decl.name.span),
        );
        continue;
      }
      seen.set(decl.name.name, decl);
      const rule = new RuleCompiler(program, decl, streams, diagnostics, options).compile();
      if (rule) rules.push(rule);
    }
  }
  return { rules, streams, diagnostics };
}

/**
 * Counts the syntax nodes of a rule (every object of its tree with a `kind`), iteratively so
 * that no tree can exhaust the stack. Returns the span of the node past `limit`, or null.
 */
function ruleNodesOver(decl: RuleDecl, limit: number): Span | null {
  const stack: unknown[] = [decl];
  let n = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const x of v) if (x !== null && typeof x === 'object') stack.push(x);
      continue;
    }
    const o = v as Record<string, unknown>;
    if (typeof o.kind === 'string' && ++n > limit) return (o.span as Span | undefined) ?? decl.name.span;
    for (const k in o) {
      if (k === 'span') continue;
      const x = o[k];
      if (x !== null && typeof x === 'object') stack.push(x);
    }
  }
  return null;
}

function sortDiagnostics(d: Diagnostic[]): Diagnostic[] {
  return d
    .map((x, i) => ({ x, i }))
    .sort((a, b) => (a.x.file === b.x.file ? a.x.offset - b.x.offset || a.i - b.i : 0))
    .map((p) => p.x);
}

const LINK: Record<Link, Contiguity> = { next: STRICT, then: RELAXED, thenAny: ANY };

class RuleCompiler {
  private readonly file: string;
  private readonly start: number;
  private readonly stepNames = new Map<string, number>();
  private readonly positive = new Set<string>();
  /** Binding-free parts of every condition of the pattern; null once one cannot be filtered. */
  private prefilters: Condition[] | null = [];
  /** The fields the rule's streams declare (null: some stream has no schema). */
  private schema: Schema | null = null;

  constructor(
    private readonly program: Program,
    private readonly decl: RuleDecl,
    private readonly streams: Map<string, CompiledStream>,
    private readonly diagnostics: Diagnostic[],
    private readonly options: CompileOptions,
  ) {
    this.file = program.file;
    this.start = diagnostics.length;
  }

  private error(code: string, message: string, span: Span): void {
    this.diagnostics.push(diagnostic('error', code, message, this.file, span));
  }
  private warn(code: string, message: string, span: Span): void {
    this.diagnostics.push(diagnostic('warning', code, message, this.file, span));
  }

  compile(): CompiledRule | null {
    const d = this.decl;
    // Work a rule text can ask for is bounded before any of it is done.
    const tooBig = ruleNodesOver(d, MAX_RULE_NODES);
    if (tooBig !== null) {
      this.error('compile/rule-too-large', `rule '${d.name.name}' has more than ${MAX_RULE_NODES.toLocaleString('en-US')} syntax nodes (the limit is reached here); split it into smaller rules`, tooBig);
      return null;
    }
    const clauses = this.uniqueClauses(d.clauses);
    const from = clauses.get('from') as Extract<RuleClause, { kind: 'from' }> | undefined;
    const match = clauses.get('match') as Extract<RuleClause, { kind: 'match' }> | undefined;
    // A clause that failed to parse was reported there; do not report it missing too.
    const broken = (this.options.parseErrors ?? []).some((e) => e.file === this.file && e.offset >= d.span.offset && e.offset < d.span.endOffset);
    if (!from && !broken) this.error('compile/missing-from', `rule '${d.name.name}' has no 'from' clause`, d.name.span);
    if (!match && !broken) this.error('compile/missing-match', `rule '${d.name.name}' has no 'match' clause`, d.name.span);

    // Streams and the key.
    const streamNames: string[] = [];
    const keyOf = new Map<string, Evaluator | null>();
    if (from) {
      const by = from.by ? compileValue(from.by, this.ctx({ kind: 'event' })) : null;
      for (const s of from.streams) {
        if (streamNames.includes(s.name)) {
          this.error('compile/duplicate-stream', `stream '${s.name}' is named twice`, s.span);
          continue;
        }
        let stream = this.streams.get(s.name);
        if (!stream) {
          stream = implicitStream(s.name);
          this.streams.set(s.name, stream);
        }
        if (!stream.declared) {
          const declared = [...this.streams.values()].filter((x) => x.declared).map((x) => x.name);
          const near = closest(s.name, declared);
          this.warn(
            'compile/implicit-stream',
            `stream '${s.name}' is not declared${near === null ? '' : ` (did you mean '${near}'?)`}: it is read as an implicit stream (no schema, arrival time as event time, watermark 0s)`,
            s.span,
          );
        }
        streamNames.push(s.name);
        keyOf.set(s.name, by ?? stream.keyOf);
        this.noteTimeFields(stream);
      }
      this.schema = schemaOf(streamNames.map((n) => this.streams.get(n)!));
      if (from.by) checkExpr(from.by, this.checks('event'));
      if (!from.by && streamNames.length > 1) {
        const keyed = streamNames.filter((n) => this.streams.get(n)!.keyOf !== null);
        if (keyed.length > 0 && keyed.length < streamNames.length) {
          this.error('compile/key-mismatch', `streams ${streamNames.map((n) => `'${n}'`).join(', ')} do not all declare a key: add 'by EXPR'`, from.span);
        }
      }
    }

    // The pattern.
    let graph: NfaGraph | null = null;
    if (match) {
      this.collectStepNames(match.pattern);
      this.checkPattern(match.pattern, true);
      const plan = this.planSequence(match.pattern, new Set());
      if (this.ok()) {
        try {
          graph = buildGraph(plan);
        } catch (err) {
          if (!(err instanceof GraphTooLarge)) throw err;
          this.error('compile/pattern-too-large', 'the pattern unrolls into too many steps (groups with large counts); simplify it', match.pattern.span);
        }
      }
    }

    const within = clauses.get('within') as Extract<RuleClause, { kind: 'within' }> | undefined;
    if (within && within.duration.ms <= 0) this.error('compile/bad-within', "'within' must be a positive duration", within.duration.span);

    const skipClause = clauses.get('skip') as Extract<RuleClause, { kind: 'skip' }> | undefined;
    const skip: SkipStrategy = skipClause?.strategy ?? 'pastLast';
    let skipNameId = -1;
    if (skipClause?.step) {
      if (!this.positive.has(skipClause.step.name)) {
        this.error('compile/unknown-step', `'${skipClause.step.name}' is not a step of this rule's pattern${didYouMean(skipClause.step.name, this.positive)}`, skipClause.step.span);
      } else skipNameId = this.stepNames.get(skipClause.step.name)!;
    }

    const maxPartials = this.count(clauses.get('maxPartials') as { count: NumberLit } | undefined, DEFAULT_MAX_PARTIALS, 'max partials');

    const alertClause = clauses.get('alert') as AlertClause | undefined;
    const timeoutClause = clauses.get('onTimeout') as AlertClause | undefined;
    const alert = alertClause
      ? this.compileAlert(alertClause)
      : { severity: 'info', message: () => d.title?.value ?? d.name.name, sinks: [] };
    const onTimeout = timeoutClause ? this.compileAlert(timeoutClause) : null;

    const throttleClause = clauses.get('throttle') as Extract<RuleClause, { kind: 'throttle' }> | undefined;
    let throttle: CompiledRule['throttle'] = null;
    if (throttleClause) {
      const count = this.count(throttleClause, 1, 'throttle');
      if (throttleClause.per.ms <= 0) this.error('compile/bad-throttle', "'throttle ... per' must be a positive duration", throttleClause.per.span);
      const by = throttleClause.by ? compileValue(throttleClause.by, this.ctx({ kind: 'template' })) : null;
      if (throttleClause.by) checkExpr(throttleClause.by, this.checks('template'));
      throttle = { count, perMs: throttleClause.per.ms, by };
    }

    // A strategy that releases matches in start order can hold a match while an earlier
    // partial match lives; without `within` that wait has no bound (language §6).
    if (match && !within && skip !== 'none' && this.canHold(match.pattern)) {
      this.warn(
        'compile/unbounded-wait',
        `rule '${d.name.name}' has no 'within': with 'skip ${skipText(skip)}' a finished match can wait without bound for an earlier partial match; add 'within D' or 'skip none'`,
        d.name.span,
      );
    }

    if (!this.ok() || !graph || !from) return null;
    const names: string[] = [];
    for (const [name, id] of this.stepNames) names[id] = name;
    return {
      name: d.name.name,
      title: d.title?.value ?? null,
      version: 1,
      file: this.file,
      span: d.span,
      text: this.program.source.slice(d.span.offset, d.span.endOffset),
      streams: streamNames,
      keyOf,
      stepNames: names,
      graph,
      nfa: { withinMs: within ? within.duration.ms : null, skip, skipNameId, maxPartials },
      relevant: ignoreSafe(graph) && this.prefilters !== null ? anyOf(this.prefilters) : null,
      alert,
      onTimeout,
      throttle,
      fingerprint: JSON.stringify(
        stripSpans({ from, match, within: within?.duration.ms ?? null, skip, skipStep: skipClause?.step?.name ?? null, maxPartials }),
      ),
    };
  }

  private ok(): boolean {
    for (let i = this.start; i < this.diagnostics.length; i++) if (this.diagnostics[i]!.severity === 'error') return false;
    return true;
  }

  private checks(place: CheckContext['place']): CheckContext {
    return { file: this.file, diagnostics: this.diagnostics, stepNames: this.stepNames, place, schema: this.schema };
  }

  private ctx(place: Parameters<typeof compileValue>[1]['place']) {
    return { file: this.file, diagnostics: this.diagnostics, stepNames: this.stepNames, place, timeFields: this.timeFields };
  }

  /** Paths (timePathKey) of the fields that hold times in the streams this rule reads (for templates). */
  private timeFields = new Set<string>();

  private noteTimeFields(stream: CompiledStream): void {
    for (const c of stream.decl?.clauses ?? []) {
      if (c.kind === 'time') {
        const path = fieldPath(c.field);
        if (path !== null) this.timeFields.add(timePathKey(path));
      } else if (c.kind === 'fields') {
        for (const f of c.fields) if (f.type === 'time') this.timeFields.add(timePathKey([f.name]));
      }
    }
  }

  private uniqueClauses(clauses: RuleClause[]): Map<string, RuleClause> {
    const out = new Map<string, RuleClause>();
    for (const c of clauses) {
      const k = c.kind === 'alert' && c.onTimeout ? 'onTimeout' : c.kind;
      if (out.has(k)) {
        this.error('compile/duplicate-clause', `the '${clauseName(k)}' clause is given twice`, c.span);
        continue;
      }
      out.set(k, c);
    }
    return out;
  }

  private count(c: { count: NumberLit } | undefined, dflt: number, what: string): number {
    if (!c) return dflt;
    const n = c.count.value;
    if (!Number.isInteger(n) || n < 1) {
      this.error('compile/bad-count', `'${what}' needs a whole number of at least 1`, c.count.span);
      return dflt;
    }
    if (what === 'max partials' && n > MAX_PARTIALS_CEILING) {
      this.error('compile/max-partials-too-high', `'max partials' is at most ${MAX_PARTIALS_CEILING.toLocaleString('en-US')} (got ${n})`, c.count.span);
      return dflt;
    }
    return n;
  }

  // -------------------------------------------------------------- pattern checks

  private collectStepNames(p: Pattern): void {
    for (const el of p.elements) {
      if (el.kind === 'group') {
        this.collectStepNames(el.pattern);
        continue;
      }
      const name = el.name.name;
      if (this.stepNames.has(name)) {
        this.error('compile/duplicate-step', `step name '${name}' is used twice in this pattern`, el.name.span);
        continue;
      }
      this.stepNames.set(name, this.stepNames.size);
      if (!el.negated) this.positive.add(name);
    }
  }

  private checkPattern(p: Pattern, topLevel: boolean): void {
    const els = p.elements;
    els.forEach((el, i) => {
      const last = i === els.length - 1;
      if (el.kind === 'group') {
        if (el.quantifier) this.checkQuantifier(el.quantifier);
        const inner = el.pattern.elements;
        if (inner.length > 0 && inner[inner.length - 1]!.kind === 'step' && (inner[inner.length - 1] as Step).negated) {
          this.error('compile/negation-ends-group', 'a group cannot end with a negated step', inner[inner.length - 1]!.span);
        }
        if (inner.length > 0 && inner[0]!.kind === 'step' && (inner[0] as Step).negated) {
          this.error('compile/negated-first-step', 'a group cannot start with a negated step', inner[0]!.span);
        }
        this.checkPattern(el.pattern, false);
        return;
      }
      if (el.quantifier) this.checkQuantifier(el.quantifier);
      const looping = (el.quantifier?.max ?? 1) > 1;
      const mods = new Set<string>();
      for (const m of el.modifiers) {
        if (mods.has(m.kind)) this.error('compile/duplicate-modifier', `'${m.kind}' is given twice`, m.span);
        mods.add(m.kind);
        if (el.negated) this.error('compile/modifier-on-negation', `a negated step takes no '${m.kind}'`, m.span);
        else if (!looping) this.error('compile/modifier-needs-loop', `'${m.kind}' applies to a repeated step (+, *, {n,}, {n,m} with m > 1)`, m.span);
      }
      if (mods.has('consecutive') && mods.has('combinations')) {
        this.error('compile/conflicting-modifiers', "'consecutive' and 'combinations' cannot both be given", el.span);
      }
      if (!el.negated) {
        if (el.absence) this.error('compile/absence-needs-then-not', "'for D' belongs to an absence step: 'then not NAME: CONDITION for D'", el.absence.span);
        return;
      }
      if (topLevel && i === 0) this.error('compile/negated-first-step', 'a pattern cannot start with a negated step', el.span);
      if (el.quantifier) this.error('compile/quantified-negation', 'a negated step cannot have a quantifier', el.quantifier.span);
      const linkBefore = i > 0 ? p.links[i - 1]!.link : null;
      if (el.absence) {
        if (!topLevel || !last) this.error('compile/absence-not-last', "an absence ('then not ... for D') must be the last step of the pattern", el.absence.span);
        else if (linkBefore === 'next') this.error('compile/absence-needs-then-not', "an absence is written 'then not NAME: CONDITION for D'", el.span);
        if (el.absence.ms <= 0) this.error('compile/bad-duration', 'the absence duration must be positive', el.absence.span);
      } else if (topLevel && last && linkBefore !== 'next') {
        this.error('compile/trailing-then-not', "a pattern cannot end with 'then not' without a duration: write 'then not NAME: CONDITION for D'", el.span);
      }
    });
  }

  private checkQuantifier(q: { min: number; max: number; text: string; span: Span }): void {
    if (q.max === 0) this.error('compile/zero-quantifier', `'${q.text}' allows no event: use at least {1}`, q.span);
    else if ((Number.isFinite(q.max) && q.max > MAX_QUANTIFIER_COUNT) || q.min > MAX_QUANTIFIER_COUNT) {
      this.error('compile/quantifier-too-large', `'${q.text}': counts are at most ${MAX_QUANTIFIER_COUNT.toLocaleString('en-US')}`, q.span);
    }
    else if (q.min > q.max) this.error('compile/bad-quantifier', `'${q.text}': the minimum is larger than the maximum`, q.span);
  }

  /**
   * Can a partial match outlive its first event without bound (so that a finished match may
   * wait for it)? Not for one plain step, nor for one plain step followed by an absence, whose
   * wait ends after its `for` duration.
   */
  private canHold(p: Pattern): boolean {
    const els = p.elements;
    const plain = (e: PatternElement | undefined) => e !== undefined && e.kind === 'step' && !e.negated && (e.quantifier?.max ?? 1) === 1;
    if (els.length === 1) return !plain(els[0]);
    const last = els[els.length - 1]!;
    if (els.length === 2 && plain(els[0]) && last.kind === 'step' && last.negated && last.absence !== null) return false;
    return true;
  }

  // -------------------------------------------------------------- lowering to a graph plan

  /** `bound`: names of positive steps that come before (conditions may refer to them). */
  private planSequence(p: Pattern, bound: Set<string>): SequencePlan {
    const elements: PatternPlan[] = [];
    for (const el of p.elements) elements.push(this.planElement(el, bound));
    return {
      elements,
      links: p.links.map((l) => LINK[l.link]),
      linkIsNext: p.links.map((l) => l.link === 'next'),
    };
  }

  private planElement(el: PatternElement, bound: Set<string>): PatternPlan {
    if (el.kind === 'group') {
      // Inside a group every step may refer to steps bound earlier in the same repetition and
      // before the group; the group's own steps collect events across repetitions.
      const seq = this.planSequence(el.pattern, bound);
      return {
        kind: 'group',
        elements: seq.elements,
        links: seq.links,
        linkIsNext: seq.linkIsNext,
        min: el.quantifier?.min ?? 1,
        max: el.quantifier?.max ?? 1,
        span: el.span,
      };
    }
    const name = el.name.name;
    const snapshot = new Set(bound);
    const cond = compileCondition(el.condition, this.ctx({ kind: 'condition', step: name, bound: snapshot }));
    const untilMod = el.modifiers.find((m) => m.kind === 'until');
    const until = untilMod && untilMod.kind === 'until' ? compileCondition(untilMod.condition, this.ctx({ kind: 'until', step: name, bound: snapshot })) : null;
    const has = (k: string) => el.modifiers.some((m) => m.kind === k);
    checkExpr(el.condition, this.checks('condition'));
    if (untilMod && untilMod.kind === 'until') checkExpr(untilMod.condition, this.checks('condition'));
    this.addPrefilter(el.condition, name);
    if (untilMod && untilMod.kind === 'until') this.addPrefilter(untilMod.condition, name);
    if (!el.negated) bound.add(name);
    return {
      kind: 'step',
      negated: el.negated,
      name,
      nameId: this.stepNames.get(name) ?? 0,
      cond,
      until,
      min: el.quantifier?.min ?? 1,
      max: el.quantifier?.max ?? 1,
      loop: has('consecutive') ? STRICT : has('combinations') ? ANY : RELAXED,
      greedy: has('greedy'),
      absenceMs: el.absence ? el.absence.ms : null,
      span: el.span,
    };
  }

  /**
   * The conjuncts of a condition that read no bound event: if they are false for an event,
   * the whole condition is false for every partial match.
   */
  private addPrefilter(cond: Expr, step: string): void {
    if (this.prefilters === null) return;
    const free = conjuncts(cond).filter((c) => referencedSteps(c, this.stepNames).size === 0);
    if (free.length === 0) {
      this.prefilters = null;
      return;
    }
    const expr = free.reduce((a, b): Expr => ({ kind: 'binary', op: 'and', left: a, right: b, span: a.span }));
    const scratch: Diag[] = []; // errors of these parts were reported with the whole condition
    this.prefilters.push(compileCondition(expr, { file: this.file, diagnostics: scratch, stepNames: this.stepNames, place: { kind: 'condition', step, bound: new Set() } }));
  }

  // -------------------------------------------------------------- alerts and sinks

  private compileAlert(c: AlertClause): CompiledAlert {
    const message = compileTemplate(c.message, this.ctx({ kind: 'template' }));
    checkTemplate(c.message, this.checks('template'));
    const sinks: CompiledSink[] = [];
    for (const s of c.sinks) {
      const sink = this.compileSink(s);
      if (sink) sinks.push(sink);
    }
    return { severity: c.severity.name, message, sinks };
  }

  private setting(v: SettingValue): string {
    if (v.kind === 'string') return v.value;
    const prefix = this.options.envPrefix ?? DEFAULT_ENV_PREFIX;
    if (!v.name.startsWith(prefix)) {
      // Decided by the name alone, never by the environment: nobody learns which variables exist.
      this.error('compile/env-not-allowed', `env() reads only variables whose names start with ${prefix} (setting VIGIL_ENV_PREFIX)`, v.span);
      return '';
    }
    const env = this.options.env ?? process.env;
    const value = env[v.name];
    if (value === undefined) {
      this.warn('compile/env-unset', `environment variable '${v.name}' is not set`, v.span);
      return '';
    }
    return value;
  }

  private compileSink(s: SinkClause): CompiledSink | null {
    this.checkSinkConfigured(s);
    switch (s.kind) {
      case 'webhook': {
        const url = this.httpTarget(s.url, 'webhook');
        for (const h of s.headers) {
          if (!HTTP_TOKEN.test(h.name.value)) {
            this.error('compile/bad-header', `'${h.name.value}' is not an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~, no spaces)`, h.name.span);
          }
        }
        return {
          kind: 'webhook',
          url,
          headers: s.headers.map((h) => ({ name: h.name.value, value: this.setting(h.value) })),
          secret: s.secret ? this.setting(s.secret) : null,
        };
      }
      case 'email': {
        const to = s.to.map((a) => {
          const v = this.setting(a);
          if (a.kind === 'string' && v.trim() === '') this.error('compile/empty-address', 'the email address is empty', a.span);
          else if (a.kind === 'string' && !/^[^\s@]+@[^\s@]+$/.test(v)) this.error('compile/bad-address', `'${v}' is not an email address`, a.span);
          else if (a.kind === 'env') this.notEmptyEnv(a, v);
          return v;
        });
        if (s.subject) checkTemplate(s.subject, this.checks('template'));
        return { kind: 'email', to, subject: s.subject ? compileTemplate(s.subject, this.ctx({ kind: 'template' })) : null };
      }
      case 'mqtt':
        this.checkTopic(s.topic);
        checkTemplate(s.topic, this.checks('template'));
        return { kind: 'mqtt', topic: compileTemplate(s.topic, this.ctx({ kind: 'template' })), qos: s.qos ?? 1, retain: s.retain };
      case 'alertmanager':
        return { kind: 'alertmanager', urls: s.urls.map((u) => this.httpTarget(u, 'alertmanager')) };
      case 'log':
        return { kind: 'log' };
    }
  }

  /**
   * The URL of a webhook or an Alertmanager, checked: http(s), and a literal target the
   * webhook address policy refuses (an internal IP, `localhost`) does not compile. The message
   * never quotes the URL: many hooks carry their token in the path.
   */
  private httpTarget(v: SettingValue, what: 'webhook' | 'alertmanager'): string {
    const url = this.setting(v);
    if (v.kind === 'string' && url.trim() === '') this.error('compile/empty-url', `the ${what} URL is empty`, v.span);
    else if (v.kind === 'string' && !isHttpUrl(url)) {
      this.error('compile/bad-url', `the ${what} URL is not an http(s) URL`, v.span);
    } else if (v.kind === 'string' && this.options.webhookPolicy) {
      const u = new URL(url);
      const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
      const why = this.options.webhookPolicy.checkHost(u.hostname, port);
      if (why !== null) this.error('compile/webhook-refused', `${what} target refused: ${why} (${ALLOW_HINT})`, v.span);
    } else if (v.kind === 'env') this.notEmptyEnv(v, url);
    return url;
  }

  /** An `env("NAME")` that is set but empty gives an empty address or URL. */
  private notEmptyEnv(v: Extract<SettingValue, { kind: 'env' }>, value: string): void {
    // A name outside the prefix was refused by name alone: saying it is empty would tell it exists.
    if (!v.name.startsWith(this.options.envPrefix ?? DEFAULT_ENV_PREFIX)) return;
    const env = this.options.env ?? process.env;
    if (env[v.name] !== undefined && value.trim() === '') this.error('compile/env-empty', `environment variable '${v.name}' is empty`, v.span);
  }

  /** A sink kind the service has no configuration for would fail at every delivery: say so at load. */
  private checkSinkConfigured(s: SinkClause): void {
    const configured = this.options.configuredSinks;
    if (configured === undefined) return;
    if (s.kind === 'email' && !configured.email) {
      this.warn('compile/sink-not-configured', "'to email' needs VIGIL_SMTP_URL, which this service does not set: every email delivery of this rule will fail", s.span);
    } else if (s.kind === 'mqtt' && !configured.mqtt) {
      this.warn('compile/sink-not-configured', "'to mqtt' needs VIGIL_MQTT_URL, which this service does not set: every MQTT delivery of this rule will fail", s.span);
    }
  }

  /**
   * A publish topic is a name, not a filter: `+` and `#` are refused by brokers (MQTT 3.1.1
   * §4.7.1), and an empty topic is invalid. Checked on the literal text outside the holes.
   */
  private checkTopic(t: Template): void {
    if (t.parts.length === 0) {
      this.error('compile/empty-topic', 'the MQTT topic is empty', t.span);
      return;
    }
    const raw = this.program.source.slice(t.span.offset, t.span.endOffset);
    let depth = 0;
    for (let i = 0; i < raw.length; i++) {
      const ch = raw[i]!;
      if (depth === 0 && (ch === '{' || ch === '}') && raw[i + 1] === ch) {
        i++;
        continue;
      }
      if (ch === '{') depth++;
      else if (ch === '}' && depth > 0) depth--;
      else if (depth === 0 && (ch === '+' || ch === '#')) {
        const at: Span = { offset: t.span.offset + i, endOffset: t.span.offset + i + 1, line: t.span.line, col: t.span.col + i };
        this.error('compile/topic-wildcard', `an MQTT publish topic cannot contain the wildcard '${ch}' (wildcards are for subscriptions)`, at);
        return;
      }
    }
  }
}

/** An HTTP header name (RFC 9110 token). */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function conjuncts(e: Expr): Expr[] {
  return e.kind === 'binary' && e.op === 'and' ? [...conjuncts(e.left), ...conjuncts(e.right)] : [e];
}

function anyOf(conds: Condition[]): Condition {
  if (conds.length === 1) return conds[0]!;
  if (conds.length === 2) {
    const [a, b] = conds as [Condition, Condition];
    return (s) => a(s) || b(s);
  }
  return (s) => {
    for (let i = 0; i < conds.length; i++) if (conds[i]!(s)) return true;
    return false;
  };
}

/**
 * Can an event that satisfies no condition of the pattern be skipped without changing any
 * partial match? Not with strict contiguity (`next`, `consecutive`: the event breaks the
 * chain), `next not` (the event is "the next one"), or `greedy` (a fresh run that skipped it
 * would still be allowed to both loop and proceed later).
 */
function ignoreSafe(g: NfaGraph): boolean {
  return (
    g.startExits.every((x) => x.nextGuards === null) &&
    g.steps.every(
      (s) =>
        s.loop !== STRICT &&
        !s.greedy &&
        s.exits.every((x) => x.link !== STRICT && x.nextGuards === null) &&
        s.finals.every((f) => f.nextGuards === null),
    )
  );
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function clauseName(kind: string): string {
  return kind === 'onTimeout' ? 'on timeout' : kind === 'maxPartials' ? 'max partials' : kind;
}

function skipText(s: SkipStrategy): string {
  return { none: 'none', toNext: 'to next', pastLast: 'past last', toFirst: 'to first', toLast: 'to last' }[s];
}

/** A copy of a syntax tree without positions (for fingerprints). */
export function stripSpans(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripSpans);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'span' && k !== 'propertySpan' && k !== 'nameSpan' && k !== 'typeSpan') out[k] = stripSpans(x);
    return out;
  }
  if (v === Infinity) return 'Infinity';
  return v;
}

export type { DurationLit, Expr };
