// Rule tests (language §13): `test "TITLE" { given ... until ... expect ... }` blocks → checked,
// compiled tests. A test runs with the rules of its own file (a `NAME.test.vigil` file: with the
// rules of `NAME.vigil` beside it too) over the events it gives, in the order written. Every
// name it uses is checked here, with positions: streams of `given` and `expect late`, rules of
// `expect`, fields of inline events against a declared schema; a `from` file that cannot be read
// is an error too. Running them is src/cli/rule-tests.ts (through the replay of `vigil run`).

import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { diagnostic, type Diagnostic, type Span } from '../core/diagnostics.js';
import type { Json } from '../core/event.js';
import type { Expectation, NumberLit, Program, StringLit, TestDecl } from '../dsl/ast.js';
import { schemaOf } from './checks.js';
import type { CompiledStream } from './streams.js';
import { didYouMean } from './suggest.js';

/** Default bound on the events of one test (inline and from files together). */
export const DEFAULT_TEST_MAX_EVENTS = 10_000;

export interface CompiledExpectation {
  what: Expectation['what'];
  negated: boolean;
  count: number | null;
  /** Rule (alert, timeout, alerts) or stream (late); null: any. */
  name: string | null;
  /** Present when the expectation names a key. */
  key?: Json;
  /** Epoch ms the alert's time must equal; null: any time. */
  at: number | null;
  message: string | null;
  span: Span;
  /** The expectation as written. */
  text: string;
}

export interface CompiledTest {
  title: string;
  file: string;
  span: Span;
  /** Names of the rules it runs with: those of its file (and of NAME.vigil for NAME.test.vigil). */
  rules: string[];
  /** The events, in the order given: one object with its stream each. */
  events: { stream: string | null; data: { [k: string]: Json } }[];
  /** Where time stops (epoch ms); null: the input ends at W = +∞. */
  until: number | null;
  expectations: CompiledExpectation[];
}

export interface TestCompileOptions {
  /**
   * Reads the file of `given STREAM from "PATH"` (PATH relative to the test's file). Returns the
   * text, or throws with a message. Default: the file system.
   */
  readEventsFile?: (testFile: string, path: string) => string;
  /** Most events in one test (default DEFAULT_TEST_MAX_EVENTS). */
  maxEvents?: number;
}

/** The tests of every file, with their diagnostics pushed to `diagnostics`. */
export function compileTests(
  programs: Program[],
  readStreams: Iterable<string>,
  streams: Map<string, CompiledStream>,
  diagnostics: Diagnostic[],
  options: TestCompileOptions = {},
): CompiledTest[] {
  const out: CompiledTest[] = [];
  // Streams a test may feed: declared ones, and those the rules read (undeclared streams exist implicitly).
  const knownStreams = new Set([...streams.keys(), ...readStreams]);
  const rulesByFile = new Map<string, string[]>();
  for (const p of programs) rulesByFile.set(p.file, p.decls.filter((d) => d.kind === 'rule').map((d) => d.name.name));
  for (const program of programs) {
    for (const decl of program.decls) {
      if (decl.kind !== 'test') continue;
      const test = compileTest(decl, program, rulesByFile, streams, knownStreams, diagnostics, options);
      if (test !== null) out.push(test);
    }
  }
  return out;
}

/** The rules a test of `file` runs with. */
export function rulesOfTestFile(file: string, rulesByFile: Map<string, string[]>): string[] {
  const own = rulesByFile.get(file) ?? [];
  if (!file.endsWith('.test.vigil')) return own;
  const sibling = join(dirname(file), basename(file, '.test.vigil') + '.vigil');
  const beside = rulesByFile.get(sibling) ?? rulesByFile.get(sibling.replace(/^\.\//, '')) ?? [];
  return [...own, ...beside];
}

/** ISO-8601 with a zone, or epoch ms; null when neither. */
export function parseTestTime(lit: StringLit | NumberLit): number | null {
  if (lit.kind === 'number') return Number.isFinite(lit.value) ? lit.value : null;
  const text = lit.value.trim();
  if (!/^\d{4}-\d\d-\d\dT.*(Z|[+-]\d\d:?\d\d)$/i.test(text)) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

function compileTest(
  decl: TestDecl,
  program: Program,
  rulesByFile: Map<string, string[]>,
  streams: Map<string, CompiledStream>,
  knownStreams: Set<string>,
  diagnostics: Diagnostic[],
  options: TestCompileOptions,
): CompiledTest | null {
  const file = program.file;
  const before = diagnostics.length;
  const err = (code: string, message: string, span: Span) => diagnostics.push(diagnostic('error', code, message, file, span));
  const rules = rulesOfTestFile(file, rulesByFile);
  const maxEvents = options.maxEvents ?? DEFAULT_TEST_MAX_EVENTS;
  const read = options.readEventsFile ?? ((testFile: string, path: string) => readFileSync(resolve(dirname(testFile), path), 'utf8'));
  const events: CompiledTest['events'] = [];
  let until: number | null = null;
  let untilSpan: Span | null = null;
  const expectations: CompiledExpectation[] = [];
  if (rules.length === 0) {
    err('test/no-rules', `test "${decl.name.name}" has no rules to run: declare them in this file${file.endsWith('.test.vigil') ? ` or in ${basename(file, '.test.vigil')}.vigil beside it` : ''}`, decl.name.span);
  }
  let tooMany = false;
  const addEvent = (stream: string | null, data: { [k: string]: Json }, span: Span) => {
    if (events.length >= maxEvents) {
      if (!tooMany) err('test/too-many-events', `this test gives more than ${maxEvents} events (the most one test may give)`, span);
      tooMany = true;
      return;
    }
    events.push({ stream, data });
  };
  for (const clause of decl.clauses) {
    if (clause.kind === 'given') {
      const stream = clause.stream?.name ?? null;
      if (clause.stream !== null && stream !== null && !knownStreams.has(stream)) {
        err('test/unknown-stream', `unknown stream '${stream}'${didYouMean(stream, knownStreams)}`, clause.stream.span);
        continue;
      }
      if (clause.events !== null && stream !== null) {
        const schema = schemaOf([streams.get(stream)!]);
        for (const e of clause.events) {
          if (schema !== null) {
            for (const f of e.fields) {
              if (!schema.fields.has(f.name)) {
                err('test/unknown-field', `stream '${stream}' declares no field '${f.name}'${didYouMean(f.name, schema.fields.keys())}`, f.span);
              }
            }
          }
          addEvent(stream, e.value as { [k: string]: Json }, e.span);
        }
      } else if (clause.from !== null) {
        let text: string;
        try {
          text = read(file, clause.from.value);
        } catch (e) {
          const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
          err('test/events-file', `cannot read the events file '${clause.from.value}': ${why}`, clause.from.span);
          continue;
        }
        const lines = text.split('\n');
        for (let i = 0; i < lines.length && !tooMany; i++) {
          const line = lines[i]!.trim();
          if (line === '') continue;
          let value: unknown;
          try {
            value = JSON.parse(line);
          } catch (e) {
            err('test/events-file', `${clause.from.value}:${i + 1}: invalid JSON: ${(e as Error).message}`, clause.from.span);
            continue;
          }
          if (value === null || typeof value !== 'object' || Array.isArray(value)) {
            err('test/events-file', `${clause.from.value}:${i + 1}: an event must be a JSON object`, clause.from.span);
            continue;
          }
          addEvent(stream, value as { [k: string]: Json }, clause.from.span);
        }
      }
    } else if (clause.kind === 'until') {
      if (untilSpan !== null) {
        err('test/duplicate-until', `'until' is given twice in this test (first at line ${untilSpan.line})`, clause.span);
        continue;
      }
      untilSpan = clause.span;
      until = parseTestTime(clause.time);
      if (until === null) err('test/bad-time', `'until' wants ISO-8601 time with a zone (e.g. "2026-11-20T10:05:00Z") or epoch milliseconds`, clause.time.span);
    } else {
      const x = compileExpectation(clause, program.source, rules, knownStreams, err);
      if (x !== null) expectations.push(x);
    }
  }
  if (decl.clauses.every((c) => c.kind !== 'expect')) {
    err('test/no-expectation', `test "${decl.name.name}" expects nothing: add at least one 'expect'`, decl.name.span);
  }
  if (diagnostics.length > before) return null;
  return { title: decl.name.name, file, span: decl.span, rules, events, until, expectations };
}

function compileExpectation(
  x: Expectation,
  source: string,
  rules: string[],
  knownStreams: Set<string>,
  err: (code: string, message: string, span: Span) => void,
): CompiledExpectation | null {
  let ok = true;
  if (x.name !== null) {
    if (x.what === 'late') {
      if (!knownStreams.has(x.name.name)) {
        err('test/unknown-stream', `unknown stream '${x.name.name}'${didYouMean(x.name.name, knownStreams)}`, x.name.span);
        ok = false;
      }
    } else if (!rules.includes(x.name.name)) {
      err('test/unknown-rule', `'${x.name.name}' is not a rule this test runs${didYouMean(x.name.name, rules)} (it runs: ${rules.join(', ') || 'none'})`, x.name.span);
      ok = false;
    }
  }
  if (x.count !== null && (!Number.isInteger(x.count.value) || x.count.value < 0)) {
    err('test/bad-count', 'a count is a whole number', x.count.span);
    ok = false;
  }
  const compiled: CompiledExpectation = {
    what: x.what,
    negated: x.negated,
    count: x.count?.value ?? null,
    name: x.name?.name ?? null,
    at: null,
    message: null,
    span: x.span,
    text: source.slice(x.span.offset, x.span.endOffset),
  };
  const seen = new Set<string>();
  for (const f of x.filters) {
    if (seen.has(f.kind)) {
      err('test/duplicate-filter', `'${f.kind}' is given twice in this expectation`, f.span);
      ok = false;
    }
    seen.add(f.kind);
    if (f.kind === 'key') compiled.key = f.value.value;
    else if (f.kind === 'message') compiled.message = f.value.value;
    else {
      compiled.at = parseTestTime(f.value);
      if (compiled.at === null) {
        err('test/bad-time', `'at' wants ISO-8601 time with a zone (e.g. "2026-11-20T10:00:07Z") or epoch milliseconds`, f.value.span);
        ok = false;
      }
    }
  }
  return ok ? compiled : null;
}
