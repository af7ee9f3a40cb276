// What the compiler catches in whole rules (language §4–§7, issue 14 §2): step references that
// do not resolve, names one typo from a step, fields a declared schema does not know,
// comparisons a declared type makes always false, sink settings that cannot work, and sinks the
// service has no configuration for. Positions are exact (line:col of the offending token).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSources, type CompileOptions } from '../../src/compiler/rule.js';
import { renderDiagnostic } from '../../src/core/diagnostics.js';

const root = join(import.meta.dirname, '..', '..');

function compile(text: string, options: CompileOptions = {}) {
  return compileSources([{ file: 'r.vigil', text }], options);
}
function diags(text: string, options: CompileOptions = {}) {
  return compile(text, options).diagnostics.map(({ severity, code, line, col, message }) => ({ severity, code, at: `${line}:${col}`, message }));
}

const TX = `stream tx {
  key card
  time ts
  fields { card: string ts: time amount: number merchant: string }
}
`;

describe('the issue example', () => {
  const text =
    TX +
    `rule b3 {
  from tx
  match small{3,}: amount < 5
    then big: amount > 500 and merchant != first(smal).merchant and amont > 1 and amount > "5"
  within 10m
  alert high "Card {card}: {bigg.amount} at {big.merchnt}" to mqtt "alerts/#/x"
}
`;

  it('gives every mistake, positioned, instead of "0 error(s), 0 warning(s)"', () => {
    expect(diags(text)).toEqual([
      { severity: 'error', code: 'compile/expected-step', at: '9:50', message: "first() takes a step name: 'smal' is not a step of this rule; did you mean 'small'?" },
      {
        severity: 'warning',
        code: 'compile/unknown-field',
        at: '9:69',
        message: "field 'amont' is not declared in stream 'tx'; did you mean 'amount'? (the schema is open: it is read anyway, and is null when missing)",
      },
      {
        severity: 'warning',
        code: 'compile/always-false',
        at: '9:83',
        message: 'always false: field \'amount\' is declared number and "5" is a string (a comparison of different types is false)',
      },
      { severity: 'warning', code: 'compile/not-a-step', at: '11:29', message: "'bigg' is not a step; did you mean 'big'? read as field 'bigg' of the event" },
      {
        severity: 'warning',
        code: 'compile/unknown-field',
        at: '11:50',
        message: "field 'merchnt' is not declared in stream 'tx'; did you mean 'merchant'? (the schema is open: it is read anyway, and is null when missing)",
      },
      { severity: 'error', code: 'compile/topic-wildcard', at: '11:76', message: "an MQTT publish topic cannot contain the wildcard '#' (wildcards are for subscriptions)" },
    ]);
  });

  it('renders with the caret under the token', () => {
    const p = compile(text);
    const d = p.diagnostics.find((x) => x.code === 'compile/not-a-step')!;
    expect(renderDiagnostic(d, text)).toBe(
      `r.vigil:11:29: warning: 'bigg' is not a step; did you mean 'big'? read as field 'bigg' of the event\n` +
        `    alert high "Card {card}: {bigg.amount} at {big.merchnt}" to mqtt "alerts/#/x"\n` +
        `                              ^^^^`,
    );
  });
});

describe('step references resolve wherever they appear', () => {
  const rule = (body: string) => TX + `rule r {\n  from tx\n  match small+: amount < 5 then big: amount > 500\n  within 1h\n${body}\n}\n`;

  it('first/last/count/time of a name that is not a step are errors, everywhere', () => {
    expect(diags(rule('  alert high "{first(smal).merchant}"'))).toEqual([
      expect.objectContaining({ severity: 'error', code: 'compile/expected-step', at: '10:22', message: "first() takes a step name: 'smal' is not a step of this rule; did you mean 'small'?" }),
    ]);
    expect(diags(rule('  alert high "{last(bog)}"'))[0]).toMatchObject({ code: 'compile/expected-step', at: '10:21', message: expect.stringContaining("did you mean 'big'?") });
    expect(diags(rule('  alert high "ok"\n  on timeout alert low "{count(smal)}"'))[0]).toMatchObject({ code: 'compile/expected-step', at: '11:32' });
    expect(diags(rule('  alert high "{time(bigg)}"'))[0]).toMatchObject({ code: 'compile/expected-step', at: '10:21' });
    // No close name: the message lists the steps instead.
    expect(diags(rule('  alert high "{count(amount)}"'))[0]!.message).toBe("count() takes a step name: 'amount' is not a step of this rule (its steps: 'small', 'big')");
  });

  it('sum/avg/min/max(x.f) with x not a step is an error', () => {
    expect(diags(rule('  alert high "{sum(smal.amount)}"'))).toEqual([
      expect.objectContaining({ severity: 'error', code: 'compile/expected-step', at: '10:20', message: "sum() takes a step field like sum(v.amount): 'smal' is not a step of this rule; did you mean 'small'?" }),
    ]);
    expect(diags(rule('  alert high "{max(smal[0].amount)}"'))[0]).toMatchObject({ code: 'compile/expected-step', at: '10:20' });
  });

  it('a name one typo from a step, read as a field: in conditions, templates, on timeout, throttle by, topics and subjects', () => {
    const warn = (at: string, name: string, step: string) => ({
      severity: 'warning',
      code: 'compile/not-a-step',
      at,
      message: `'${name}' is not a step; did you mean '${step}'? read as field '${name}' of the event`,
    });
    expect(diags(TX + 'rule r {\n  from tx\n  match small+: amount < 5 then big: amount > smal.amount\n  within 1h\n}\n')).toEqual([warn('8:47', 'smal', 'small')]);
    expect(diags(rule('  alert high "{bigg.amount} {smal[0].amount}"'))).toEqual([warn('10:16', 'bigg', 'big'), warn('10:30', 'smal', 'small')]);
    expect(diags(rule('  alert high "x"\n  on timeout alert low "{smal.amount}"'))).toEqual([warn('11:26', 'smal', 'small')]);
    expect(diags(rule('  alert high "x"\n  throttle 1 per 1h by bigg.merchant'))).toEqual([warn('11:24', 'bigg', 'big')]);
    expect(diags(rule('  alert high "x" to mqtt "a/{bigg.card}"'))).toEqual([warn('10:30', 'bigg', 'big')]);
    expect(diags(rule('  alert high "x" to email "a@example.com" subject "S {bigg.card}"'))).toEqual([warn('10:55', 'bigg', 'big')]);
  });

  it('no false alarms: right names, lists, short names, declared fields, one-event places', () => {
    expect(diags(rule('  alert high "{first(small).merchant} {last(big).amount} {count(small)} {sum(small.amount)} {small[0].amount} {time(big)} {big.merchant} {card}"'))).toEqual([]);
    // Lists stay lists: $.items, a bare list field in an aggregate, a list literal.
    const open = 'stream s {\n  key k\n  time ts\n}\nrule r {\n  from s\n  match a: first($.items) == 1 and sum(items) > 2 and last([1, 2]) == 2 then b: x == 1\n  within 1m\n}\n';
    expect(diags(open)).toEqual([]);
    // Steps a, b and fields x, v: one letter apart, but no typo.
    expect(diags('stream s {\n  key k\n  time ts\n}\nrule r {\n  from s\n  match a: x == 1 then b: v == a.x\n  within 1m\n  alert info "{c} {a.x}"\n}\n')).toEqual([]);
    // A field that is declared is never read as a step typo.
    expect(diags('stream s {\n  key k\n  time ts\n  fields { k: string ts: time bigg: number }\n}\nrule r {\n  from s\n  match big: bigg > 1\n  within 1m\n  alert info "{bigg}"\n}\n')).toEqual([]);
    // A field close to a step's name: `$.host` reads it without the warning that bare `host` gets.
    const hosts = (cond: string) => diags(`stream s {\n  key k\n  time ts\n}\nrule r {\n  from s\n  match hot: temp > 80 and ${cond}\n  within 1m\n}\n`);
    expect(hosts('$.host == "h1"')).toEqual([]);
    expect(hosts('host == "h1"')).toEqual([expect.objectContaining({ code: 'compile/not-a-step', at: '7:28' })]);
    // `by` sees one event: a bare name in first() there is a list field.
    expect(diags('stream s {\n  key k\n  time ts\n}\nrule r {\n  from s by first(ids)\n  match a: x == 1\n  within 1m\n}\n')).toEqual([]);
  });
});

describe('fields against a declared schema', () => {
  it('an undeclared field warns with the closest declared name; the rule still loads', () => {
    const p = compile(TX + 'rule r {\n  from tx\n  match a: amont > 1 and $.merchent == "x" and $["cardd"] == "c"\n  within 1m\n}\n');
    expect(p.rules).toHaveLength(1);
    expect(p.diagnostics.map((d) => [d.code, `${d.line}:${d.col}`, d.message.split(' (')[0]])).toEqual([
      ['compile/unknown-field', '8:12', "field 'amont' is not declared in stream 'tx'; did you mean 'amount'?"],
      ['compile/unknown-field', '8:28', "field 'merchent' is not declared in stream 'tx'; did you mean 'merchant'?"],
      ['compile/unknown-field', '8:50', "field 'cardd' is not declared in stream 'tx'; did you mean 'card'?"],
    ]);
  });

  it('fields of a step\'s events are checked too: v.f, v[i].f, v[-1].f, first(v).f, last(v).f, v["f"]', () => {
    const p = compile(TX + 'rule r {\n  from tx\n  match small+: amount < 5 then big: amount > 500\n  within 1m\n  alert info "{small.x1} {small[0].x2} {small[-1].x3} {first(small).x4} {last(big).x5} {big[\\"x6\\"]}"\n}\n');
    expect(p.diagnostics.map((d) => [d.code, d.message.slice(0, 10)])).toEqual(
      ['x1', 'x2', 'x3', 'x4', 'x5', 'x6'].map((f) => ['compile/unknown-field', `field '${f}'`]),
    );
  });

  it('several streams: the union of their fields; a stream without fields turns the check off', () => {
    const two = 'stream a {\n  key k\n  time ts\n  fields { k: string ts: time x: number }\n}\nstream b {\n  key k\n  time ts\n  fields { k: string ts: time y: number }\n}\n';
    expect(diags(two + 'rule r {\n  from a, b\n  match p: x > 1 then q: y > 1 and zz > 1\n  within 1m\n}\n')).toEqual([
      expect.objectContaining({ code: 'compile/unknown-field', at: '13:36', message: expect.stringContaining("streams 'a', 'b'") }),
    ]);
    const three = two + 'stream c {\n  key k\n  time ts\n}\n';
    expect(diags(three + 'rule r {\n  from a, c\n  match p: zz > 1\n  within 1m\n}\n')).toEqual([]);
  });

  it('a declared number compared with a string (and other impossible pairs) is always false', () => {
    const schema = 'stream s {\n  key k\n  time ts\n  fields { k: string ts: time n: number t: string f: boolean o: object }\n}\n';
    const r = (cond: string) => diags(schema + `rule r {\n  from s\n  match a: ${cond}\n  within 1m\n}\n`);
    expect(r('n > "5"')).toEqual([expect.objectContaining({ severity: 'warning', code: 'compile/always-false', at: '8:12' })]);
    expect(r('"5" < n')).toEqual([expect.objectContaining({ code: 'compile/always-false', at: '8:12' })]);
    expect(r('t == 5')[0]).toMatchObject({ code: 'compile/always-false', message: "always false: field 't' is declared string and 5 is a number (a comparison of different types is false)" });
    expect(r('f == "true"')[0]).toMatchObject({ code: 'compile/always-false' });
    expect(r('o != 1')[0]).toMatchObject({ code: 'compile/always-false' });
    expect(r('a.n > 1s')).toEqual([]); // a duration is a number
    expect(r('n > 5 and t == "x" and f == true and ts > 0')).toEqual([]); // a time may be sent as a number or text
  });
});

describe('sinks', () => {
  const rule = (sink: string) => `rule r {\n  from s\n  match a: x == 1\n  alert info "m" ${sink}\n}\n`;
  it('a publish topic with a wildcard, an empty topic, URL or address, a header name that is no token: errors at the token', () => {
    expect(diags(rule('to mqtt "alerts/+/{x}"')).filter((d) => d.severity === 'error')).toEqual([
      expect.objectContaining({ code: 'compile/topic-wildcard', at: '4:34' }),
    ]);
    // A `+` inside a hole is arithmetic, not a wildcard.
    expect(diags(rule('to mqtt "alerts/{x + 1}"')).filter((d) => d.severity === 'error')).toEqual([]);
    expect(diags(rule('to mqtt ""')).filter((d) => d.severity === 'error')).toEqual([expect.objectContaining({ code: 'compile/empty-topic', at: '4:26' })]);
    expect(diags(rule('to webhook ""')).filter((d) => d.severity === 'error')).toEqual([expect.objectContaining({ code: 'compile/empty-url', at: '4:29' })]);
    expect(diags(rule('to email ""')).filter((d) => d.severity === 'error')).toEqual([expect.objectContaining({ code: 'compile/empty-address', at: '4:27' })]);
    expect(diags(rule('to webhook "https://h.example/x" header "Bad Name" "v"')).filter((d) => d.severity === 'error')).toEqual([
      expect.objectContaining({ code: 'compile/bad-header', at: '4:58' }),
    ]);
    expect(diags(rule('to webhook "https://h.example/x" header "X-Ok_1.~" "v"')).filter((d) => d.severity === 'error')).toEqual([]);
    expect(diags(rule('to webhook env("VIGIL_SECRET_HOOK")'), { env: { VIGIL_SECRET_HOOK: '' } }).filter((d) => d.severity === 'error')).toEqual([
      expect.objectContaining({ code: 'compile/env-empty', at: '4:29' }),
    ]);
    // Outside the prefix the name alone is refused: an empty variable is not told apart from a missing one.
    expect(diags(rule('to webhook env("HOOK")'), { env: { HOOK: '' } }).filter((d) => d.severity === 'error')).toEqual([
      expect.objectContaining({ code: 'compile/env-not-allowed', at: '4:29' }),
    ]);
  });

  it('a sink the service has no configuration for loads with a warning (only when the options say what is configured)', () => {
    const text = rule('to email "ops@example.com" to mqtt "alerts/{x}" to log');
    const none = compile(text, { configuredSinks: { email: false, mqtt: false } });
    expect(none.rules).toHaveLength(1);
    expect(none.diagnostics.filter((d) => d.code === 'compile/sink-not-configured').map((d) => [`${d.line}:${d.col}`, d.severity, d.message])).toEqual([
      ['4:18', 'warning', "'to email' needs VIGIL_SMTP_URL, which this service does not set: every email delivery of this rule will fail"],
      ['4:45', 'warning', "'to mqtt' needs VIGIL_MQTT_URL, which this service does not set: every MQTT delivery of this rule will fail"],
    ]);
    expect(compile(text, { configuredSinks: { email: true, mqtt: true } }).diagnostics.filter((d) => d.code === 'compile/sink-not-configured')).toEqual([]);
    expect(compile(text).diagnostics.filter((d) => d.code === 'compile/sink-not-configured')).toEqual([]);
  });
});

describe('did you mean: functions, streams, skip steps', () => {
  it('suggests the close name', () => {
    const base = 'stream transactions {\n  key k\n  time ts\n}\n';
    expect(diags(base + 'rule r {\n  from transactions\n  match a: lowr(x) == "a"\n  within 1m\n}\n')[0]).toMatchObject({ at: '7:12', message: "unknown function 'lowr'; did you mean 'lower'?" });
    expect(diags(base + 'rule r {\n  from transaction\n  match a: x == 1\n  within 1m\n}\n')[0]).toMatchObject({
      code: 'compile/implicit-stream',
      at: '6:8',
      message: expect.stringMatching(/^stream 'transaction' is not declared \(did you mean 'transactions'\?\): it is read as an implicit stream/),
    });
    expect(diags(base + 'rule r {\n  from transactions\n  match small: x == 1 then big+: x == 2\n  within 1m\n  skip to first bigg\n}\n')[0]).toMatchObject({
      code: 'compile/unknown-step',
      at: '9:17',
      message: "'bigg' is not a step of this rule's pattern; did you mean 'big'?",
    });
  });
});

describe('shipped rules stay clean', () => {
  const NEW = new Set(['compile/not-a-step', 'compile/unknown-field', 'compile/always-false', 'compile/expected-step', 'compile/topic-wildcard', 'compile/empty-url', 'compile/empty-address', 'compile/bad-header', 'compile/env-empty', 'compile/empty-topic']);
  it('the example rules compile with no diagnostic at all', () => {
    const dir = join(root, 'rules');
    const files = readdirSync(dir).filter((f) => f.endsWith('.vigil')).map((f) => ({ file: join(dir, f), text: readFileSync(join(dir, f), 'utf8') }));
    expect(files.length).toBeGreaterThan(0);
    expect(compileSources(files).diagnostics).toEqual([]);
  });

  it('no golden case gets one of the new diagnostics', () => {
    const golden = join(root, 'test', 'golden');
    const found: string[] = [];
    for (const c of readdirSync(golden)) {
      const p = join(golden, c, 'rules.vigil');
      let text: string;
      try {
        text = readFileSync(p, 'utf8');
      } catch {
        continue;
      }
      for (const d of compileSources([{ file: c, text }]).diagnostics) if (NEW.has(d.code) || d.message.includes('did you mean')) found.push(`${c}:${d.line}:${d.col} ${d.message}`);
    }
    expect(found).toEqual([]);
  });
});

describe('close names', () => {
  it('one or two edits, a transposition counting one, never between one- or two-letter names', async () => {
    const { closest, editDistance, isClose } = await import('../../src/compiler/suggest.js');
    expect(editDistance('hto', 'hot')).toBe(1);
    expect(editDistance('amont', 'amount')).toBe(1);
    expect(editDistance('kitten', 'sitting', 5)).toBe(3);
    expect(isClose('bigg', 'big')).toBe(true);
    expect(isClose('Amount', 'amount')).toBe(true);
    expect(isClose('a', 'b')).toBe(false);
    expect(isClose('tx', 't')).toBe(false);
    expect(isClose('big', 'big')).toBe(false);
    expect(isClose('merchnt', 'merchant')).toBe(true);
    expect(isClose('temperature', 'temp')).toBe(false);
    expect(closest('smal', ['big', 'small', 'smalls'])).toBe('small');
    expect(closest('zzz', ['big', 'small'])).toBe(null);
  });
});
