// Rule tests (language §11): the `test` block's syntax and the compiler's checks, with positions.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileSources } from '../../src/compiler/rule.js';
import { parseProgram } from '../../src/dsl/parser.js';
import type { TestDecl } from '../../src/dsl/ast.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-ruletests-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RULES = `stream transactions {
  key card_id
  time ts
  fields { card_id: string  ts: time  amount: number  merchant: string? }
}
rule card_testing {
  from transactions
  match small{3,}: amount < 5 then big: amount >= 500
  within 10m
  alert high "Card {card_id}: {count(small)} small charges, then {big.amount} at {big.merchant}"
}
`;

function compile(test: string, file = join(dir, 'card.vigil')) {
  const text = RULES + test;
  const program = compileSources([{ file, text }]);
  // Line numbers in the test text: RULES has 11 lines.
  const shown = program.diagnostics.map((d) => ({ sev: d.severity, code: d.code, line: d.line - 11, col: d.col, message: d.message }));
  return { program, shown };
}

describe('test blocks: syntax', () => {
  it('parses every clause of the issue example into the AST, with spans', () => {
    const src = `test "three small charges then a big one" {
  given transactions {
    {"card_id": "c1", "amount": 1,   "ts": "2026-11-20T10:00:00Z"}
    {"card_id": "c1", "amount": 900, "ts": "2026-11-20T10:00:07Z", "merchant": "M"}
  }
  given transactions from "card-testing.ndjson"    # events recorded in a file beside it
  until "2026-11-20T10:05:00Z"
  expect alert card_testing key "c1" at "2026-11-20T10:00:07Z" message "Card c1: 3 small charges, then 900 at M"
  expect no alert card_testing key "c2"
  expect timeout card_testing
  expect 2 alerts
  expect late 1
}
`;
    const { program, diagnostics } = parseProgram(src, 't.vigil');
    expect(diagnostics).toEqual([]);
    const t = program.decls[0] as TestDecl;
    expect(t.kind).toBe('test');
    expect(t.name.name).toBe('three small charges then a big one');
    expect(t.clauses.map((c) => c.kind)).toEqual(['given', 'given', 'until', 'expect', 'expect', 'expect', 'expect', 'expect']);
    const given = t.clauses[0]!;
    if (given.kind !== 'given') throw new Error('given');
    expect(given.stream!.name).toBe('transactions');
    expect(given.events!.map((e) => e.value)).toEqual([
      { card_id: 'c1', amount: 1, ts: '2026-11-20T10:00:00Z' },
      { card_id: 'c1', amount: 900, ts: '2026-11-20T10:00:07Z', merchant: 'M' },
    ]);
    expect(given.events![1]!.span.line).toBe(4);
    const from = t.clauses[1]!;
    expect(from.kind === 'given' && from.from!.value).toBe('card-testing.ndjson');
    const x = t.clauses[3]!;
    if (x.kind !== 'expect') throw new Error('expect');
    expect(x).toMatchObject({ what: 'alert', negated: false, name: { name: 'card_testing' } });
    expect(x.filters.map((f) => [f.kind, f.value.value])).toEqual([
      ['key', 'c1'],
      ['at', '2026-11-20T10:00:07Z'],
      ['message', 'Card c1: 3 small charges, then 900 at M'],
    ]);
    expect([x.span.line, x.span.col]).toEqual([8, 3]);
    expect(t.clauses[4]).toMatchObject({ what: 'alert', negated: true });
    expect(t.clauses[5]).toMatchObject({ what: 'timeout', negated: false, filters: [] });
    expect(t.clauses[6]).toMatchObject({ what: 'alerts', count: { value: 2 }, name: null });
    expect(t.clauses[7]).toMatchObject({ what: 'late', count: { value: 1 } });
  });

  it('reports syntax errors with positions, and keeps the rest of the file', () => {
    const src = `test "t" {
  expect alert
  expect 2 alrets
  given transactions { {"a": 1,} }
  bogus
}
rule r { from s match a: x == 1 alert info "x" }
`;
    const { program, diagnostics } = parseProgram(src, 't.vigil');
    const at = diagnostics.map((d) => [d.code, d.line, d.col]);
    expect(at).toContainEqual(['dsl/unexpected-token', 3, 3]); // `expect alert` ends without a rule name
    expect(at).toContainEqual(['dsl/unexpected-token', 3, 12]); // `alrets`
    expect(at).toContainEqual(['dsl/bad-event', 4, 24]);
    expect(diagnostics.find((d) => d.code === 'dsl/bad-event')!.message).toMatch(/not valid JSON/);
    expect(program.decls.map((d) => d.kind)).toEqual(['test', 'rule']);
  });

  it('a test outside any rule text is a clear error when its body is not clauses', () => {
    const { diagnostics } = parseProgram('test "t" {\n  "oops"\n  expect no alerts\n}\n', 't.vigil');
    expect(diagnostics.map((d) => [d.line, d.col, d.message])).toEqual([[2, 3, "unexpected \"oops\", expected 'given', 'until' or 'expect'"]]);
  });
});

describe('test blocks: compile checks', () => {
  it('a correct test compiles with no diagnostics, its events in order and times resolved', () => {
    const { program, shown } = compile(`test "ok" {
  given transactions { {"card_id": "c1", "amount": 1, "ts": "2026-11-20T10:00:00Z"} }
  until "2026-11-20T10:05:00Z"
  expect alert card_testing key "c1" at 1763632807000
  expect no alerts card_testing
}
`);
    expect(shown).toEqual([]);
    const t = program.tests![0]!;
    expect(t.rules).toEqual(['card_testing']);
    expect(t.events).toEqual([{ stream: 'transactions', data: { card_id: 'c1', amount: 1, ts: '2026-11-20T10:00:00Z' } }]);
    expect(t.until).toBe(Date.parse('2026-11-20T10:05:00Z'));
    expect(t.expectations[0]).toMatchObject({ what: 'alert', key: 'c1', at: 1763632807000, text: 'expect alert card_testing key "c1" at 1763632807000' });
  });

  it('unknown rule, stream and field are positioned errors with did-you-mean', () => {
    const { shown } = compile(`test "typos" {
  given transaction { {"card_id": "c1", "ts": 1} }
  given transactions { {"card_id": "c1", "amout": 1, "ts": 1} }
  expect alert card_tseting key "c1"
  expect late 1 transactons
}
`);
    expect(shown).toEqual([
      { sev: 'error', code: 'test/unknown-stream', line: 2, col: 9, message: "unknown stream 'transaction'; did you mean 'transactions'?" },
      { sev: 'error', code: 'test/unknown-field', line: 3, col: 42, message: "stream 'transactions' declares no field 'amout'; did you mean 'amount'?" },
      { sev: 'error', code: 'test/unknown-rule', line: 4, col: 16, message: "'card_tseting' is not a rule this test runs; did you mean 'card_testing'? (it runs: card_testing)" },
      { sev: 'error', code: 'test/unknown-stream', line: 5, col: 17, message: "unknown stream 'transactons'; did you mean 'transactions'?" },
    ]);
  });

  it('a missing from file, a bad time, a second until and a test without expectations are errors', () => {
    const { shown, program } = compile(`test "files" {
  given transactions from "nope.ndjson"
  until "tomorrow"
  until "2026-11-20T10:05:00Z"
  expect alert card_testing at "10:00"
}
test "nothing" {
  given transactions { {"card_id": "c1", "ts": 1} }
}
`);
    expect(shown.map((d) => [d.code, d.line, d.col])).toEqual([
      ['test/events-file', 2, 27],
      ['test/bad-time', 3, 9],
      ['test/duplicate-until', 4, 3],
      ['test/bad-time', 5, 32],
      ['test/no-expectation', 7, 6],
    ]);
    expect(shown[0]!.message).toBe("cannot read the events file 'nope.ndjson': ENOENT");
    expect(program.tests).toEqual([]);
  });

  it('reads a from file beside the test, and checks its lines', () => {
    writeFileSync(join(dir, 'rec.ndjson'), '{"card_id": "c1", "amount": 1, "ts": 1}\n\n{"card_id": "c2", "amount": 2, "ts": 2}\n');
    writeFileSync(join(dir, 'broken.ndjson'), '{"card_id": "c1"}\n[1]\n');
    const good = compile(`test "rec" {\n  given transactions from "rec.ndjson"\n  expect no alerts\n}\n`);
    expect(good.shown).toEqual([]);
    expect(good.program.tests![0]!.events.map((e) => e.data.card_id)).toEqual(['c1', 'c2']);
    const bad = compile(`test "rec" {\n  given transactions from "broken.ndjson"\n  expect no alerts\n}\n`);
    expect(bad.shown.map((d) => d.message)).toEqual(['broken.ndjson:2: an event must be a JSON object']);
  });

  it('bounds the events of one test', () => {
    const events = Array.from({ length: 5 }, (_, i) => `{"card_id": "c${i}", "ts": ${i}}`).join('\n');
    const program = compileSources([{ file: join(dir, 'b.vigil'), text: RULES + `test "many" {\n  given transactions {\n${events}\n  }\n  expect no alerts\n}\n` }], { tests: { maxEvents: 3 } });
    expect(program.diagnostics.map((d) => [d.code, d.line, d.message])).toEqual([['test/too-many-events', 17, 'this test gives more than 3 events (the most one test may give)']]);
  });

  it('a NAME.test.vigil file tests the rules of NAME.vigil beside it; a test with no rules is an error', () => {
    const program = compileSources([
      { file: join(dir, 'card.vigil'), text: RULES },
      { file: join(dir, 'card.test.vigil'), text: 'test "beside" {\n  expect no alerts card_testing\n}\n' },
      { file: join(dir, 'lonely.vigil'), text: 'test "alone" {\n  expect no alerts\n}\n' },
    ]);
    expect(program.diagnostics.map((d) => [d.file.slice(dir.length + 1), d.code, d.line, d.col])).toEqual([['lonely.vigil', 'test/no-rules', 1, 6]]);
    expect(program.tests!.map((t) => t.rules)).toEqual([['card_testing']]);
  });
});
