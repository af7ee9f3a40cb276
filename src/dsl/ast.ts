// The syntax tree of the rule language (language.md). Every node carries its source span.
// Produced by the parser (src/dsl/parser.ts), read by the compiler. Plain data: no methods,
// no references back to parents, serializable with JSON.stringify.

import type { Span } from '../core/diagnostics.js';

export interface Node {
  span: Span;
}

export interface Ident extends Node {
  name: string;
}

/** One parsed rules file. `decls` holds every declaration that parsed, even when others did not. */
export interface Program {
  file: string;
  source: string;
  decls: Decl[];
}

export type Decl = StreamDecl | RuleDecl | TestDecl;

// ---------------------------------------------------------------- tests (language §13)

/** `test "TITLE" { given ... until ... expect ... }`: a rule test, run with the rules of its file. */
export interface TestDecl extends Node {
  kind: 'test';
  /** The title; `name.name` is its text, `name.span` the quoted string. */
  name: Ident;
  clauses: TestClause[];
}

/** One event of a `given STREAM { ... }` block: the parsed JSON object and where it is written. */
export interface GivenEvent {
  value: { [k: string]: unknown };
  span: Span;
  /** Each top-level field name and where it is written (for the schema check). */
  fields: { name: string; span: Span }[];
}

export type TestClause =
  /** `given STREAM { ... }`, `given STREAM from "FILE"`, or `given from "FILE"` (stream: null; each line's `$stream`, as in `vigil run`). */
  | { kind: 'given'; stream: Ident | null; events: GivenEvent[] | null; from: StringLit | null; span: Span }
  | { kind: 'until'; time: StringLit | NumberLit; span: Span }
  | Expectation;

export interface Expectation {
  kind: 'expect';
  /** `alert` / `timeout` (a record of that kind), `alerts` (a count of every alert record), `late` (late events). */
  what: 'alert' | 'timeout' | 'alerts' | 'late';
  /** `expect no ...`. */
  negated: boolean;
  count: NumberLit | null;
  /** The rule (alert, timeout, alerts) or stream (late) named; null when none is. */
  name: Ident | null;
  filters: ExpectFilter[];
  span: Span;
}

export type ExpectFilter =
  | { kind: 'key'; value: StringLit | NumberLit; span: Span }
  | { kind: 'at'; value: StringLit | NumberLit; span: Span }
  | { kind: 'message'; value: StringLit; span: Span };

// ---------------------------------------------------------------- streams (language §3)

export interface StreamDecl extends Node {
  kind: 'stream';
  name: Ident;
  /** Clauses in source order; the compiler reports a clause given twice. */
  clauses: StreamClause[];
}

export type StreamClause =
  | { kind: 'key'; expr: Expr; span: Span }
  | { kind: 'time'; field: Expr; span: Span }
  | { kind: 'watermark'; duration: DurationLit; span: Span }
  | { kind: 'idle'; duration: DurationLit; span: Span }
  | { kind: 'fields'; fields: FieldDecl[]; span: Span }
  | { kind: 'source'; transport: 'mqtt'; filter: StringLit; span: Span }
  /** `id FIELD`: a field that identifies an event, used to drop redelivered duplicates. */
  | { kind: 'id'; field: Expr; span: Span }
  /** `max lead D`: how far event time may be ahead of the wall clock at arrival (service only). */
  | { kind: 'maxLead'; duration: DurationLit; span: Span }
  /** `max size N`: the largest event in bytes (service only). */
  | { kind: 'maxSize'; bytes: NumberLit; span: Span };

export type FieldType = 'string' | 'number' | 'boolean' | 'time' | 'object' | 'list' | 'any';

export interface FieldDecl extends Node {
  /** The field name; a quoted name (`"x-id": string`) is allowed for names that are not identifiers. */
  name: string;
  nameSpan: Span;
  type: FieldType;
  typeSpan: Span;
  optional: boolean;
}

// ---------------------------------------------------------------- rules (language §4)

export interface RuleDecl extends Node {
  kind: 'rule';
  name: Ident;
  /** The optional quoted title after the name. */
  title: StringLit | null;
  /** Clauses in source order; the compiler reports a missing `from`/`match` and a clause given twice. */
  clauses: RuleClause[];
}

export type RuleClause =
  | FromClause
  | MatchClause
  | { kind: 'within'; duration: DurationLit; span: Span }
  | SkipClause
  | AlertClause
  | ThrottleClause
  | { kind: 'maxPartials'; count: NumberLit; span: Span };

export interface FromClause extends Node {
  kind: 'from';
  streams: Ident[];
  by: Expr | null;
}

export interface MatchClause extends Node {
  kind: 'match';
  pattern: Pattern;
}

export type SkipStrategy = 'none' | 'toNext' | 'pastLast' | 'toFirst' | 'toLast';

export interface SkipClause extends Node {
  kind: 'skip';
  strategy: SkipStrategy;
  /** The step name of `skip to first v` / `skip to last v`. */
  step: Ident | null;
}

/** `alert SEVERITY TEMPLATE [to SINK]...`, or with `onTimeout`, `on timeout alert ...`. */
export interface AlertClause extends Node {
  kind: 'alert';
  onTimeout: boolean;
  severity: Ident;
  message: Template;
  sinks: SinkClause[];
}

export interface ThrottleClause extends Node {
  kind: 'throttle';
  count: NumberLit;
  per: DurationLit;
  by: Expr | null;
}

/** A value in sink settings: a string, or `env("NAME")` (allowed only here). */
export type SettingValue =
  | { kind: 'string'; value: string; span: Span }
  | { kind: 'env'; name: string; span: Span };

export type SinkClause =
  | {
      kind: 'webhook';
      url: SettingValue;
      headers: { name: StringLit; value: SettingValue; span: Span }[];
      secret: SettingValue | null;
      span: Span;
    }
  | { kind: 'email'; to: SettingValue[]; subject: Template | null; span: Span }
  | { kind: 'mqtt'; topic: Template; qos: 0 | 1 | 2 | null; retain: boolean; span: Span }
  /** `to alertmanager "URL" [, "URL"]...`: every Alertmanager of an HA pair is posted to. */
  | { kind: 'alertmanager'; urls: SettingValue[]; span: Span }
  | { kind: 'log'; span: Span };

// ---------------------------------------------------------------- patterns (language §5)

export type Link = 'next' | 'then' | 'thenAny';

/** `element (link element)*`: `links[i]` joins `elements[i]` and `elements[i + 1]`. */
export interface Pattern extends Node {
  kind: 'pattern';
  elements: PatternElement[];
  links: LinkNode[];
}

export interface LinkNode extends Node {
  link: Link;
}

export type PatternElement = Step | Group;

export interface Step extends Node {
  kind: 'step';
  negated: boolean;
  name: Ident;
  quantifier: Quantifier | null;
  condition: Expr;
  modifiers: Modifier[];
  /** `then not x: C for D` (absence at the end): the duration D. */
  absence: DurationLit | null;
}

export interface Group extends Node {
  kind: 'group';
  pattern: Pattern;
  quantifier: Quantifier | null;
}

/** `{n}` `{n,}` `{n,m}` `+` `*` `?`, as written. `max` is Infinity when unbounded. */
export interface Quantifier extends Node {
  min: number;
  max: number;
  text: string;
}

export type Modifier =
  | { kind: 'greedy'; span: Span }
  | { kind: 'consecutive'; span: Span }
  | { kind: 'combinations'; span: Span }
  | { kind: 'until'; condition: Expr; span: Span };

// ---------------------------------------------------------------- expressions (language §7)

export type BinaryOp =
  | 'or'
  | 'and'
  | '=='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | 'in'
  | 'not in'
  | 'contains'
  | 'startswith'
  | 'endswith'
  | '+'
  | '-'
  | '*'
  | '/'
  | '%';

export type Expr =
  | NullLit
  | BoolLit
  | NumberLit
  | StringLit
  | DurationLit
  | { kind: 'list'; items: Expr[]; span: Span }
  /** A bare identifier: a field of the candidate event, or a step name. */
  | { kind: 'name'; name: string; span: Span }
  /** `$`, the candidate event itself. */
  | { kind: 'event'; span: Span }
  | { kind: 'member'; object: Expr; property: string; propertySpan: Span; span: Span }
  | { kind: 'index'; object: Expr; index: Expr; span: Span }
  | { kind: 'call'; callee: Ident; args: Expr[]; span: Span }
  | { kind: 'unary'; op: '-' | 'not'; operand: Expr; span: Span }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr; span: Span }
  | { kind: 'matches'; subject: Expr; regex: RegexLit; span: Span };

export interface NullLit extends Node {
  kind: 'null';
}
export interface BoolLit extends Node {
  kind: 'bool';
  value: boolean;
}
export interface NumberLit extends Node {
  kind: 'number';
  value: number;
}
/** A decoded string literal (escapes resolved). */
export interface StringLit extends Node {
  kind: 'string';
  value: string;
}
/** `250ms` `5s` `10m` `2h` `1d` `1.5s`: `ms` is the value in milliseconds. */
export interface DurationLit extends Node {
  kind: 'duration';
  ms: number;
  text: string;
}
export interface RegexLit extends Node {
  source: string;
  flags: string;
}

// ---------------------------------------------------------------- templates (language §4)

/**
 * A string with `{EXPR}` holes; `{{` and `}}` are literal braces. `parts` alternate between
 * literal text and parsed hole expressions, whose spans point into the rules file.
 */
export interface Template extends Node {
  kind: 'template';
  parts: (string | Expr)[];
}
