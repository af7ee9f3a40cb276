// The metrics registry (src/metrics): every metric of the catalogue appears in the scrape, with
// its type; engine counters are read at scrape time (events in, matches, watermarks, partial
// matches, keys, rules loaded) and a removed rule disappears; the service-side counters and
// histograms move when called; registries are independent.

import { describe, expect, it } from 'vitest';
import { compileSources } from '../src/compiler/rule.js';
import { Engine } from '../src/runtime/engine.js';
import { METRICS } from '../src/metrics/catalogue.js';
import { createMetrics } from '../src/metrics/registry.js';

const RULES = `
stream tx {
  key card
  time ts
  fields { card: string  ts: number  amount: number }
}

rule big_after_small {
  from tx
  match
    s: amount < 5
    then b: amount > 500
  within 10m
  alert high "card {card}"
}

rule single_big {
  from tx
  match
    x: amount > 1000
  alert info "big {amount}"
}
`;

function setup(now = 1_700_000_100_000) {
  const program = compileSources([{ file: 'metrics.vigil', text: RULES }]);
  expect(program.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const alerts: string[] = [];
  const engine = new Engine({ output: { alert: (r) => alerts.push(r.rule), late: () => {} } });
  for (const s of program.streams.values()) engine.setStream(s);
  for (const r of program.rules) engine.setRule(r);
  const metrics = createMetrics({ engine, now: () => now });
  return { engine, metrics, alerts };
}

/** The value of one sample line `name{labels} value` in the exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

const T0 = 1_700_000_000_000;

describe('metrics registry', () => {
  it('exports every catalogue metric, with its type and help', async () => {
    const { metrics } = setup();
    const text = await metrics.metrics();
    for (const m of METRICS) {
      expect(text, m.name).toContain(`# TYPE ${m.name} ${m.type}\n`);
      expect(text, m.name).toContain(`# HELP ${m.name} `);
    }
  });

  it('exports no vigil_ metric that is not in the catalogue, and includes the process defaults', async () => {
    const { metrics } = setup();
    const text = await metrics.metrics();
    const typed = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    const names = new Set(METRICS.map((m) => m.name));
    for (const n of typed.filter((t) => t.startsWith('vigil_'))) expect(names.has(n), n).toBe(true);
    expect(typed).toContain('process_cpu_user_seconds_total');
    expect(typed.some((t) => t.startsWith('nodejs_'))).toBe(true);
  });

  it('catalogue names are unique, well formed, typed, with bounded labels', () => {
    const names = METRICS.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    for (const m of METRICS) {
      expect(m.name).toMatch(/^vigil_[a-z_]+$/);
      if (m.type === 'counter') expect(m.name.endsWith('_total'), m.name).toBe(true);
      expect(m.help.length).toBeGreaterThan(10);
      for (const l of m.labels) expect(['stream', 'rule', 'reason', 'store', 'kind', 'sink', 'outcome']).toContain(l);
    }
  });

  it('reads stream and rule counters from the engine at scrape time', async () => {
    const { engine, metrics, alerts } = setup(T0 + 60_000);
    engine.ingest('tx', { card: 'c1', ts: T0, amount: 2 }, T0);
    engine.ingest('tx', { card: 'c1', ts: T0 + 1000, amount: 900 }, T0 + 1000);
    engine.ingest('tx', { card: 'c2', ts: T0 + 2000, amount: 3 }, T0 + 2000);
    engine.ingest('tx', { card: 'c3', ts: T0 + 3000, amount: 1500 }, T0 + 3000);
    engine.ingest('tx', { card: 'c1', ts: T0 - 5000, amount: 1 }, T0 + 3000); // late
    engine.ingest('tx', { card: 'c1', ts: T0 + 4000 }, T0 + 4000); // rejected: no amount
    expect(alerts).toEqual(['big_after_small', 'single_big']);

    const text = await metrics.metrics();
    expect(sample(text, 'vigil_events_in_total{stream="tx"}')).toBe(4);
    expect(sample(text, 'vigil_events_late_total{stream="tx"}')).toBe(1);
    expect(sample(text, 'vigil_events_rejected_total{stream="tx"}')).toBe(1);
    expect(sample(text, 'vigil_watermark_seconds{stream="tx"}')).toBe((T0 + 3000) / 1000);
    expect(sample(text, 'vigil_watermark_lag_seconds{stream="tx"}')).toBe(57);
    expect(sample(text, 'vigil_rule_matches_total{rule="big_after_small"}')).toBe(1);
    expect(sample(text, 'vigil_rule_matches_total{rule="single_big"}')).toBe(1);
    expect(sample(text, 'vigil_rule_events_total{rule="big_after_small"}')).toBe(4);
    // c2's {s} is still waiting for a big amount.
    expect(sample(text, 'vigil_rule_partial_matches{rule="big_after_small"}')).toBe(1);
    expect(sample(text, 'vigil_rule_keys{rule="big_after_small"}')).toBe(1);
    expect(sample(text, 'vigil_rules_loaded')).toBe(2);
    for (const reason of ['skip', 'max_partials', 'timeout_silent', 'rule_changed']) {
      expect(sample(text, `vigil_rule_partial_matches_dropped_total{rule="big_after_small",reason="${reason}"}`), reason).toBeDefined();
    }

    // The values follow the engine: c2's partial match times out silently (no `on timeout`).
    engine.ingest('tx', { card: 'c4', ts: T0 + 700_000, amount: 50 }, T0 + 700_000);
    const later = await metrics.metrics();
    expect(sample(later, 'vigil_events_in_total{stream="tx"}')).toBe(5);
    expect(sample(later, 'vigil_rule_partial_matches{rule="big_after_small"}')).toBe(0);
    expect(sample(later, 'vigil_rule_partial_matches_dropped_total{rule="big_after_small",reason="timeout_silent"}')).toBe(1);
    expect(sample(later, 'vigil_rule_timeouts_total{rule="big_after_small"}')).toBe(0);
  });

  it('drops the series of a removed rule', async () => {
    const { engine, metrics } = setup();
    engine.ingest('tx', { card: 'c1', ts: T0, amount: 2000 }, T0);
    expect(sample(await metrics.metrics(), 'vigil_rule_matches_total{rule="single_big"}')).toBe(1);
    engine.removeRule('single_big');
    const text = await metrics.metrics();
    expect(text).not.toContain('rule="single_big"');
    expect(sample(text, 'vigil_rules_loaded')).toBe(1);
  });

  it('counts what the service reports: checkpoints, alerts, deliveries, MQTT, HTTP, load errors, rule changes', async () => {
    const backlog: Record<string, number> = { webhook: 3, email: 0 };
    let connected: boolean | null = true;
    const { engine } = setup();
    const metrics = createMetrics({ engine, stateSizeBytes: () => 4096, outboxBacklog: () => backlog, mqttConnected: () => connected });
    metrics.observeCheckpoint(0.02, true);
    metrics.observeCheckpoint(1.5, false);
    metrics.countAlert('single_big', 'match');
    metrics.countAlert('single_big', 'match');
    metrics.countAlert('big_after_small', 'timeout');
    metrics.observeDelivery('webhook', 'retried');
    metrics.observeDelivery('webhook', 'delivered', 0.3);
    metrics.observeDelivery('email', 'failed');
    metrics.countMqtt('tx', 'accepted');
    metrics.countMqtt('tx', 'duplicate');
    metrics.countHttpIngest('accepted');
    metrics.ruleLoadError();
    metrics.ruleChanged('single_big', 7);
    metrics.countWorkRun('backtest', 'time');
    metrics.countWorkRun('backtest', 'time');
    metrics.countWorkRun('validate', 'ok');

    let text = await metrics.metrics();
    expect(sample(text, 'vigil_work_runs_total{kind="backtest",outcome="time"}')).toBe(2);
    expect(sample(text, 'vigil_work_runs_total{kind="validate",outcome="ok"}')).toBe(1);
    expect(sample(text, 'vigil_checkpoints_total')).toBe(2);
    expect(sample(text, 'vigil_checkpoint_failures_total')).toBe(1);
    expect(sample(text, 'vigil_checkpoint_duration_seconds_count')).toBe(2);
    expect(sample(text, 'vigil_checkpoint_duration_seconds_sum')).toBeCloseTo(1.52);
    expect(sample(text, 'vigil_alerts_total{rule="single_big",kind="match"}')).toBe(2);
    expect(sample(text, 'vigil_alerts_total{rule="big_after_small",kind="timeout"}')).toBe(1);
    expect(sample(text, 'vigil_deliveries_total{sink="webhook",outcome="retried"}')).toBe(1);
    expect(sample(text, 'vigil_deliveries_total{sink="webhook",outcome="delivered"}')).toBe(1);
    expect(sample(text, 'vigil_deliveries_total{sink="email",outcome="failed"}')).toBe(1);
    expect(sample(text, 'vigil_delivery_latency_seconds_count{sink="webhook"}')).toBe(1);
    expect(sample(text, 'vigil_delivery_latency_seconds_bucket{le="0.5",sink="webhook"}')).toBe(1);
    expect(sample(text, 'vigil_delivery_latency_seconds_count{sink="email"}')).toBeUndefined();
    expect(sample(text, 'vigil_outbox_backlog{sink="webhook"}')).toBe(3);
    expect(sample(text, 'vigil_state_size_bytes')).toBe(4096);
    expect(sample(text, 'vigil_mqtt_connected')).toBe(1);
    expect(sample(text, 'vigil_mqtt_messages_total{stream="tx",outcome="duplicate"}')).toBe(1);
    expect(sample(text, 'vigil_http_ingest_requests_total{outcome="accepted"}')).toBe(1);
    expect(sample(text, 'vigil_rule_load_errors_total')).toBe(1);
    expect(sample(text, 'vigil_rule_partial_matches_dropped_total{rule="single_big",reason="rule_changed"}')).toBe(7);

    // Pull-time readers are read at every scrape.
    connected = false;
    delete backlog.webhook;
    backlog.mqtt = 2;
    text = await metrics.metrics();
    expect(sample(text, 'vigil_mqtt_connected')).toBe(0);
    expect(sample(text, 'vigil_outbox_backlog{sink="webhook"}')).toBeUndefined();
    expect(sample(text, 'vigil_outbox_backlog{sink="mqtt"}')).toBe(2);
  });

  it('gives each call its own registry', async () => {
    const a = setup();
    const b = setup();
    a.metrics.ruleLoadError();
    expect(a.metrics.registry).not.toBe(b.metrics.registry);
    expect(sample(await a.metrics.metrics(), 'vigil_rule_load_errors_total')).toBe(1);
    expect(sample(await b.metrics.metrics(), 'vigil_rule_load_errors_total')).toBe(0);
  });
});
