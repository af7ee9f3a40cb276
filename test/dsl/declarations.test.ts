// Streams (language §3), rules and their clauses and sinks (§4): the AST shapes.

import { describe, expect, it } from 'vitest';
import type { AlertClause, RuleDecl, StreamDecl } from '../../src/dsl/ast.js';
import { noSpans, parseOk, rule, ruleClause, streamClause } from './helpers.js';

const name = (n: string) => ({ kind: 'name', name: n });
const str = (value: string) => ({ kind: 'string', value });

describe('streams', () => {
  it('a stream with every clause, in source order', () => {
    const program = parseOk(`
stream transactions {
  key card_id               # default key
  time ts                   # event-time field
  watermark 5s
  idle 30s
  fields {
    card_id: string
    amount: number
    merchant: string?       # ? = optional
  }
  source mqtt "bank/+/transactions"
  source mqtt "bank/legacy/#"
  id tx_id
}`);
    expect(program.decls).toHaveLength(1);
    const s = program.decls[0] as StreamDecl;
    expect(noSpans(s)).toEqual({
      kind: 'stream',
      name: { name: 'transactions' },
      clauses: [
        { kind: 'key', expr: name('card_id') },
        { kind: 'time', field: name('ts') },
        { kind: 'watermark', duration: { kind: 'duration', ms: 5000, text: '5s' } },
        { kind: 'idle', duration: { kind: 'duration', ms: 30000, text: '30s' } },
        {
          kind: 'fields',
          fields: [
            { name: 'card_id', type: 'string', optional: false },
            { name: 'amount', type: 'number', optional: false },
            { name: 'merchant', type: 'string', optional: true },
          ],
        },
        { kind: 'source', transport: 'mqtt', filter: str('bank/+/transactions') },
        { kind: 'source', transport: 'mqtt', filter: str('bank/legacy/#') },
        { kind: 'id', field: name('tx_id') },
      ],
    });
  });

  it('an empty stream and a one-line stream', () => {
    expect(noSpans(parseOk('stream s {}').decls)).toEqual([{ kind: 'stream', name: { name: 's' }, clauses: [] }]);
    const s = parseOk('stream s { key k time ts watermark 1s }').decls[0] as StreamDecl;
    expect(s.clauses.map((c) => c.kind)).toEqual(['key', 'time', 'watermark']);
  });

  it('fields: every type, quoted names, reserved and structural names, optional commas', () => {
    const c = streamClause(`fields {
      a: string, b: number, c: boolean,
      d: time e: object
      f: list? g: any?,
      "x-id": string
      time: time
      key: string
      source: string
      in: number
    }`);
    expect(c.kind).toBe('fields');
    if (c.kind !== 'fields') return;
    expect(c.fields.map((f) => [f.name, f.type, f.optional])).toEqual([
      ['a', 'string', false],
      ['b', 'number', false],
      ['c', 'boolean', false],
      ['d', 'time', false],
      ['e', 'object', false],
      ['f', 'list', true],
      ['g', 'any', true],
      ['x-id', 'string', false],
      ['time', 'time', false],
      ['key', 'string', false],
      ['source', 'string', false],
      ['in', 'number', false],
    ]);
    expect(streamClause('fields {}')).toMatchObject({ kind: 'fields', fields: [] });
  });

  it('key, time and id take expressions; structural words are field names there', () => {
    expect(noSpans(streamClause('key time'))).toEqual({ kind: 'key', expr: name('time') });
    expect(noSpans(streamClause('time key'))).toEqual({ kind: 'time', field: name('key') });
    expect(noSpans(streamClause('id source'))).toEqual({ kind: 'id', field: name('source') });
    expect(noSpans(streamClause('key $.from'))).toEqual({ kind: 'key', expr: { kind: 'member', object: { kind: 'event' }, property: 'from' } });
    expect(noSpans(streamClause('key headers["x-user"]'))).toMatchObject({ kind: 'key', expr: { kind: 'index' } });
    expect(noSpans(streamClause('time meta.ts'))).toMatchObject({ kind: 'time', field: { kind: 'member', property: 'ts' } });
  });

  it('clauses on one line split at each clause word', () => {
    const s = parseOk('stream s { key id id key time time }').decls[0] as StreamDecl;
    expect(noSpans(s.clauses)).toEqual([
      { kind: 'key', expr: name('id') },
      { kind: 'id', field: name('key') },
      { kind: 'time', field: name('time') },
    ]);
  });
});

describe('rules', () => {
  it('the card_testing rule of language §4', () => {
    const program = parseOk(`
rule card_testing "Card testing: tiny charges, then a large one" {
  from transactions                     # one or more streams
  match
    small{3,}: amount < 5
    then big: amount > 500 and merchant != first(small).merchant
  within 10m
  skip past last                        # the default
  alert high "Card {card_id}: {count(small)} small charges, then {big.amount} at {big.merchant}"
    to webhook "https://fraud.example.com/hook"
    to email "fraud-ops@example.com" subject "Card testing on {card_id}"
    to mqtt "alerts/cards/{card_id}" qos 1
  throttle 1 per 10m                    # per key by default
}`);
    const r = program.decls[0] as RuleDecl;
    expect(r.kind).toBe('rule');
    expect(r.name.name).toBe('card_testing');
    expect(r.title?.value).toBe('Card testing: tiny charges, then a large one');
    expect(r.clauses.map((c) => c.kind)).toEqual(['from', 'match', 'within', 'skip', 'alert', 'throttle']);
    const alert = r.clauses[4] as AlertClause;
    expect(alert.sinks.map((s) => s.kind)).toEqual(['webhook', 'email', 'mqtt']);
  });

  it('a rule without a title, and clauses in any order', () => {
    const r = rule('alert info "x"\nwithin 5s\nmatch a: true\nfrom s');
    expect(r.title).toBeNull();
    expect(r.clauses.map((c) => c.kind)).toEqual(['alert', 'within', 'match', 'from']);
    expect(noSpans(parseOk('rule empty {}').decls)).toEqual([{ kind: 'rule', name: { name: 'empty' }, title: null, clauses: [] }]);
  });

  it('declarations in any order, several per file', () => {
    const program = parseOk('rule a { from s }\nstream s {}\nrule b "B" { from s }\nstream t { key k }');
    expect(program.decls.map((d) => `${d.kind} ${d.name.name}`)).toEqual(['rule a', 'stream s', 'rule b', 'stream t']);
    expect(program.file).toBe('test.vigil');
  });

  it('from: one or more streams, with or without by', () => {
    expect(noSpans(ruleClause('from transactions'))).toEqual({ kind: 'from', streams: [{ name: 'transactions' }], by: null });
    expect(noSpans(ruleClause('from logins, transactions by user_id'))).toEqual({
      kind: 'from',
      streams: [{ name: 'logins' }, { name: 'transactions' }],
      by: name('user_id'),
    });
    expect(noSpans(ruleClause('from a, b, c by lower($.email)'))).toMatchObject({ streams: [{ name: 'a' }, { name: 'b' }, { name: 'c' }], by: { kind: 'call' } });
  });

  it('within, max partials, throttle', () => {
    expect(noSpans(ruleClause('within 1.5s'))).toEqual({ kind: 'within', duration: { kind: 'duration', ms: 1500, text: '1.5s' } });
    expect(noSpans(ruleClause('max partials 500'))).toEqual({ kind: 'maxPartials', count: { kind: 'number', value: 500 } });
    expect(noSpans(ruleClause('throttle 1 per 10m'))).toEqual({
      kind: 'throttle',
      count: { kind: 'number', value: 1 },
      per: { kind: 'duration', ms: 600000, text: '10m' },
      by: null,
    });
    expect(noSpans(ruleClause('throttle 5 per 1h by merchant'))).toMatchObject({ kind: 'throttle', by: name('merchant') });
  });

  it('max(...) in a condition is a call, max partials is a clause', () => {
    const r = rule('match a: max(x, y) > 3\nmax partials 10');
    expect(r.clauses.map((c) => c.kind)).toEqual(['match', 'maxPartials']);
  });

  it.each([
    ['skip none', 'none', null],
    ['skip to next', 'toNext', null],
    ['skip past last', 'pastLast', null],
    ['skip to first small', 'toFirst', 'small'],
    ['skip to last big', 'toLast', 'big'],
  ])('%s', (text, strategy, step) => {
    expect(noSpans(ruleClause(text))).toEqual({ kind: 'skip', strategy, step: step === null ? null : { name: step } });
  });

  it('alert and on timeout alert', () => {
    expect(noSpans(ruleClause('alert high "Card {card_id}"'))).toEqual({
      kind: 'alert',
      onTimeout: false,
      severity: { name: 'high' },
      message: { kind: 'template', parts: ['Card ', name('card_id')] },
      sinks: [],
    });
    expect(noSpans(ruleClause('on timeout alert warning "no payment for {key()}" to log'))).toEqual({
      kind: 'alert',
      onTimeout: true,
      severity: { name: 'warning' },
      message: { kind: 'template', parts: ['no payment for ', { kind: 'call', callee: { name: 'key' }, args: [] }] },
      sinks: [{ kind: 'log' }],
    });
    const r = rule('alert info "m"\non timeout alert critical "t"');
    expect(r.clauses.map((c) => (c as AlertClause).onTimeout)).toEqual([false, true]);
  });
});

describe('sinks', () => {
  const sinks = (text: string) => noSpans((ruleClause(`alert info "m" ${text}`) as AlertClause).sinks);

  it('webhook with headers and a secret', () => {
    expect(sinks('to webhook "https://h.example/x"')).toEqual([
      { kind: 'webhook', url: { kind: 'string', value: 'https://h.example/x' }, headers: [], secret: null },
    ]);
    expect(sinks('to webhook env("HOOK_URL") header "X-Team" "fraud" header "Authorization" env("TOKEN") secret env("HOOK_SECRET")')).toEqual([
      {
        kind: 'webhook',
        url: { kind: 'env', name: 'HOOK_URL' },
        headers: [
          { name: str('X-Team'), value: { kind: 'string', value: 'fraud' } },
          { name: str('Authorization'), value: { kind: 'env', name: 'TOKEN' } },
        ],
        secret: { kind: 'env', name: 'HOOK_SECRET' },
      },
    ]);
    expect(sinks('to webhook "u" secret "s3cret"')).toMatchObject([{ secret: { kind: 'string', value: 's3cret' } }]);
  });

  it('email with several addresses and a subject template', () => {
    expect(sinks('to email "a@x.org", env("OPS"), "c@x.org" subject "Alert {rule}"')).toEqual([
      {
        kind: 'email',
        to: [
          { kind: 'string', value: 'a@x.org' },
          { kind: 'env', name: 'OPS' },
          { kind: 'string', value: 'c@x.org' },
        ],
        subject: { kind: 'template', parts: ['Alert ', name('rule')] },
      },
    ]);
    expect(sinks('to email "a@x.org"')).toEqual([{ kind: 'email', to: [{ kind: 'string', value: 'a@x.org' }], subject: null }]);
  });

  it('mqtt with qos and retain in either order', () => {
    const topic = { kind: 'template', parts: ['alerts/', name('card_id')] };
    expect(sinks('to mqtt "alerts/{card_id}"')).toEqual([{ kind: 'mqtt', topic, qos: null, retain: false }]);
    expect(sinks('to mqtt "alerts/{card_id}" qos 0')).toEqual([{ kind: 'mqtt', topic, qos: 0, retain: false }]);
    expect(sinks('to mqtt "alerts/{card_id}" qos 2 retain')).toEqual([{ kind: 'mqtt', topic, qos: 2, retain: true }]);
    expect(sinks('to mqtt "alerts/{card_id}" retain qos 1')).toEqual([{ kind: 'mqtt', topic, qos: 1, retain: true }]);
    expect(sinks('to mqtt "alerts/{card_id}" retain')).toEqual([{ kind: 'mqtt', topic, qos: null, retain: true }]);
  });

  it('log, and several sinks in a row', () => {
    expect(sinks('to log')).toEqual([{ kind: 'log' }]);
    expect((sinks('to log to mqtt "t" to webhook "w" to email "e"') as { kind: string }[]).map((s) => s.kind)).toEqual(['log', 'mqtt', 'webhook', 'email']);
  });

  it('severity is any identifier', () => {
    for (const severity of ['info', 'warning', 'high', 'critical', 'page_the_ceo', 'from', 'time']) {
      expect((ruleClause(`alert ${severity} "x"`) as AlertClause).severity.name).toBe(severity);
    }
  });
});
