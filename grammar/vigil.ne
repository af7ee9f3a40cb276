@{%
// The grammar of the rule language (language §3–§5, §7), compiled by nearleyc into
// src/dsl/generated/vigil.ts. The parser (src/dsl/parser.ts) feeds it one piece at a time:
// a declaration head, one stream or rule clause, or one template hole. A synthetic first
// token (entry*) selects which. Postprocessors only build AST nodes with spans: no side
// effects, because nearley also runs them on branches that die. Templates come out with
// empty `parts`; the parser fills them in once the clause has parsed.
//
// Structural words (`then`, `from`, `key`...) are identifiers matched by their text, so they
// stay usable as field names. The grammar must stay unambiguous: the tests assert one parse.
import { lexer } from '../lexer.js';

// Tokens and nodes are loosely typed here: nearley hands postprocessors `any[]`.
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function spanOf(x: Any) {
  return x.span !== undefined ? x.span : { offset: x.offset, endOffset: x.endOffset, line: x.line, col: x.col };
}
function join(a: Any, b: Any) {
  const s = spanOf(a);
  const e = spanOf(b);
  return { offset: s.offset, endOffset: e.endOffset, line: s.line, col: s.col };
}
function identNode(t: Any) {
  return { name: t.value, span: spanOf(t) };
}
function stringLit(t: Any) {
  return { kind: 'string', value: t.value, span: spanOf(t) };
}
function numberLit(t: Any) {
  return { kind: 'number', value: Number(t.text), span: spanOf(t) };
}
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };
function durationLit(t: Any) {
  const m = /^([0-9.]+)([a-z]+)$/.exec(t.text) ?? ['', '0', 'ms'];
  return { kind: 'duration', ms: Number(m[1]) * (UNIT_MS[m[2]!] ?? 1), text: t.text, span: spanOf(t) };
}
function regexLit(t: Any) {
  const close = t.text.lastIndexOf('/');
  return close > 0
    ? { source: t.text.slice(1, close), flags: t.text.slice(close + 1), span: spanOf(t) }
    : { source: t.text.slice(1), flags: '', span: spanOf(t) };
}
function template(t: Any) {
  return { kind: 'template', parts: [], span: spanOf(t) };
}
function binary(d: Any[]) {
  return { kind: 'binary', op: d[1].value, left: d[0], right: d[2], span: join(d[0], d[2]) };
}
function quantifier(min: number, max: number, text: string, first: Any, last: Any) {
  return { min, max, text, span: join(first, last) };
}
function last(list: Any[], fallback: Any) {
  return list.length > 0 ? list[list.length - 1] : fallback;
}
%}

@preprocessor typescript
@lexer lexer

main ->
    %entryExpr expr {% (d) => d[1] %}
  | %entryStreamClause streamClause {% (d) => d[1] %}
  | %entryRuleClause ruleClause {% (d) => d[1] %}
  | %entryStreamHead streamHead {% (d) => d[1] %}
  | %entryRuleHead ruleHead {% (d) => d[1] %}
  | %entryTestHead testHead {% (d) => d[1] %}
  | %entryTestClause testClause {% (d) => d[1] %}

# ------------------------------------------------------------------ declaration heads

streamHead -> "stream" name "{" {% (d) => ({ kind: 'stream', name: d[1], span: join(d[0], d[2]) }) %}

ruleHead -> "rule" name string:? "{"
  {% (d) => ({ kind: 'rule', name: d[1], title: d[2], span: join(d[0], d[3]) }) %}

testHead -> "test" string "{" {% (d) => ({ kind: 'test', title: d[1], span: join(d[0], d[2]) }) %}

# ------------------------------------------------------------------ test clauses (§13)
# `given STREAM { EVENT... }` (events as JSON objects) is parsed by parser.ts, event by event.

testClause ->
    "given" name "from" string
    {% (d) => ({ kind: 'given', stream: d[1], events: null, from: d[3], span: join(d[0], d[3]) }) %}
  | "given" "from" string
    {% (d) => ({ kind: 'given', stream: null, events: null, from: d[2], span: join(d[0], d[2]) }) %}
  | "until" timeValue {% (d) => ({ kind: 'until', time: d[1], span: join(d[0], d[1]) }) %}
  | "expect" expectation {% (d) => { const { last: end, ...e } = d[1]; return { kind: 'expect', ...e, span: join(d[0], end) }; } %}

expectation ->
    alertKind name alertFilter:*
    {% (d) => ({ what: d[0].value, negated: false, count: null, name: d[1], filters: d[2], last: last(d[2], d[1]) }) %}
  | "no" alertKind name alertFilter:*
    {% (d) => ({ what: d[1].value, negated: true, count: null, name: d[2], filters: d[3], last: last(d[3], d[2]) }) %}
  | number ("alert" | "alerts") name:?
    {% (d) => ({ what: 'alerts', negated: false, count: d[0], name: d[2], filters: [], last: d[2] ?? d[1][0] }) %}
  | "no" "alerts" name:?
    {% (d) => ({ what: 'alerts', negated: true, count: null, name: d[2], filters: [], last: d[2] ?? d[1] }) %}
  | "late" number name:?
    {% (d) => ({ what: 'late', negated: false, count: d[1], name: d[2], filters: [], last: d[2] ?? d[1] }) %}
  | "no" "late" name:?
    {% (d) => ({ what: 'late', negated: true, count: null, name: d[2], filters: [], last: d[2] ?? d[1] }) %}

alertKind -> ("alert" | "timeout") {% (d) => d[0][0] %}

alertFilter ->
    "key" (string {% id %} | number {% id %})
    {% (d) => ({ kind: 'key', value: d[1], span: join(d[0], d[1]) }) %}
  | "at" timeValue {% (d) => ({ kind: 'at', value: d[1], span: join(d[0], d[1]) }) %}
  | "message" string {% (d) => ({ kind: 'message', value: d[1], span: join(d[0], d[1]) }) %}

# An instant: ISO-8601 text with a zone, or epoch milliseconds.
timeValue -> string {% id %} | number {% id %}

# ------------------------------------------------------------------ stream clauses (§3)

streamClause ->
    "key" expr {% (d) => ({ kind: 'key', expr: d[1], span: join(d[0], d[1]) }) %}
  | "time" expr {% (d) => ({ kind: 'time', field: d[1], span: join(d[0], d[1]) }) %}
  | "watermark" duration {% (d) => ({ kind: 'watermark', duration: d[1], span: join(d[0], d[1]) }) %}
  | "idle" duration {% (d) => ({ kind: 'idle', duration: d[1], span: join(d[0], d[1]) }) %}
  | "fields" "{" fieldDecl:* "}" {% (d) => ({ kind: 'fields', fields: d[2], span: join(d[0], d[3]) }) %}
  | "source" "mqtt" string
    {% (d) => ({ kind: 'source', transport: 'mqtt', filter: d[2], span: join(d[0], d[2]) }) %}
  | "id" expr {% (d) => ({ kind: 'id', field: d[1], span: join(d[0], d[1]) }) %}
  | "max" "lead" duration {% (d) => ({ kind: 'maxLead', duration: d[2], span: join(d[0], d[2]) }) %}
  | "max" "size" number {% (d) => ({ kind: 'maxSize', bytes: d[2], span: join(d[0], d[2]) }) %}

# `name: type[?]`, one after the other; a comma after an entry is allowed.
fieldDecl -> fieldName ":" fieldType "?":? ",":?
  {% (d) => ({
    name: d[0].value,
    nameSpan: spanOf(d[0]),
    type: d[2].type,
    typeSpan: spanOf(d[2].token),
    optional: d[3] !== null,
    span: join(d[0], d[3] ?? d[2].token),
  }) %}

fieldName -> %ident {% id %} | %kw {% id %} | %matches {% id %} | %string {% id %}

fieldType -> ("string" | "number" | "boolean" | "time" | "object" | "list" | "any")
  {% (d) => ({ type: d[0][0].text, token: d[0][0] }) %}

# ------------------------------------------------------------------ rule clauses (§4)

ruleClause ->
    fromClause {% id %}
  | "match" pattern {% (d) => ({ kind: 'match', pattern: d[1], span: join(d[0], d[1]) }) %}
  | "within" duration {% (d) => ({ kind: 'within', duration: d[1], span: join(d[0], d[1]) }) %}
  | skipClause {% id %}
  | alertClause {% id %}
  | throttleClause {% id %}
  | "max" "partials" number {% (d) => ({ kind: 'maxPartials', count: d[2], span: join(d[0], d[2]) }) %}

fromClause -> "from" name ("," name {% (d) => d[1] %}):* ("by" expr {% (d) => d[1] %}):?
  {% (d) => ({
    kind: 'from',
    streams: [d[1], ...d[2]],
    by: d[3],
    span: join(d[0], d[3] ?? last(d[2], d[1])),
  }) %}

skipClause ->
    "skip" "none" {% (d) => ({ kind: 'skip', strategy: 'none', step: null, span: join(d[0], d[1]) }) %}
  | "skip" "to" "next" {% (d) => ({ kind: 'skip', strategy: 'toNext', step: null, span: join(d[0], d[2]) }) %}
  | "skip" "past" "last" {% (d) => ({ kind: 'skip', strategy: 'pastLast', step: null, span: join(d[0], d[2]) }) %}
  | "skip" "to" "first" name {% (d) => ({ kind: 'skip', strategy: 'toFirst', step: d[3], span: join(d[0], d[3]) }) %}
  | "skip" "to" "last" name {% (d) => ({ kind: 'skip', strategy: 'toLast', step: d[3], span: join(d[0], d[3]) }) %}

alertClause ->
    "alert" name template sink:*
    {% (d) => ({
      kind: 'alert', onTimeout: false, severity: d[1], message: d[2], sinks: d[3],
      span: join(d[0], last(d[3], d[2])),
    }) %}
  | "on" "timeout" "alert" name template sink:*
    {% (d) => ({
      kind: 'alert', onTimeout: true, severity: d[3], message: d[4], sinks: d[5],
      span: join(d[0], last(d[5], d[4])),
    }) %}

throttleClause -> "throttle" number "per" duration ("by" expr {% (d) => d[1] %}):?
  {% (d) => ({ kind: 'throttle', count: d[1], per: d[3], by: d[4], span: join(d[0], d[4] ?? d[3]) }) %}

# ------------------------------------------------------------------ sinks (§4)

sink ->
    "to" "webhook" setting webhookHeader:* ("secret" setting {% (d) => d[1] %}):?
    {% (d) => ({
      kind: 'webhook', url: d[2], headers: d[3], secret: d[4],
      span: join(d[0], d[4] ?? last(d[3], d[2])),
    }) %}
  | "to" "email" setting ("," setting {% (d) => d[1] %}):* ("subject" template {% (d) => d[1] %}):?
    {% (d) => ({
      kind: 'email', to: [d[2], ...d[3]], subject: d[4],
      span: join(d[0], d[4] ?? last(d[3], d[2])),
    }) %}
  | "to" "mqtt" template mqttOptions
    {% (d) => ({ kind: 'mqtt', topic: d[2], qos: d[3].qos, retain: d[3].retain, span: join(d[0], d[3].end ?? d[2]) }) %}
  | "to" "alertmanager" setting ("," setting {% (d) => d[1] %}):*
    {% (d) => ({ kind: 'alertmanager', urls: [d[2], ...d[3]], span: join(d[0], last(d[3], d[2])) }) %}
  | "to" "log" {% (d) => ({ kind: 'log', span: join(d[0], d[1]) }) %}

webhookHeader -> "header" string setting {% (d) => ({ name: d[1], value: d[2], span: join(d[0], d[2]) }) %}

# `qos` and `retain` in either order, each at most once.
mqttOptions ->
    null {% () => ({ qos: null, retain: false, end: null }) %}
  | qos {% (d) => ({ qos: d[0].qos, retain: false, end: d[0].token }) %}
  | "retain" {% (d) => ({ qos: null, retain: true, end: d[0] }) %}
  | qos "retain" {% (d) => ({ qos: d[0].qos, retain: true, end: d[1] }) %}
  | "retain" qos {% (d) => ({ qos: d[1].qos, retain: true, end: d[1].token }) %}

qos -> "qos" ("0" | "1" | "2") {% (d) => ({ qos: Number(d[1][0].text), token: d[1][0] }) %}

setting ->
    %string {% (d) => ({ kind: 'string', value: d[0].value, span: spanOf(d[0]) }) %}
  | "env" "(" %string ")" {% (d) => ({ kind: 'env', name: d[2].value, span: join(d[0], d[3]) }) %}

template -> %string {% (d) => template(d[0]) %}

# ------------------------------------------------------------------ patterns (§5)

pattern -> element (link element {% (d) => d %}):*
  {% (d) => ({
    kind: 'pattern',
    elements: [d[0], ...d[1].map((p: Any) => p[1])],
    links: d[1].map((p: Any) => p[0]),
    span: join(d[0], last(d[1], [null, d[0]])[1]),
  }) %}

link ->
    "next" {% (d) => ({ link: 'next', span: spanOf(d[0]) }) %}
  | "then" {% (d) => ({ link: 'then', span: spanOf(d[0]) }) %}
  | "then" "any" {% (d) => ({ link: 'thenAny', span: join(d[0], d[1]) }) %}

element -> step {% id %} | group {% id %}

step ->
    name quantifier:? ":" expr modifier:*
    {% (d) => ({
      kind: 'step', negated: false, name: d[0], quantifier: d[1], condition: d[3], modifiers: d[4],
      absence: null, span: join(d[0], last(d[4], d[3])),
    }) %}
  | "not" name quantifier:? ":" expr modifier:* ("for" duration {% (d) => d[1] %}):?
    {% (d) => ({
      kind: 'step', negated: true, name: d[1], quantifier: d[2], condition: d[4], modifiers: d[5],
      absence: d[6], span: join(d[0], d[6] ?? last(d[5], d[4])),
    }) %}

group -> "(" pattern ")" quantifier:?
  {% (d) => ({ kind: 'group', pattern: d[1], quantifier: d[3], span: join(d[0], d[3] ?? d[2]) }) %}

quantifier ->
    "{" %number "}" {% (d) => quantifier(Number(d[1].text), Number(d[1].text), `{${d[1].text}}`, d[0], d[2]) %}
  | "{" %number "," "}" {% (d) => quantifier(Number(d[1].text), Infinity, `{${d[1].text},}`, d[0], d[3]) %}
  | "{" %number "," %number "}"
    {% (d) => quantifier(Number(d[1].text), Number(d[3].text), `{${d[1].text},${d[3].text}}`, d[0], d[4]) %}
  | "+" {% (d) => quantifier(1, Infinity, '+', d[0], d[0]) %}
  | "*" {% (d) => quantifier(0, Infinity, '*', d[0], d[0]) %}
  | "?" {% (d) => quantifier(0, 1, '?', d[0], d[0]) %}

modifier ->
    "greedy" {% (d) => ({ kind: 'greedy', span: spanOf(d[0]) }) %}
  | "consecutive" {% (d) => ({ kind: 'consecutive', span: spanOf(d[0]) }) %}
  | "combinations" {% (d) => ({ kind: 'combinations', span: spanOf(d[0]) }) %}
  | "until" expr {% (d) => ({ kind: 'until', condition: d[1], span: join(d[0], d[1]) }) %}

# ------------------------------------------------------------------ expressions (§7)
# Loosest first: or, and, not, comparison (non-associative), + -, * / %, unary -, postfix.

expr -> orExpr {% id %}

orExpr -> orExpr "or" andExpr {% binary %} | andExpr {% id %}

andExpr -> andExpr "and" notExpr {% binary %} | notExpr {% id %}

notExpr ->
    "not" notExpr {% (d) => ({ kind: 'unary', op: 'not', operand: d[1], span: join(d[0], d[1]) }) %}
  | comparison {% id %}

comparison ->
    sum compareOp sum {% binary %}
  | sum "not" "in" sum {% (d) => ({ kind: 'binary', op: 'not in', left: d[0], right: d[3], span: join(d[0], d[3]) }) %}
  | sum "matches" %regex {% (d) => ({ kind: 'matches', subject: d[0], regex: regexLit(d[2]), span: join(d[0], d[2]) }) %}
  | sum {% id %}

compareOp -> ("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "contains" | "startswith" | "endswith") {% (d) => d[0][0] %}

sum -> sum ("+" | "-") product {% (d) => binary([d[0], d[1][0], d[2]]) %} | product {% id %}

product -> product ("*" | "/" | "%") unary {% (d) => binary([d[0], d[1][0], d[2]]) %} | unary {% id %}

unary ->
    "-" unary {% (d) => ({ kind: 'unary', op: '-', operand: d[1], span: join(d[0], d[1]) }) %}
  | postfix {% id %}

postfix ->
    postfix "." word
    {% (d) => ({ kind: 'member', object: d[0], property: d[2].text, propertySpan: spanOf(d[2]), span: join(d[0], d[2]) }) %}
  | postfix "[" expr "]" {% (d) => ({ kind: 'index', object: d[0], index: d[2], span: join(d[0], d[3]) }) %}
  | name "(" arguments ")" {% (d) => ({ kind: 'call', callee: d[0], args: d[2], span: join(d[0], d[3]) }) %}
  | primary {% id %}

arguments -> null {% () => [] %} | exprList {% id %}

exprList -> expr {% (d) => [d[0]] %} | exprList "," expr {% (d) => [...d[0], d[2]] %}

primary ->
    number {% id %}
  | string {% id %}
  | duration {% id %}
  | "true" {% (d) => ({ kind: 'bool', value: true, span: spanOf(d[0]) }) %}
  | "false" {% (d) => ({ kind: 'bool', value: false, span: spanOf(d[0]) }) %}
  | "null" {% (d) => ({ kind: 'null', span: spanOf(d[0]) }) %}
  | "[" arguments "]" {% (d) => ({ kind: 'list', items: d[1], span: join(d[0], d[2]) }) %}
  | "$" {% (d) => ({ kind: 'event', span: spanOf(d[0]) }) %}
  | %ident {% (d) => ({ kind: 'name', name: d[0].value, span: spanOf(d[0]) }) %}
  # The parentheses belong to the span, so `(a + b) * c` spans from `(`.
  | "(" expr ")" {% (d) => ({ ...d[1], span: join(d[0], d[2]) }) %}

# After `.` any word is a field name, reserved or not: `$.from`, `$.not`.
word -> %ident {% id %} | %kw {% id %} | %matches {% id %}

# ------------------------------------------------------------------ tokens

name -> %ident {% (d) => identNode(d[0]) %}
number -> %number {% (d) => numberLit(d[0]) %}
string -> %string {% (d) => stringLit(d[0]) %}
duration -> %duration {% (d) => durationLit(d[0]) %}
