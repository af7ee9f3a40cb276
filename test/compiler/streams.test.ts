// Stream declarations (language §3): compileStreams, checkEvent, parseEventTime.
import { describe, expect, it } from 'vitest';
import { checkEvent, compileStreams, implicitStream, parseEventTime, type CompiledStream } from '../../src/compiler/streams.js';
import type { Diagnostic } from '../../src/core/diagnostics.js';
import type { EvalScope } from '../../src/core/event.js';
import type { Program, StreamDecl } from '../../src/dsl/ast.js';
import { parseProgram } from '../../src/dsl/parser.js';
import { span } from './helpers.js';

function program(source: string, file = 'a.vigil'): Program {
  const r = parseProgram(source, file);
  expect(r.diagnostics).toEqual([]);
  return r.program;
}

function streams(...sources: string[]): { map: Map<string, CompiledStream>; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const map = compileStreams(
    sources.map((s, i) => program(s, `f${i}.vigil`)),
    diagnostics,
  );
  return { map, diagnostics };
}

const TX = `stream transactions {
  key card_id
  time ts
  watermark 5s
  idle 30s
  fields {
    card_id: string
    amount: number
    merchant: string?
    at: time?
    tags: list?
    meta: object?
    flag: boolean?
    extra: any?
  }
  source mqtt "bank/+/transactions"
  source mqtt "bank/#"
  id event_id
}`;

const newScope = (): EvalScope => ({ candidate: null, bound: null, key: null, time: 0 });

describe('compileStreams', () => {
  it('max lead and max size: per-stream limits; max(a, b) in a key is still a call', () => {
    const { map, diagnostics } = streams(`stream s {
  key max(a, b)
  time ts
  max lead 10m
  max size 65536
}`, 'stream plain {\n  key k\n}');
    expect(diagnostics).toEqual([]);
    const s = map.get('s')!;
    expect(s.maxLeadMs).toBe(600_000);
    expect(s.maxEventBytes).toBe(65_536);
    expect(s.keyOf!({ candidate: { data: { a: 1, b: 7 }, time: 0, seq: 0, stream: 's', topic: undefined }, bound: null, key: null, time: 0 })).toBe(7);
    expect(map.get('plain')).toMatchObject({ maxLeadMs: null, maxEventBytes: null });
  });

  it('max size out of range, max lead without a duration, one of them twice: errors at the clause', () => {
    const { diagnostics } = streams(`stream s {
  max size 0
}`, `stream t {
  max size 1.5
}`, `stream v {
  max lead 1m
  max lead 2m
}`);
    expect(diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.code}`)).toEqual([
      'f0.vigil:2:12 compile/max-size',
      'f1.vigil:2:12 compile/max-size',
      'f2.vigil:3:3 compile/duplicate-clause',
    ]);
    expect(diagnostics[0]!.message).toContain('whole number of bytes');
    expect(diagnostics[2]!.message).toContain("more than one 'max lead' clause");
    // A number where a duration belongs is a syntax error at the number.
    const bad = parseProgram('stream u {\n  max lead 5\n}', 'u.vigil').diagnostics;
    expect(bad.map((d) => `${d.line}:${d.col} ${d.message}`)).toEqual(["2:12 unexpected '5', expected a duration (like 5s)"]);
  });

  it('a declaration that differs only in max lead or max size conflicts', () => {
    const { diagnostics } = streams('stream s {\n  max size 100\n}', 'stream s {\n  max size 200\n}', 'stream s {\n  max size 100\n}');
    expect(diagnostics.map((d) => d.code)).toEqual(['compile/stream-conflict']);
  });

  it('compiles every clause', () => {
    const { map, diagnostics } = streams(TX);
    expect(diagnostics).toEqual([]);
    const s = map.get('transactions')!;
    expect(s.declared).toBe(true);
    expect(s.watermarkMs).toBe(5000);
    expect(s.idleMs).toBe(30_000);
    expect(s.sources).toEqual(['bank/+/transactions', 'bank/#']);
    expect(s.timeOf!({ ts: 5 })).toBe(5);
    expect(s.idOf!({ event_id: 'e1' })).toBe('e1');
    expect(s.keyOf!({ candidate: { data: { card_id: 'c' }, time: 0, seq: 0, stream: 'x', topic: undefined }, bound: null, key: null, time: 0 })).toBe('c');
    expect(s.decl?.name.name).toBe('transactions');
  });

  it('defaults', () => {
    const { map } = streams('stream s { }');
    const s = map.get('s')!;
    expect(s).toMatchObject({ declared: true, keyOf: null, timeOf: null, idOf: null, watermarkMs: 0, idleMs: null, validate: null, sources: [] });
    expect(implicitStream('x')).toEqual({
      name: 'x', declared: false, keyOf: null, timeOf: null, idOf: null, watermarkMs: 0, idleMs: null, maxLeadMs: null, maxEventBytes: null, validate: null, sources: [], decl: null,
    });
  });

  it('time field paths: a name, a member chain, a bracketed name', () => {
    const { map, diagnostics } = streams('stream a { time meta.ts }\nstream b { time $["event-time"] }\nstream c { time ts }');
    expect(diagnostics).toEqual([]);
    expect(map.get('a')!.timeOf!({ meta: { ts: 1 } })).toBe(1);
    expect(map.get('b')!.timeOf!({ 'event-time': 2 })).toBe(2);
    expect(map.get('c')!.timeOf!({ ts: 3 })).toBe(3);
    expect(map.get('c')!.timeOf!({})).toBeNull();
  });

  it('identical declarations across files are fine (clause order, spacing and comments do not matter)', () => {
    const { map, diagnostics } = streams(
      'stream s {\n  key u\n  time ts\n  source mqtt "a/b"\n  fields { x: number\n y: string? }\n}',
      '# again\nstream s { time ts  key u  fields { y: string?  x: number } source mqtt "a/b" }',
    );
    expect(diagnostics).toEqual([]);
    expect(map.size).toBe(1);
  });

  it('a conflicting declaration in another file is an error at its name', () => {
    const { diagnostics } = streams('stream s { key u }', '\n\nstream   s { key v }');
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({
      code: 'compile/stream-conflict',
      severity: 'error',
      file: 'f1.vigil',
      line: 3,
      col: 10,
    });
    expect(diagnostics[0]!.message).toBe("stream 's' is declared again with different settings (first declared at f0.vigil:1:8)");
  });

  it.each([
    ['stream s { watermark 5s }', 'stream s { watermark 6s }'],
    ['stream s { fields { x: number } }', 'stream s { fields { x: string } }'],
    ['stream s { fields { x: number } }', 'stream s { fields { x: number? } }'],
    ['stream s { source mqtt "a" }', 'stream s { source mqtt "b" }'],
    ['stream s { time ts }', 'stream s { }'],
  ])('conflict: %s vs %s', (a, b) => {
    expect(streams(a, b).diagnostics.map((d) => d.code)).toEqual(['compile/stream-conflict']);
  });

  it('a clause given twice, a field declared twice, at their positions', () => {
    const { diagnostics } = streams('stream s {\n  key a\n  key b\n  fields { x: number\n    x: string }\n}');
    expect(diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([
      ['compile/duplicate-clause', 3, 3],
      ['compile/duplicate-field', 5, 5],
    ]);
  });

  it('source is repeatable; a bad MQTT filter is an error', () => {
    const { diagnostics } = streams('stream s { source mqtt "a/#/b" source mqtt "a+" source mqtt "ok/+" }');
    expect(diagnostics.map((d) => [d.code, d.col])).toEqual([
      ['compile/mqtt-filter', 24],
      ['compile/mqtt-filter', 44],
    ]);
  });

  it('watermark/idle that are not durations (hand-built AST: the parser may let them through)', () => {
    const sp = span(0, 1);
    const decl = {
      kind: 'stream',
      name: { name: 's', span: sp },
      span: sp,
      clauses: [
        { kind: 'watermark', duration: { kind: 'number', value: 5, span: span(20, 21) }, span: span(10, 21) },
        { kind: 'idle', duration: { kind: 'duration', ms: -5, text: '-5s', span: span(30, 33) }, span: span(25, 33) },
      ],
    } as unknown as StreamDecl;
    const diagnostics: Diagnostic[] = [];
    compileStreams([{ file: 'x.vigil', source: '', decls: [decl] }], diagnostics);
    expect(diagnostics.map((d) => [d.code, d.offset])).toEqual([
      ['compile/expected-duration', 20],
      ['compile/expected-duration', 30],
    ]);
  });

  it('time/id must name a field; key is an expression on one event (no steps)', () => {
    const { diagnostics } = streams('stream s {\n time ts + 1\n id f(x)\n key env("K")\n}');
    expect(diagnostics.map((d) => [d.code, d.line])).toEqual([
      ['compile/time-field', 2],
      ['compile/id-field', 3],
      ['compile/env-outside-sink', 4],
    ]);
  });
});

describe('checkEvent', () => {
  const tx = streams(TX).map.get('transactions')!;
  const ok = { card_id: 'c1', amount: 5, ts: 1_700_000_000_000 };

  it('accepts a valid event and returns its event time', () => {
    expect(checkEvent(tx, ok, 99, newScope())).toEqual({ ok: true, time: 1_700_000_000_000 });
    expect(checkEvent(tx, { ...ok, ts: '2023-11-14T22:13:20Z' }, 99, newScope())).toEqual({ ok: true, time: 1_700_000_000_000 });
    expect(checkEvent(tx, { ...ok, ts: '2023-11-14T23:13:20.000+01:00' }, 99, newScope())).toEqual({ ok: true, time: 1_700_000_000_000 });
  });

  it('optional fields may be absent or null; extra fields are allowed', () => {
    expect(checkEvent(tx, { ...ok, merchant: null, other: [1] }, 0, newScope()).ok).toBe(true);
    expect(
      checkEvent(tx, { ...ok, merchant: 'm', at: '2026-01-01T00:00:00Z', tags: [], meta: {}, flag: false, extra: null }, 0, newScope()).ok,
    ).toBe(true);
    expect(checkEvent(tx, { ...ok, at: 1_700_000_000_000 }, 0, newScope()).ok).toBe(true);
  });

  it.each<[string, unknown, string]>([
    ['not an object: a list', [1], 'an event must be a JSON object, got a list'],
    ['not an object: a string', 'x', 'an event must be a JSON object, got a string'],
    ['not an object: null', null, 'an event must be a JSON object, got null'],
    ['missing time', { card_id: 'c1', amount: 5 }, "missing time field 'ts'"],
    ['null time', { card_id: 'c1', amount: 5, ts: null }, "missing time field 'ts'"],
    ['unparseable time', { ...ok, ts: 'yesterday' }, 'bad time field \'ts\': time "yesterday" is not ISO-8601 with a zone (e.g. 2026-11-20T10:00:07Z or +01:00)'],
    ['ISO without a zone', { ...ok, ts: '2026-11-20T10:00:07' }, 'bad time field \'ts\': time "2026-11-20T10:00:07" has no zone (add Z or ±hh:mm)'],
    ['time as a boolean', { ...ok, ts: true }, "bad time field 'ts': time must be epoch milliseconds or ISO-8601 text, got boolean"],
    ['missing key', { amount: 5, ts: 1 }, "missing key 'card_id'"],
    ['null key', { card_id: null, amount: 5, ts: 1 }, "missing key 'card_id'"],
    ['wrong type', { ...ok, amount: '5' }, "field 'amount' must be number, got a string"],
    ['missing required field', { card_id: 'c1', ts: 1 }, "missing field 'amount' (number)"],
    ['null required field', { ...ok, amount: null }, "field 'amount' must be number, got null"],
    ['optional field with a wrong type', { ...ok, merchant: 3 }, "field 'merchant' must be string, got a number"],
    ['a time field that is not a time', { ...ok, at: '2026-01-01' }, 'field \'at\' must be a time (epoch ms or ISO-8601 with a zone), got "2026-01-01"'],
    ['list expected', { ...ok, tags: {} }, "field 'tags' must be list, got an object"],
    ['object expected', { ...ok, meta: [] }, "field 'meta' must be object, got a list"],
  ])('rejects: %s', (_, data, error) => {
    expect(checkEvent(tx, data, 0, newScope())).toEqual({ ok: false, error });
  });

  it('a stream without time uses the arrival time; an implicit stream takes any object', () => {
    const s = streams('stream s { key user }').map.get('s')!;
    expect(checkEvent(s, { user: 'u' }, 1234, newScope())).toEqual({ ok: true, time: 1234 });
    expect(checkEvent(implicitStream('x'), { anything: 1 }, 42, newScope())).toEqual({ ok: true, time: 42 });
    expect(checkEvent(implicitStream('x'), 5, 42, newScope()).ok).toBe(false);
  });

  it('a key expression can read nested fields; the scope is left as it was', () => {
    const s = streams('stream s { key meta.user }').map.get('s')!;
    const scope = newScope();
    expect(checkEvent(s, { meta: { user: 'u' } }, 1, scope).ok).toBe(true);
    expect(checkEvent(s, { meta: {} }, 1, scope)).toEqual({ ok: false, error: "missing key 'meta.user'" });
    expect(scope).toEqual(newScope());
  });

  it('a bracketed time field name shows as written', () => {
    const s = streams('stream s { time $["event-time"] }').map.get('s')!;
    expect(checkEvent(s, {}, 1, newScope())).toEqual({ ok: false, error: 'missing time field \'$["event-time"]\'' });
  });
});

describe('parseEventTime', () => {
  it.each<[unknown, number]>([
    [0, 0],
    [1_700_000_000_000, 1_700_000_000_000],
    [-1000, -1000],
    ['2023-11-14T22:13:20Z', 1_700_000_000_000],
    ['2023-11-14T22:13:20.5Z', 1_700_000_000_500],
    ['2023-11-14T22:13:20.123456789Z', 1_700_000_000_123],
    ['2023-11-14T22:13Z', 1_699_999_980_000],
    ['2023-11-14t22:13:20z', 1_700_000_000_000],
    ['2023-11-15T03:43:20+05:30', 1_700_000_000_000],
    ['2023-11-14T12:13:20-10:00', 1_700_000_000_000],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
  ])('%j → %d', (raw, ms) => {
    expect(parseEventTime(raw as never)).toBe(ms);
  });

  it.each<unknown>([
    '2023-11-14T22:13:20',
    '2023-11-14',
    '2023-02-30T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '2023-13-01T00:00:00Z',
    '2023-11-14T24:00:00Z',
    '2023-11-14T22:60:00Z',
    '2023-11-14T22:13:60Z',
    '2023-11-14T22:13:20+0100',
    '2023-11-14T22:13:20+24:00',
    '2023-11-14 22:13:20Z',
    '2023-11-14T22:13:20.Z',
    '2023-11-14T22:13:20Zjunk',
    'Tue, 14 Nov 2023 22:13:20 GMT',
    '1700000000000',
    '',
    'x'.repeat(10_000),
    Infinity,
    NaN,
    9e15,
    null,
    true,
    [1],
    { t: 1 },
  ])('rejects %j', (raw) => {
    expect(typeof parseEventTime(raw as never)).toBe('string');
  });
});
