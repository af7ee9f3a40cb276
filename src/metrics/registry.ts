// The Prometheus registry of the service (service.md §6): every metric of catalogue.ts, plus
// the Node.js process defaults, in a fresh prom-client Registry per call (no global registry,
// so tests and several engines can each have their own).
//
// Two kinds of metrics:
// - What the engine already counts (stream and rule counters, watermarks, partial matches,
//   keys, rules loaded) is read at scrape time by `collect()` callbacks: each one resets its
//   metric and sets it from the engine, so a removed rule or stream disappears from the output,
//   and nothing is done on the ingest hot path.
// - What happens outside the engine (checkpoints, alerts written, deliveries, MQTT messages,
//   HTTP ingest, rule load errors) is counted by the service through the methods returned here.
// Pull-time readers (`MetricsSources`) give the state size, the outbox backlog and the MQTT
// connection state.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** prom-client's default gauges named `_total`, dropped: see where they are removed. */
export const REDUNDANT_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;
import type { Engine } from '../runtime/engine.js';
import type { RuleCounters } from '../runtime/rule-runtime.js';
import { DROP_REASONS, metricSpec, type DeliveryOutcome, type DropReason } from './catalogue.js';

export interface MetricsSources {
  engine: Engine;
  /** Size of the durable state in bytes (vigil_state_size_bytes). */
  stateSizeBytes?: () => number;
  /** Deliveries not yet delivered or failed, by sink kind (vigil_outbox_backlog). */
  outboxBacklog?: () => Record<string, number>;
  /** Deliveries given up at a bound, by `sink reason` (vigil_deliveries_given_up_total). */
  givenUp?: () => ReadonlyMap<string, number>;
  /** Entries deleted by a bound, by store (vigil_store_pruned_total). */
  pruned?: () => Readonly<Record<string, number>>;
  /** MQTT connection state; null when MQTT is not configured (vigil_mqtt_connected reads 0). */
  mqttConnected?: () => boolean | null;
  /** The wall clock in epoch ms (for the watermark lag); default Date.now. */
  now?: () => number;
}

export interface VigilMetrics {
  registry: Registry;
  /** One checkpoint: its duration, and whether it succeeded. */
  observeCheckpoint(seconds: number, ok: boolean): void;
  /** One delivery attempt; `latencySeconds` (event arrival → delivered) is recorded for `delivered`. */
  observeDelivery(sink: string, outcome: DeliveryOutcome, latencySeconds?: number): void;
  /** One alert record written to the outbox. */
  countAlert(rule: string, kind: string): void;
  /** One MQTT message offered to a stream: accepted, late, rejected or duplicate. */
  countMqtt(stream: string, outcome: string): void;
  /** One HTTP ingest request, by outcome. */
  countHttpIngest(outcome: string): void;
  /** A rule load refused because of compile errors. */
  ruleLoadError(): void;
  /** One webhook delivery refused by the address policy (vigil_webhook_refused_total). */
  webhookRefused(): void;
  /** One validate or backtest run, by how it ended (vigil_work_runs_total). */
  countWorkRun(kind: string, outcome: string): void;
  /**
   * Partial matches lost because a rule was replaced by a version with another pattern
   * (vigil_rule_partial_matches_dropped_total{reason="rule_changed"}); the engine does not count
   * these itself, so whoever replaces rules reports them here.
   */
  ruleChanged(rule: string, droppedPartials: number): void;
  /** The text exposition format (what `GET /metrics` answers). */
  metrics(): Promise<string>;
}

/** Seconds with millisecond precision from epoch ms. */
const seconds = (ms: number): number => ms / 1000;

export function createMetrics(sources: MetricsSources): VigilMetrics {
  const registry = new Registry();
  const registers = [registry];
  const engine = sources.engine;
  const now = sources.now ?? Date.now;

  // Config from the catalogue, so names, help and labels cannot drift from it.
  const config = <T extends string>(name: string) => {
    const s = metricSpec(name);
    return { name: s.name, help: s.help, labelNames: s.labels as readonly T[], registers };
  };

  // ------------------------------------------------------------ streams (scrape time)

  const streamCounter = (name: string, read: (c: { accepted: number; late: number; rejected: number }) => number): void => {
    new Counter<'stream'>({
      ...config<'stream'>(name),
      collect() {
        this.reset();
        for (const [stream, st] of engine.streams) this.inc({ stream }, read(st.counters));
      },
    });
  };
  streamCounter('vigil_events_in_total', (c) => c.accepted);
  streamCounter('vigil_events_late_total', (c) => c.late);
  streamCounter('vigil_events_rejected_total', (c) => c.rejected);
  new Counter<'stream' | 'reason'>({
    ...config<'stream' | 'reason'>('vigil_events_over_limit_total'),
    collect() {
      this.reset();
      for (const [stream, st] of engine.streams) {
        this.inc({ stream, reason: 'too_large' }, st.counters.tooLarge);
        this.inc({ stream, reason: 'too_far_ahead' }, st.counters.tooFarAhead);
      }
    },
  });

  new Gauge<'stream'>({
    ...config<'stream'>('vigil_watermark_seconds'),
    collect() {
      this.reset();
      for (const [stream, st] of engine.streams) if (Number.isFinite(st.watermark)) this.set({ stream }, seconds(st.watermark));
    },
  });
  new Gauge<'stream'>({
    ...config<'stream'>('vigil_watermark_lag_seconds'),
    collect() {
      this.reset();
      const wall = now();
      for (const [stream, st] of engine.streams) if (Number.isFinite(st.watermark)) this.set({ stream }, seconds(wall - st.watermark));
    },
  });

  // ------------------------------------------------------------ rules (scrape time)

  const ruleCounter = (name: string, read: (c: RuleCounters) => number): void => {
    new Counter<'rule'>({
      ...config<'rule'>(name),
      collect() {
        this.reset();
        for (const [rule, rr] of engine.rules) this.inc({ rule }, read(rr.counters));
      },
    });
  };
  ruleCounter('vigil_rule_events_total', (c) => c.eventsIn);
  ruleCounter('vigil_rule_matches_total', (c) => c.matches);
  ruleCounter('vigil_rule_timeouts_total', (c) => c.timeouts);
  ruleCounter('vigil_rule_throttled_total', (c) => c.throttled);

  /** Partial matches lost to rule changes, per rule name (kept while the rule is loaded). */
  const ruleChangedDrops = new Map<string, number>();
  new Counter<'rule' | 'reason'>({
    ...config<'rule' | 'reason'>('vigil_rule_partial_matches_dropped_total'),
    collect() {
      this.reset();
      for (const name of ruleChangedDrops.keys()) if (!engine.rules.has(name)) ruleChangedDrops.delete(name);
      for (const [rule, rr] of engine.rules) {
        const c = rr.counters;
        const by: Record<DropReason, number> = {
          skip: c.discardedBySkip,
          max_partials: c.droppedByMaxPartials,
          timeout_silent: c.timeoutsDropped,
          rule_changed: ruleChangedDrops.get(rule) ?? 0,
        };
        for (const reason of DROP_REASONS) this.inc({ rule, reason }, by[reason]);
      }
    },
  });

  new Gauge<'rule'>({
    ...config<'rule'>('vigil_rule_partial_matches'),
    collect() {
      this.reset();
      for (const [rule, rr] of engine.rules) this.set({ rule }, rr.partialMatches());
    },
  });
  new Gauge<'rule'>({
    ...config<'rule'>('vigil_rule_keys'),
    collect() {
      this.reset();
      for (const [rule, rr] of engine.rules) this.set({ rule }, rr.keys.size);
    },
  });
  new Gauge({
    ...config('vigil_rules_loaded'),
    collect() {
      this.set(engine.rules.size);
    },
  });
  const loadErrors = new Counter(config('vigil_rule_load_errors_total'));
  const webhookRefused = new Counter(config('vigil_webhook_refused_total'));
  const workRuns = new Counter(config('vigil_work_runs_total'));

  // ------------------------------------------------------------ state and checkpoints

  new Gauge({
    ...config('vigil_state_size_bytes'),
    collect() {
      this.set(sources.stateSizeBytes ? sources.stateSizeBytes() : 0);
    },
  });
  const checkpointDuration = new Histogram({
    ...config('vigil_checkpoint_duration_seconds'),
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  const checkpoints = new Counter(config('vigil_checkpoints_total'));
  const checkpointFailures = new Counter(config('vigil_checkpoint_failures_total'));

  // ------------------------------------------------------------ alerts and delivery

  const alerts = new Counter<'rule' | 'kind'>(config<'rule' | 'kind'>('vigil_alerts_total'));
  const deliveries = new Counter<'sink' | 'outcome'>(config<'sink' | 'outcome'>('vigil_deliveries_total'));
  const deliveryLatency = new Histogram<'sink'>({
    ...config<'sink'>('vigil_delivery_latency_seconds'),
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
  });
  new Gauge<'sink'>({
    ...config<'sink'>('vigil_outbox_backlog'),
    collect() {
      this.reset();
      const backlog = sources.outboxBacklog?.() ?? {};
      for (const [sink, n] of Object.entries(backlog)) this.set({ sink }, n);
    },
  });
  new Counter<'sink' | 'reason'>({
    ...config<'sink' | 'reason'>('vigil_deliveries_given_up_total'),
    collect() {
      this.reset();
      for (const [k, n] of sources.givenUp?.() ?? []) {
        const [sink, reason] = k.split(' ');
        this.inc({ sink: sink!, reason: reason! }, n);
      }
    },
  });
  new Counter<'store'>({
    ...config<'store'>('vigil_store_pruned_total'),
    collect() {
      this.reset();
      for (const [store, n] of Object.entries(sources.pruned?.() ?? {})) this.inc({ store }, n);
    },
  });

  // ------------------------------------------------------------ ingest

  new Gauge({
    ...config('vigil_mqtt_connected'),
    collect() {
      this.set(sources.mqttConnected?.() === true ? 1 : 0);
    },
  });
  const mqttMessages = new Counter<'stream' | 'outcome'>(config<'stream' | 'outcome'>('vigil_mqtt_messages_total'));
  const httpIngest = new Counter<'outcome'>(config<'outcome'>('vigil_http_ingest_requests_total'));

  collectDefaultMetrics({ register: registry });
  // Gauges named `_total` break the exposition format's naming rule (`promtool check metrics`:
  // "non-counter metrics should not have _total suffix"), and each is only the sum of its
  // per-type gauge, still exported: sum(nodejs_active_handles) etc. (docs/decisions.md).
  for (const name of REDUNDANT_DEFAULT_METRICS) registry.removeSingleMetric(name);

  return {
    registry,
    observeCheckpoint(secs, ok) {
      checkpoints.inc();
      if (!ok) checkpointFailures.inc();
      if (Number.isFinite(secs) && secs >= 0) checkpointDuration.observe(secs);
    },
    observeDelivery(sink, outcome, latencySeconds) {
      deliveries.inc({ sink, outcome });
      if (outcome === 'delivered' && latencySeconds !== undefined && Number.isFinite(latencySeconds) && latencySeconds >= 0) {
        deliveryLatency.observe({ sink }, latencySeconds);
      }
    },
    countAlert(rule, kind) {
      alerts.inc({ rule, kind });
    },
    countMqtt(stream, outcome) {
      mqttMessages.inc({ stream, outcome });
    },
    countHttpIngest(outcome) {
      httpIngest.inc({ outcome });
    },
    ruleLoadError() {
      loadErrors.inc();
    },
    webhookRefused() {
      webhookRefused.inc();
    },
    countWorkRun(kind, outcome) {
      workRuns.inc({ kind, outcome });
    },
    ruleChanged(rule, droppedPartials) {
      if (droppedPartials > 0) ruleChangedDrops.set(rule, (ruleChangedDrops.get(rule) ?? 0) + droppedPartials);
    },
    metrics() {
      return registry.metrics();
    },
  };
}
