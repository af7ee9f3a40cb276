// Valid rules-file texts covering every construct: the snippets of language.md and our own.
// The ambiguity test parses each one and expects exactly one parse (no diagnostics at all);
// the fuzz test mutates them.

export const LANGUAGE_MD_SNIPPETS: string[] = [
  // §3
  `stream transactions {
  key card_id               # default key for rules that read this stream (a field path)
  time ts                   # event-time field: epoch milliseconds, or ISO-8601 text with a zone (Z or ±hh:mm)
  watermark 5s              # bounded out-of-orderness (default 0s)
  idle 30s                  # after 30s of wall clock with no events, event time follows the wall clock (default: never)
  fields {                  # optional schema; events that break it are rejected with a clear error
    card_id: string
    amount: number
    merchant: string?       # ? = optional; types: string number boolean time object list any
  }
  source mqtt "bank/+/transactions"      # optional, repeatable: MQTT topic filters that feed the stream
}`,
  // §4
  `rule card_testing "Card testing: tiny charges, then a large one" {
  from transactions                     # one or more streams: from logins, transactions by user_id
  match
    small{3,}: amount < 5
    then big: amount > 500 and merchant != first(small).merchant
  within 10m
  skip past last                        # the default
  alert high "Card {card_id}: {count(small)} small charges, then {big.amount} at {big.merchant}"
    to webhook "https://fraud.example.com/hook"
    to email "fraud-ops@example.com" subject "Card testing on {card_id}"
    to mqtt "alerts/cards/{card_id}" qos 1
  throttle 1 per 10m                    # per key by default; \`by <expr>\` to choose
}`,
  // §4 clause table and sinks
  `rule r { from logins, transactions by user_id }`,
  `rule r { on timeout alert warning "timed out {key()}" }`,
  `rule r { max partials 10000 }`,
  `rule r { alert info "x" to webhook "https://h" header "Name" "value" secret env("NAME") }`,
  `rule r { alert info "x" to email "addr", "addr2" subject "S {a}" }`,
  `rule r { alert info "x" to mqtt "TOPIC {t}" qos 2 retain }`,
  `rule r { alert info "x" to log }`,
  `rule r { alert info "{format(t, \\"yyyy-LL-dd HH:mm\\", \\"Europe/Berlin\\")}" }`,
  // §5
  `rule r { match small{3,}: amount < 5 }`,
  `rule r { match a: type == "a" then b+: type == "b" skip none }`,
  `rule r { match a: type == "a" then b: type == "b" }`,
  `rule r { match a: x next not x2: C then b: y }`,
  `rule r { match a: x then not x2: C then b: y }`,
  `rule r { match a: x then not x2: C for 5m }`,
  `rule r { match a: x then b+: y then not c: z then d: w }`,
  `rule r { match a: x then not b: y then c?: z }`,
  `rule r { match a: x then any s: y then m: z }`,
  // §6
  `rule r { skip none }`,
  `rule r { skip to next }`,
  `rule r { skip past last }`,
  `rule r { skip to first v }`,
  `rule r { skip to last v }`,
  // §7
  `rule r { match a: b.ts - a.ts < 30s }`,
  `rule r { match v: v.f > 1 and v[0].f < v[-1].f and first(v).f == last(v).f }`,
  `rule r { match v: count(v) > 2 and sum(v.f) > 10 and avg(v.f) < 3 and min(v.f) >= 0 and max(v.f) <= 9 }`,
  `rule r { match a: abs(x) + round(y) + floor(z) + ceil(w) + len(s) > 0 and lower(s) == upper(s) and exists(q) and coalesce(a, b) != null }`,
  `rule r { match a: min(x, y) < max(x, y) and time(a) > 0 and time() > 0 and stream() == "s" }`,
  `rule r { match a: hour(t, "Europe/Berlin") > 8 and weekday(t, zone) < 6 and minute(t, zone) == 0 and date(t, zone) == "2026-01-01" }`,
  `rule r { match a: $.from == "x" and headers["x-request-id"] != null and currency in ["EUR", "USD"] }`,
];

export const OWN_SNIPPETS: string[] = [
  // every stream clause, one line, commas in fields, quoted names
  `stream s { key k time ts watermark 250ms idle 1d fields { a: string, b: number, c: boolean, d: time, e: object, f: list, g: any?, "h-i": string } source mqtt "a/#" id event_id }`,
  `stream s {
  key $.key
  time $.time
  id headers["x-id"]
  source mqtt "x"
  source mqtt "y"
}`,
  `stream s { key lower(user.email) time meta.ts }`,
  // per-stream limits; `max(...)` in a key stays a call
  `stream s { key max(a, b) time ts max lead 10m max size 65536 }`,
  `stream s {
  max size 1048576
  max lead 1h
  key max
}`,
  `stream s { key time time key id source }`,
  `stream s { fields { key: string time: time source: string id: string fields: object in: number not: any } }`,
  `stream empty {}`,
  // rules: every clause in odd orders, comments everywhere
  `# leading comment
rule r "title" { # after brace
  throttle 3 per 1h by merchant # comment
  max partials 5
  within 1.5s
  skip to first a
  match a: x # mid-pattern comment
    then b: y
  from s1, s2, s3 by coalesce(user, "anon")
  on timeout alert critical "{{no}} match for {key()}" to log
  alert info "ok" to log
}
# trailing comment`,
  // every quantifier, modifier, link, negation and group form
  `rule r { match a{2}: x next b{2,}: y then c{2,5}: z then any d{0,3}: w then e{0,}: v then f{0}: u then g+: t then h*: s then i?: q }`,
  `rule r { match a+: x greedy consecutive combinations until y > 3 then b: z }`,
  `rule r { match a: x then b*: y until z combinations then c: w }`,
  `rule r { match a: x next not b: y next c: z then not d{2}: w for 10s }`,
  `rule r { match (a: x then b: y){2,} then (c: z next (d: w)+)? then e: v }`,
  `rule r { match (a: x) then (b: (y or z) and w)* then c: -x < -3 }`,
  `rule r { match from: time > 3 then key: source then within: $.from then any any: any }`,
  `rule r { match a: x then then: then then next: next }`,
  `rule r { match a: not x and not (y or z) or not w in [1, 2] }`,
  `rule r { match a: x not in [1, 2, 3] and y contains "z" and s startswith "a" and s endswith "b" }`,
  `rule r { match a: s matches /^[a-z]+\\/x$/i and t matches /a b/ and $.matches == 1 }`,
  `rule r { match a: 1 + 2 * 3 - 4 / 5 % 6 == 7 and 1e6 > 1.5e-3 and 12 != 4.5 and -3 <= 3 }`,
  `rule r { match a: [] == [] and [[1], [2, [3]]] != [] and true and not false and null == null }`,
  `rule r { match a: f()[0].g[1].h(2) == 3 }`.replace('.h(2)', ''),
  `rule r { match a: x.and.or.not.in.true.null.matches.from == 1 }`,
  `rule r { match a: x <= 1 or x >= 2 or x < 3 or x > 4 or x == 5 or x != 6 }`,
  `rule r { match a: 250ms + 5s + 10m + 2h + 1d + 1.5s > 0 }`,
  `rule r { match a: max(a, b) > 1
  max partials 3 }`,
  // sinks, all forms
  `rule r {
  alert high "A {a.b} {{x}}"
    to webhook "https://h/1"
    to webhook env("URL") header "A" "b" header "C" env("D")
    to webhook "u" header "H" "v" secret "s"
    to webhook "u" secret env("S")
    to email "a@b"
    to email env("TO"), "c@d" subject "S {x} {{y}}"
    to mqtt "t/{a}" qos 0
    to mqtt "t" retain
    to mqtt "t" retain qos 2
    to mqtt "t" qos 1 retain
    to log
  on timeout alert low "t" to mqtt "x/{key()}"
}`,
  `rule r { alert from "severity may be any identifier" }`,
  `rule r { alert info "escapes \\" \\\\ \\n \\t \\u{1F600} and {s + \\"\\\\\\"\\"}" }`,
  // several declarations
  `stream a {} rule b { from a } stream c { key k } rule d "D" { from a, c match x: true }`,
];

export const VALID_SNIPPETS = [...LANGUAGE_MD_SNIPPETS, ...OWN_SNIPPETS];
