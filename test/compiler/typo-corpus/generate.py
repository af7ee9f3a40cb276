# Generates test/compiler/typo-corpus/*.vigil: realistic rules with one typo each. The header of
# each file states the expected diagnostic; its position is computed here from the marked token.
import os
OUT = '/work/wt/rules-compiler/test/compiler/typo-corpus'
TX = '''stream transactions {
  key card_id
  time ts
  watermark 2s
  fields {
    card_id: string
    ts: time
    amount: number
    currency: string
    merchant: string
    country: string?
  }
}
'''
SENSORS = '''stream readings {
  key sensor_id
  time ts
  fields {
    sensor_id: string
    ts: time
    temp: number
    site: string?
  }
}
'''
ORDERS = '''stream orders {
  key order_id
  time ts
  fields {
    order_id: string
    ts: time
    total: number
    status: string
  }
}
stream shipments {
  key order_id
  time ts
  fields {
    order_id: string
    ts: time
    carrier: string
  }
}
'''
CARD = '''rule card_testing "Card testing" {{
  from transactions
  match
    small{{3,}}: amount < 5
    then big: {cond}
  within 10m
  alert high "{msg}"{sinks}{extra}
}}
'''
HOT = '''rule overheating {{
  from readings
  match hot{{3,}}: {cond} consecutive
  within 5m
  alert critical "{msg}"
}}
'''
cases = []
def case(name, severity, code, token, message, prelude, rule, occurrence=1):
    cases.append((name, severity, code, token, message, prelude + rule, occurrence))

def card(cond='amount >= 500 and merchant != first(small).merchant', msg='Card {card_id}: {count(small)} small, then {big.amount}', sinks='', extra=''):
    return CARD.format(cond=cond, msg=msg, sinks=sinks, extra=extra)
def hot(cond='temp > 80', msg='Sensor {sensor_id}: {count(hot)} readings, max {max(hot.temp)}'):
    return HOT.format(cond=cond, msg=msg)

# --- step references that are not steps: errors
case('first-of-typo-step', 'error', 'compile/expected-step', 'smal', "first() takes a step name: 'smal' is not a step of this rule; did you mean 'small'?", TX,
     card(cond='amount >= 500 and merchant != first(smal).merchant'))
case('last-in-template', 'error', 'compile/expected-step', 'smal', "last() takes a step name: 'smal' is not a step of this rule; did you mean 'small'?", TX,
     card(msg='Card {card_id}: last small charge at {last(smal).merchant}'))
case('count-in-template', 'error', 'compile/expected-step', 'smal', "count() takes a step name: 'smal' is not a step of this rule; did you mean 'small'?", TX,
     card(msg='Card {card_id}: {count(smal)} small charges'))
case('count-in-condition', 'error', 'compile/expected-step', 'smal', "count() takes a step name: 'smal' is not a step of this rule; did you mean 'small'?", TX,
     card(cond='amount >= 500 and count(smal) >= 3'))
case('sum-of-typo-step', 'error', 'compile/expected-step', 'smal', "sum() takes a step field like sum(v.amount): 'smal' is not a step of this rule; did you mean 'small'?", TX,
     card(cond='amount > 10 * sum(smal.amount)'))
case('min-of-typo-step', 'error', 'compile/expected-step', 'smal', "min() takes a step field like min(v.amount): 'smal' is not a step of this rule; did you mean 'small'?", TX,
     card(msg='Card {card_id}: smallest {min(smal.amount)}'))
case('avg-transposed', 'error', 'compile/expected-step', 'hto', "avg() takes a step field like avg(v.amount): 'hto' is not a step of this rule; did you mean 'hot'?", SENSORS,
     hot(msg='Sensor {sensor_id}: average {avg(hto.temp)}'))
case('time-of-typo-step', 'error', 'compile/expected-step', 'hto', "time() takes a step name: 'hto' is not a step of this rule; did you mean 'hot'?", SENSORS,
     hot(msg='Sensor {sensor_id}: hot since {time(hto)}'))
case('max-in-condition', 'error', 'compile/expected-step', 'hto', "max() takes a step field like max(v.amount): 'hto' is not a step of this rule; did you mean 'hot'?", SENSORS,
     hot(cond='temp > 80 and max(hto.temp) < 200'))
case('skip-to-typo-step', 'error', 'compile/unknown-step', 'smal', "'smal' is not a step of this rule's pattern; did you mean 'small'?", TX,
     card(extra='\n  skip to first smal'))

# --- a bare name one typo from a step: read as a field, warned
case('member-of-typo-step', 'warning', 'compile/not-a-step', 'bigg', "'bigg' is not a step; did you mean 'big'? read as field 'bigg' of the event", TX,
     card(msg='Card {card_id}: {bigg.amount} at {big.merchant}'))
case('index-of-typo-step', 'warning', 'compile/not-a-step', 'smal', "'smal' is not a step; did you mean 'small'? read as field 'smal' of the event", TX,
     card(msg='Card {card_id}: first small charge {smal[0].amount}'))
case('typo-step-in-condition', 'warning', 'compile/not-a-step', 'smal', "'smal' is not a step; did you mean 'small'? read as field 'smal' of the event", TX,
     card(cond='amount >= 500 and merchant != smal.merchant'))
case('typo-step-in-throttle-by', 'warning', 'compile/not-a-step', 'bigg', "'bigg' is not a step; did you mean 'big'? read as field 'bigg' of the event", TX,
     card(extra='\n  throttle 1 per 1h by bigg.merchant'))
case('typo-step-in-topic', 'warning', 'compile/not-a-step', 'bigg', "'bigg' is not a step; did you mean 'big'? read as field 'bigg' of the event", TX,
     card(sinks='\n    to mqtt "alerts/card-testing/{bigg.card_id}"'))
case('typo-step-in-subject', 'warning', 'compile/not-a-step', 'bigg', "'bigg' is not a step; did you mean 'big'? read as field 'bigg' of the event", TX,
     card(sinks='\n    to email "fraud@example.com" subject "Card testing: {bigg.card_id}"'))
case('typo-step-in-on-timeout', 'warning', 'compile/not-a-step', 'ordr', "'ordr' is not a step; did you mean 'order'? read as field 'ordr' of the event", ORDERS, '''rule not_shipped {
  from orders, shipments
  match order: stream() == "orders" then shipped: stream() == "shipments"
  within 2d skip none
  alert info "Order {order.order_id} shipped by {shipped.carrier}"
  on timeout alert warning "Order {ordr.order_id} not shipped within 2 days"
}
''')
case('typo-step-two-streams', 'warning', 'compile/not-a-step', 'shiped', "'shiped' is not a step; did you mean 'shipped'? read as field 'shiped' of the event", ORDERS, '''rule shipped_late {
  from orders, shipments
  match order: stream() == "orders" then shipped: stream() == "shipments" and time(shipped) - time(order) > 1d
  within 7d
  alert info "Order {order.order_id} shipped late by {shiped.carrier}"
}
''')

# --- fields against the declared schema
case('undeclared-field', 'warning', 'compile/unknown-field', 'amont', "field 'amont' is not declared in stream 'transactions'; did you mean 'amount'?", TX,
     card(cond='amont >= 500 and merchant != first(small).merchant'))
case('undeclared-field-of-step', 'warning', 'compile/unknown-field', 'merchnt', "field 'merchnt' is not declared in stream 'transactions'; did you mean 'merchant'?", TX,
     card(msg='Card {card_id}: {big.amount} at {big.merchnt}'))
case('undeclared-field-dollar', 'warning', 'compile/unknown-field', 'currancy', "field 'currancy' is not declared in stream 'transactions'; did you mean 'currency'?", TX,
     card(cond='amount >= 500 and $.currancy == "EUR"'))
case('undeclared-field-indexed-step', 'warning', 'compile/unknown-field', 'amont', "field 'amont' is not declared in stream 'transactions'; did you mean 'amount'?", TX,
     card(msg='Card {card_id}: first {small[0].amont}'))
case('undeclared-field-of-last', 'warning', 'compile/unknown-field', 'contry', "field 'contry' is not declared in stream 'transactions'; did you mean 'country'?", TX,
     card(msg='Card {card_id}: last small charge from {last(small).contry}'))
case('undeclared-field-case', 'warning', 'compile/unknown-field', 'Amount', "field 'Amount' is not declared in stream 'transactions'; did you mean 'amount'?", TX,
     card(cond='Amount >= 500'))
case('undeclared-field-no-suggestion', 'warning', 'compile/unknown-field', 'temperature', "field 'temperature' is not declared in stream 'readings' (the schema is open", SENSORS,
     hot(cond='temperature > 80'))
case('undeclared-field-in-aggregate', 'warning', 'compile/unknown-field', 'tmp', "field 'tmp' is not declared in stream 'readings'; did you mean 'temp'?", SENSORS,
     hot(msg='Sensor {sensor_id}: max {max(hot.tmp)}'))

# --- comparisons a declared type makes always false
case('number-vs-string', 'warning', 'compile/always-false', 'amount > "500"', 'always false: field \'amount\' is declared number and "500" is a string', TX,
     card(cond='amount > "500"'))
case('number-vs-string-sensor', 'warning', 'compile/always-false', 'temp >= "80"', 'always false: field \'temp\' is declared number and "80" is a string', SENSORS,
     hot(cond='temp >= "80"'))
case('string-vs-number', 'warning', 'compile/always-false', 'merchant == 5', "always false: field 'merchant' is declared string and 5 is a number", TX,
     card(cond='amount >= 500 and merchant == 5'))
case('string-vs-bool', 'warning', 'compile/always-false', 'status == true', "always false: field 'status' is declared string and true is a boolean", ORDERS, '''rule paid {
  from orders
  match o: status == true
  alert info "Order {order_id} paid"
}
''')

# --- sinks
case('topic-hash', 'error', 'compile/topic-wildcard', '#', "an MQTT publish topic cannot contain the wildcard '#'", TX,
     card(sinks='\n    to mqtt "alerts/#/card-testing"'))
case('topic-plus', 'error', 'compile/topic-wildcard', '+', "an MQTT publish topic cannot contain the wildcard '+'", TX,
     card(sinks='\n    to mqtt "alerts/+/{card_id}"'))
case('empty-webhook-url', 'error', 'compile/empty-url', '""', 'the webhook URL is empty', TX,
     card(sinks='\n    to webhook ""'))
case('empty-email-address', 'error', 'compile/empty-address', '""', 'the email address is empty', TX,
     card(sinks='\n    to email "fraud@example.com", ""'))
case('header-with-space', 'error', 'compile/bad-header', '"X Api Key"', "'X Api Key' is not an HTTP header name", TX,
     card(sinks='\n    to webhook "https://hooks.example.com/vigil" header "X Api Key" "k1"'))
case('header-with-colon', 'error', 'compile/bad-header', '"X-Team:"', "'X-Team:' is not an HTTP header name", TX,
     card(sinks='\n    to webhook "https://hooks.example.com/vigil" header "X-Team:" "fraud"'))

# --- functions and streams
case('function-typo', 'error', 'compile/unknown-function', 'cout', "unknown function 'cout'; did you mean 'count'?", TX,
     card(msg='Card {card_id}: {cout(small)} small charges'))
case('function-typo-lower', 'error', 'compile/unknown-function', 'lowr', "unknown function 'lowr'; did you mean 'lower'?", TX,
     card(cond='amount >= 500 and lowr(merchant) != lower(first(small).merchant)'))
case('function-typo-coalesce', 'error', 'compile/unknown-function', 'coalesse', "unknown function 'coalesse'; did you mean 'coalesce'?", SENSORS,
     hot(msg='Sensor {sensor_id} at {coalesse(site, \\"unknown\\")}'))
case('stream-typo', 'warning', 'compile/implicit-stream', 'transaction', "stream 'transaction' is not declared (did you mean 'transactions'?): it is read as an implicit stream", TX, '''rule big_spender {
  from transaction
  match big: amount > 10000
  alert high "Card {card_id}: {amount}"
}
''')

os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    if f.endswith('.vigil'): os.remove(os.path.join(OUT, f))
for i, (name, sev, code, token, message, body, occ) in enumerate(cases, 1):
    # The token's position in the rules, after the header lines.
    header_lines = 4
    rule_start = body.index('rule ')
    # An identifier token is found as a whole word (`smal`, not the start of `small`).
    import re
    pattern = r'(?<![A-Za-z0-9_])' + re.escape(token) + r'(?![A-Za-z0-9_])' if re.fullmatch(r'\w+', token) else re.escape(token)
    at = re.compile(pattern).search(body, rule_start).start()
    before = body[:at]
    line = before.count('\n') + 1 + header_lines
    col = at - (before.rfind('\n') + 1) + 1
    head = (f'# typo corpus: {name}\n'
            f'# expect-severity: {sev}\n'
            f'# expect: {code} {line}:{col}\n'
            f'# message: {message}\n')
    with open(os.path.join(OUT, f'{i:02d}-{name}.vigil'), 'w') as fh:
        fh.write(head + body)
print(len(cases))
