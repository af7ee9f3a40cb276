// Runs rule tests (language §13) through the replay of `vigil run` (run.ts): a fresh in-memory
// engine per test, the rules of the test's file, its events in the order written, time stopping
// at its `until` or at +∞. Synchronous (a replay over a string runs to its end before it
// returns), so the service can run tests inside a hot load without yielding between check and swap.

import type { AlertRecord, LateRecord } from '../core/alert.js';
import { diagnostic, renderDiagnostic, type Diagnostic } from '../core/diagnostics.js';
import type { Json } from '../core/event.js';
import type { CompiledRule } from '../compiler/rule.js';
import type { CompiledStream } from '../compiler/streams.js';
import type { CompiledExpectation, CompiledTest } from '../compiler/tests.js';
import { replayCompiled, type OutputRecord } from './run.js';

/** Default wall-clock limit for the tests of one hot load in the service (ms). */
export const DEFAULT_TEST_TIME_LIMIT_MS = 5_000;

export interface TestFailure {
  /** Positioned at the failing expectation (or at the test's title when its input failed). */
  diagnostic: Diagnostic;
  /** What came out instead: the nearest alerts (or late events), one line each. */
  got: string[];
}

export interface TestOutcome {
  title: string;
  file: string;
  line: number;
  passed: boolean;
  failures: TestFailure[];
  /** Every record the replay gave (alerts and late events). */
  records: OutputRecord[];
}

export interface RunTestsOptions {
  /** Wall-clock time (epoch ms) after which the tests stop (the test running then fails). */
  deadline?: number;
}

/** Runs one test with the compiled rules and streams of its program. */
export function runRuleTest(
  test: CompiledTest,
  program: { rules: CompiledRule[]; streams: Map<string, CompiledStream> },
  options: RunTestsOptions = {},
): TestOutcome {
  const rules = program.rules.filter((r) => test.rules.includes(r.name));
  const names = new Set<string>(rules.flatMap((r) => r.streams));
  for (const e of test.events) if (e.stream !== null) names.add(e.stream);
  const streams = [...names].map((n) => program.streams.get(n)).filter((s): s is CompiledStream => s !== undefined);
  // The stream a clause names wins over a line's own `$stream`; without one, the line's is used.
  const lines = test.events.map((e) => JSON.stringify(e.stream === null ? e.data : { ...e.data, $stream: e.stream })).join('\n');
  const records: OutputRecord[] = [];
  const errors: string[] = [];
  let finished = false;
  const outcome: TestOutcome = { title: test.title, file: test.file, line: test.span.line, passed: false, failures: [], records };
  const fail = (message: string, span: CompiledTest['span'], got: string[] = []) =>
    outcome.failures.push({ diagnostic: diagnostic('error', 'test/failed', message, test.file, span), got });
  try {
    const p = replayCompiled(
      rules,
      streams,
      {
        events: lines,
        eventsName: `event`,
        until: test.until ?? undefined,
        deadline: options.deadline,
        onSummary: () => {
          finished = true;
        },
      },
      (r) => records.push(r),
      (e) => errors.push(e),
    );
    p.catch(() => undefined);
  } catch (e) {
    errors.push(`internal error: ${(e as Error).message}`);
  }
  if (errors.length > 0) {
    fail(`the test's events did not all go in: ${errors.slice(0, 3).join('; ')}${errors.length > 3 ? ` (and ${errors.length - 3} more)` : ''}`, test.span);
  } else if (!finished) {
    fail('internal error: the replay did not finish', test.span);
  }
  if (outcome.failures.length === 0) {
    for (const x of test.expectations) {
      const f = checkExpectation(x, records);
      if (f !== null) fail(f.message, x.span, f.got);
    }
  }
  outcome.passed = outcome.failures.length === 0;
  return outcome;
}

/** Runs tests one after the other; once the deadline has passed, the rest fail without running. */
export function runRuleTests(
  tests: CompiledTest[],
  program: { rules: CompiledRule[]; streams: Map<string, CompiledStream> },
  options: RunTestsOptions = {},
): TestOutcome[] {
  const out: TestOutcome[] = [];
  for (const t of tests) {
    if (options.deadline !== undefined && Date.now() > options.deadline) {
      out.push({
        title: t.title,
        file: t.file,
        line: t.span.line,
        passed: false,
        records: [],
        failures: [{ diagnostic: diagnostic('error', 'test/failed', 'not run: the time limit for tests was reached', t.file, t.span), got: [] }],
      });
      continue;
    }
    out.push(runRuleTest(t, program, options));
  }
  return out;
}

/** A failure as `vigil test` prints it: the positioned expectation (caret), then what came out instead. */
export function renderFailure(f: TestFailure, source: string | undefined): string {
  const lines = [renderDiagnostic(f.diagnostic, source)];
  if (f.got.length > 0) {
    lines.push(f.diagnostic.message.includes('late event') ? '  late events:' : '  nearest alerts:');
    for (const g of f.got) lines.push(`    ${g}`);
  } else if (f.diagnostic.message.includes(' came out') || f.diagnostic.message.includes(', got ')) {
    lines.push('  (nothing came out)');
  }
  return lines.join('\n');
}

// ------------------------------------------------------------ expectations

const SHOWN = 3;

function checkExpectation(x: CompiledExpectation, records: OutputRecord[]): { message: string; got: string[] } | null {
  const alerts = records.filter((r): r is AlertRecord => r.kind !== 'late');
  if (x.what === 'late') {
    const late = records.filter((r): r is LateRecord => r.kind === 'late' && (x.name === null || r.stream === x.name));
    const want = x.negated ? 0 : x.count!;
    if (late.length === want) return null;
    const of = x.name === null ? '' : ` on stream '${x.name}'`;
    return { message: `expected ${want} late event(s)${of}, got ${late.length}`, got: late.slice(0, SHOWN).map(showLate) };
  }
  if (x.what === 'alerts') {
    const mine = alerts.filter((a) => x.name === null || a.rule === x.name);
    const want = x.negated ? 0 : x.count!;
    if (mine.length === want) return null;
    const of = x.name === null ? '' : ` of rule '${x.name}'`;
    return { message: `expected ${want} alert(s)${of}, got ${mine.length}`, got: mine.slice(0, 5).map(showAlert) };
  }
  const kind = x.what === 'alert' ? 'match' : 'timeout';
  const hits = alerts.filter((a) => a.kind === kind && a.rule === x.name && fits(x, a));
  const wanted = describeExpected(x);
  if (x.negated) {
    if (hits.length === 0) return null;
    return { message: `expected no ${wanted}, but ${hits.length} came out`, got: hits.slice(0, SHOWN).map(showAlert) };
  }
  if (hits.length > 0) return null;
  return { message: `expected ${wanted}, none came out`, got: nearest(x, alerts).map(showAlert) };
}

function fits(x: CompiledExpectation, a: AlertRecord): boolean {
  if ('key' in x && !sameJson(x.key!, a.key)) return false;
  if (x.at !== null && Date.parse(a.time) !== x.at) return false;
  if (x.message !== null && a.message !== x.message) return false;
  return true;
}

/** The alerts closest to what was expected: same rule first, then same key and kind, then nearest in time. */
function nearest(x: CompiledExpectation, alerts: AlertRecord[]): AlertRecord[] {
  const kind = x.what === 'alert' ? 'match' : 'timeout';
  const score = (a: AlertRecord): number[] => [
    a.rule === x.name ? 0 : 1,
    'key' in x && !sameJson(x.key!, a.key) ? 1 : 0,
    a.kind === kind ? 0 : 1,
    x.at === null ? 0 : Math.abs(Date.parse(a.time) - x.at),
  ];
  return alerts
    .map((a, i) => ({ a, s: [...score(a), i] }))
    .sort((p, q) => {
      for (let k = 0; k < p.s.length; k++) if (p.s[k] !== q.s[k]) return p.s[k]! - q.s[k]!;
      return 0;
    })
    .slice(0, SHOWN)
    .map((p) => p.a);
}

function describeExpected(x: CompiledExpectation): string {
  const what = x.negated ? x.what : x.what === 'alert' ? 'an alert' : 'a timeout';
  const parts = [`${what} of rule '${x.name}'`];
  if ('key' in x) parts.push(`key ${JSON.stringify(x.key)}`);
  if (x.at !== null) parts.push(`at ${new Date(x.at).toISOString()}`);
  if (x.message !== null) parts.push(`message ${JSON.stringify(x.message)}`);
  return parts.join(' ');
}

function showAlert(a: AlertRecord): string {
  return `${a.kind === 'match' ? 'alert' : 'timeout'} ${a.rule} key ${JSON.stringify(a.key)} at ${a.time} message ${JSON.stringify(a.message)}`;
}

function showLate(l: LateRecord): string {
  return `late on ${l.stream}: ${JSON.stringify(l.event)}`;
}

function sameJson(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The hot-load gate of the service: runs the tests of `files` (those being loaded) within a
 * time limit; returns, per file whose tests fail, the failures as error diagnostics (each
 * positioned at its expectation, the nearest alerts in the message). Empty: load it.
 */
export function testGate(
  program: { rules: CompiledRule[]; streams: Map<string, CompiledStream>; tests?: CompiledTest[] },
  files: Set<string>,
  timeLimitMs: number,
): Map<string, Diagnostic[]> {
  const failed = new Map<string, Diagnostic[]>();
  const tests = (program.tests ?? []).filter((t) => files.has(t.file));
  if (tests.length === 0) return failed;
  for (const o of runRuleTests(tests, program, { deadline: Date.now() + timeLimitMs })) {
    if (o.passed) continue;
    const list = failed.get(o.file) ?? [];
    for (const f of o.failures) {
      const got = f.got.length > 0 ? ` (came out instead: ${f.got.join('; ')})` : '';
      list.push({ ...f.diagnostic, code: 'test/failed', message: `test "${o.title}" failed: ${f.diagnostic.message}${got}` });
    }
    failed.set(o.file, list);
  }
  return failed;
}
