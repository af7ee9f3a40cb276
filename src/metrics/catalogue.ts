// The catalogue of every metric Vigil exports on `GET /metrics` (service.md §6), besides the
// Node.js process defaults. This list is a contract: registry.ts creates exactly these metrics
// (names, types, help, labels), and the Grafana dashboards in dashboards/ may query only these
// names (test/dashboards.test.ts checks it). Labels are bounded — stream names, rule names, sink
// kinds, outcomes — never keys or event values, so the number of series stays small.

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  name: string;
  type: MetricType;
  help: string;
  labels: readonly string[];
}

/** Reasons a partial match is dropped without a match (label `reason` of vigil_rule_partial_matches_dropped_total). */
export const DROP_REASONS = ['skip', 'max_partials', 'timeout_silent', 'rule_changed'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Per-stream limits an event can break at the door (label `reason` of vigil_events_over_limit_total). */
export const OVER_LIMIT_REASONS = ['too_large', 'too_far_ahead'] as const;

/** Outcomes of one delivery attempt to a sink (label `outcome` of vigil_deliveries_total). */
export const DELIVERY_OUTCOMES = ['delivered', 'retried', 'failed'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** Outcomes of an MQTT message offered to a stream (label `outcome` of vigil_mqtt_messages_total). */
export const MQTT_OUTCOMES = ['accepted', 'late', 'rejected', 'duplicate'] as const;

export const METRICS: readonly MetricSpec[] = [
  // Streams (read from the engine at scrape time).
  { name: 'vigil_events_in_total', type: 'counter', help: 'Events accepted by a stream (in time, valid): they enter the rules reading it.', labels: ['stream'] },
  { name: 'vigil_events_late_total', type: 'counter', help: 'Events that arrived below the stream watermark: kept on the late side output, never matched.', labels: ['stream'] },
  { name: 'vigil_events_rejected_total', type: 'counter', help: 'Events rejected by a stream: not an object, bad or missing time or key, schema broken.', labels: ['stream'] },
  { name: 'vigil_events_over_limit_total', type: 'counter', help: "Events rejected by a per-stream limit (also in vigil_events_rejected_total): over the maximum event size (too_large), event time further ahead of the wall clock than the maximum lead (too_far_ahead).", labels: ['stream', 'reason'] },
  { name: 'vigil_watermark_seconds', type: 'gauge', help: "The stream's watermark (event time), as epoch seconds; absent until the stream has one.", labels: ['stream'] },
  { name: 'vigil_watermark_lag_seconds', type: 'gauge', help: "Wall clock minus the stream's watermark, in seconds.", labels: ['stream'] },

  // Rules (read from the engine at scrape time).
  { name: 'vigil_rule_events_total', type: 'counter', help: 'Events the rule took in (released to its pattern, or filtered out as irrelevant).', labels: ['rule'] },
  { name: 'vigil_rule_matches_total', type: 'counter', help: 'Complete matches of the rule (throttled ones included).', labels: ['rule'] },
  { name: 'vigil_rule_timeouts_total', type: 'counter', help: "Timed-out partial matches of a rule with 'on timeout' (each one an alert unless throttled).", labels: ['rule'] },
  { name: 'vigil_rule_partial_matches', type: 'gauge', help: 'Live partial matches of the rule, over all keys.', labels: ['rule'] },
  { name: 'vigil_rule_partial_matches_dropped_total', type: 'counter', help: "Partial matches dropped without an alert: discarded by the skip strategy (skip), over 'max partials' (max_partials), timed out in a rule without 'on timeout' (timeout_silent), lost when the rule's pattern changed (rule_changed).", labels: ['rule', 'reason'] },
  { name: 'vigil_rule_throttled_total', type: 'counter', help: "Alerts of the rule held back by 'throttle' (counted, not sent).", labels: ['rule'] },
  { name: 'vigil_rule_keys', type: 'gauge', help: 'Keys holding state (partial matches) in the rule.', labels: ['rule'] },
  { name: 'vigil_rules_loaded', type: 'gauge', help: 'Rules loaded in the engine.', labels: [] },
  { name: 'vigil_webhook_refused_total', type: 'counter', help: 'Webhook and Alertmanager deliveries refused by the address policy (an internal or own-endpoint target, first or after a redirect): failed for good, not sent. Allow targets with VIGIL_WEBHOOK_ALLOW.', labels: [] },
  { name: 'vigil_rule_load_errors_total', type: 'counter', help: 'Rule loads (files at start, rules API) refused because of compile errors.', labels: [] },

  // Bounded work per request (validate, backtest).
  { name: 'vigil_work_runs_total', type: 'counter', help: 'Validate and backtest runs (kind) by how they ended: ok, or stopped at a limit (time, memory, partial_matches, events), refused because too many ran at once (busy), or failed.', labels: ['kind', 'outcome'] },

  // State and checkpoints.
  { name: 'vigil_state_size_bytes', type: 'gauge', help: 'Size of the durable state (LMDB) in bytes.', labels: [] },
  { name: 'vigil_checkpoint_duration_seconds', type: 'histogram', help: 'Duration of checkpoints (successful and failed), in seconds.', labels: [] },
  { name: 'vigil_checkpoints_total', type: 'counter', help: 'Checkpoints attempted (successful and failed).', labels: [] },
  { name: 'vigil_checkpoint_failures_total', type: 'counter', help: 'Checkpoints that failed.', labels: [] },

  // Alerts and delivery.
  { name: 'vigil_alerts_total', type: 'counter', help: 'Alert records written to the outbox, by rule and kind (match, timeout).', labels: ['rule', 'kind'] },
  { name: 'vigil_deliveries_total', type: 'counter', help: 'Delivery attempts by sink kind and outcome (delivered, retried, failed).', labels: ['sink', 'outcome'] },
  { name: 'vigil_delivery_latency_seconds', type: 'histogram', help: 'From the arrival of the event that completed the alert to its delivery, in seconds.', labels: ['sink'] },
  { name: 'vigil_outbox_backlog', type: 'gauge', help: 'Deliveries in the outbox not yet delivered or failed (pending, retrying, waiting for an unconfigured sink), by sink kind.', labels: ['sink'] },
  { name: 'vigil_deliveries_given_up_total', type: 'counter', help: 'Deliveries marked failed without being delivered because a bound was hit: retried for the maximum age (max_age), undelivered alerts over half the outbox (backlog_full), the outbox full with this alert its oldest (outbox_full).', labels: ['sink', 'reason'] },
  { name: 'vigil_store_pruned_total', type: 'counter', help: 'Entries deleted by a bound: expired idempotency keys (idempotency), late events over the per-stream count or bytes (late), finished alerts over the outbox bound (outbox), old savepoints (savepoints).', labels: ['store'] },

  // Ingest.
  { name: 'vigil_mqtt_connected', type: 'gauge', help: '1 while connected to the MQTT broker, else 0 (0 also when MQTT is not configured).', labels: [] },
  { name: 'vigil_mqtt_messages_total', type: 'counter', help: 'MQTT messages offered to a stream, by outcome (accepted, late, rejected, duplicate).', labels: ['stream', 'outcome'] },
  { name: 'vigil_http_ingest_requests_total', type: 'counter', help: 'HTTP ingest requests by outcome.', labels: ['outcome'] },
];

/** The catalogue entry of a metric; throws for a name that is not in the catalogue. */
export function metricSpec(name: string): MetricSpec {
  const spec = METRICS.find((m) => m.name === name);
  if (!spec) throw new Error(`metric '${name}' is not in the catalogue (src/metrics/catalogue.ts)`);
  return spec;
}
