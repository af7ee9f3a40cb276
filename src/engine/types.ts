// The service core's contract (service.md §2, §4): what the HTTP API, the CLI, the MQTT source
// and the dispatcher call. Implemented by DurableEngine (durable-engine.ts): one Engine, its
// LMDB state store and group commits.

import type { AlertRecord, Delivery } from '../core/alert.js';
import type { Diagnostic } from '../core/diagnostics.js';
import type { Json } from '../core/event.js';
import type { OutputRecord } from '../cli/run.js';

export interface ServiceOptions {
  /** LMDB directory (created when missing). */
  dataDir: string;
  /** Rules directory (`*.vigil` loaded at start and hot-loaded on change); null for none. */
  rulesDir: string | null;
  /** How long changes gather after an idle period before a commit (VIGIL_CHECKPOINT_MS); default 5 ms. Under load commits run back to back. */
  checkpointMs?: number;
  /** How long an Idempotency-Key is remembered; default 24 h. */
  idempotencyTtlMs?: number;
  /** Late events kept per stream on the late side output; default 10,000. */
  lateKeepPerStream?: number;
  /** Alerts kept in the outbox once every delivery is final; default 100,000. */
  outboxKeep?: number;
  /**
   * Largest event in bytes (its UTF-8 JSON as sent), unless the stream declares `max size`;
   * default 1 MiB (VIGIL_MAX_EVENT_BYTES). Checked for events whose size the caller measured
   * (IngestOptions.sizes: HTTP and MQTT do).
   */
  maxEventBytes?: number;
  /**
   * How far an event's time may be ahead of its arrival wall clock (ms) on a stream with a `time`
   * field, unless the stream declares `max lead`; default 1 h (VIGIL_MAX_LEAD_MS).
   */
  maxLeadMs?: number;
  /**
   * Bytes the outbox may hold (alerts as JSON); default 256 MiB. Undelivered alerts may fill at
   * most half of the outbox (count and bytes): past that the oldest undelivered deliveries are
   * marked failed (reason `backlog_full`), counted and logged.
   */
  outboxMaxBytes?: number;
  /** Bytes of late events kept per stream on the late side output (as JSON); default 64 MiB. */
  lateMaxBytesPerStream?: number;
  /** Largest answer of a paged read (GET /alerts, GET /streams/:s/late) in bytes, at least one item; default 8 MiB. */
  pageMaxBytes?: number;
  /** Idempotency keys examined per sweep (one sweep a second; expired ones are deleted); default 1000. */
  idempotencySweepBatch?: number;
  /** Savepoints kept under <dataDir>/savepoints; the oldest are deleted beyond it; default 5. */
  savepointsKeep?: number;
  /** Watch the rules directory for changes (default true). */
  watchRules?: boolean;
  /** Wall clock (ms); default Date.now. */
  now?: () => number;
  /** Values for env("NAME") in sink settings; default process.env. */
  env?: Record<string, string | undefined>;
  /**
   * Which sink kinds the service can deliver to (VIGIL_SMTP_URL, VIGIL_MQTT_URL set): a rule
   * with a sink of another kind loads with a warning. Absent: not checked.
   */
  configuredSinks?: { email: boolean; mqtt: boolean };
  /** env("NAME") reads only names with this prefix (VIGIL_ENV_PREFIX); default VIGIL_SECRET_. */
  envPrefix?: string;
  /** Where webhooks may post (VIGIL_WEBHOOK_ALLOW); literal targets it refuses do not compile. Default: no internal address. */
  webhookPolicy?: import('../core/webhook-address-policy.js').WebhookAddressPolicy;
  /** Wall-clock limit for the tests of one hot load (PUT /rules/:id, rules-directory edit), ms; default 5000. */
  testTimeLimitMs?: number;
  /** Most events one rule test may give; default 10,000. */
  testMaxEvents?: number;
  /** Called when a commit fails (the state can no longer be made durable); the serve command exits. */
  onFatal?: (error: Error) => void;
  /** Bounds of validate and backtest runs (work threads); defaults in work-pool.ts. */
  work?: Partial<import('./work-pool.js').WorkLimits>;
  /** Called after each validate or backtest run, with how it ended (metrics). */
  onWork?: (kind: import('./work-pool.js').WorkKind, outcome: import('./work-pool.js').WorkOutcome, seconds: number) => void;
  /** Structured logger (pino); default silent. */
  logger?: import('pino').Logger;
}

export interface IngestAnswer {
  accepted: number;
  late: number;
  rejected: { index: number; error: string }[];
}

export interface IngestOptions {
  /** A repeated key gets the first answer and is not applied again (kept `idempotencyTtlMs`). */
  idempotencyKey?: string;
  /** The MQTT topic the events came in on. */
  topic?: string;
  /**
   * Apply without looking the key up, but record the answer under it (a fresh MQTT message
   * whose packet id may repeat an older one's; only its redeliveries must be dropped).
   */
  recordOnly?: boolean;
  /**
   * Bytes of each event as sent (UTF-8 JSON), for the maximum event size; null, or a missing
   * entry, when not measured (an event is not larger than the body that held it).
   */
  sizes?: readonly number[] | null;
}

export type RuleOrigin = 'file' | 'api';

export interface RuleCounters {
  events: number;
  matches: number;
  timeouts: number;
  partialMatches: number;
  keys: number;
  droppedPartials: number;
  throttled: number;
}

export interface RuleInfo {
  id: string;
  version: number;
  origin: RuleOrigin;
  /** The file it was loaded from (origin 'file'), else null. */
  file: string | null;
  /**
   * 'running'; 'error': its file's new text does not compile (the old version keeps running);
   * 'refused': a file rule named like an API rule, not loaded (the API rule keeps running).
   */
  status: 'running' | 'error' | 'refused';
  /** The last load error of a file rule whose new text did not compile (the old version keeps running). */
  errors: Diagnostic[];
  /** Compile warnings of the running version (e.g. a sink the service has no configuration for). */
  warnings: Diagnostic[];
  title: string | null;
  streams: string[];
  counters: RuleCounters;
  updatedAt: string;
}

export interface RuleDetail extends RuleInfo {
  /** The source text as submitted (with its stream declarations) or the rule's text in its file. */
  text: string;
  /** The compiled pattern: its steps and the links between them. */
  summary: {
    /** Every step in pattern order: the graph's steps, and the negated ones (guards in the graph). */
    steps: SummaryStep[];
    withinMs: number | null;
    skip: string;
    maxPartials: number;
  };
}

/** A step of GET /rules/:id `summary.steps`. */
export type SummaryStep =
  | { name: string; negated: false; min: number; max: number | null; loop: string; greedy: boolean; until: boolean; exits: { to: string; link: string; guards: number }[]; final: boolean }
  /** `then not` / `next not` (kind 'negation') or a trailing `then not … for D` (kind 'absence', `forMs` = D). */
  | { name: string; negated: true; kind: 'negation' | 'absence'; forMs: number | null };

/** Where a stream is declared: its own API object (PUT /streams/:name), a rules file, an API rule's text; 'implicit': only read by a rule. */
export type StreamOrigin = 'api' | 'file' | 'rule' | 'implicit';

export interface StreamDetail extends StreamInfo {
  origin: StreamOrigin;
  /** The files (origin 'file') or API rules (origin 'rule') whose texts declare it. */
  declaredIn: string[];
  /** The declaration text: as PUT (origin 'api'), or as written in its file or rule text; null for an implicit stream. */
  text: string | null;
  /** When the API stream was last PUT; null for other origins. */
  updatedAt: string | null;
}

export type PutStreamResult =
  | { ok: true; stream: StreamDetail; created: boolean }
  | { ok: false; errors: Diagnostic[] };

export type PutRuleResult =
  | { ok: true; rule: RuleDetail; created: boolean; keptPartialMatches: boolean; droppedPartialMatches: number; warnings: Diagnostic[] }
  /** 422: it compiles but one of its `test` blocks fails (`errors` are the failing expectations). */
  | { ok: false; status: 400 | 409 | 422; errors: Diagnostic[] };

export interface StreamInfo {
  name: string;
  declared: boolean;
  watermark: number | null;
  maxTime: number | null;
  lagMs: number | null;
  accepted: number;
  late: number;
  rejected: number;
  /** Of the rejected: over the maximum event size / too far ahead of the wall clock. */
  tooLarge: number;
  tooFarAhead: number;
  /** The stream's limits in force (its own clauses, else the service settings). */
  maxEventBytes: number;
  maxLeadMs: number | null;
  rules: string[];
  sources: string[];
}

export interface LateEntry {
  seq: number;
  stream: string;
  time: number;
  arrivalTime: string;
  event: Json;
  /** Size of the entry as JSON, for the per-stream byte bound (absent in entries stored before it). */
  bytes?: number;
}

/**
 * `waiting`: the sink is not configured (no VIGIL_SMTP_URL / VIGIL_MQTT_URL); the delivery is
 * kept, and resumed by a start with the sink configured (until the maximum age).
 */
export type DeliveryStateName = 'pending' | 'delivered' | 'retrying' | 'waiting' | 'failed';

/** A delivery not final yet: it still counts in the backlog. */
export function unfinishedState(state: DeliveryStateName): boolean {
  return state === 'pending' || state === 'retrying' || state === 'waiting';
}

export interface DeliveryState {
  sink: string;
  state: DeliveryStateName;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
  /** When the delivery was last queued (a retry asked for through the API); absent: the alert's raisedAt. Its age counts from here. */
  queuedAt?: number;
}

export interface OutboxEntry {
  /** Outbox order (increasing). */
  seq: number;
  alert: AlertRecord;
  /** Per sink name (`0:webhook`, `1:email`, ...): what to deliver. Secrets included: never print these. */
  deliveries: { [name: string]: Delivery };
  delivery: { [name: string]: DeliveryState };
  /** Wall clock when the alert was raised (ms), for delivery latency. */
  raisedAt: number;
  /** Size of the entry as JSON when it was written, for the outbox's byte bound (absent in entries stored before it). */
  bytes?: number;
}

export interface AlertQuery {
  rule?: string;
  key?: string;
  /** ISO time or epoch ms: only alerts raised at or after it. */
  since?: number;
  limit?: number;
  /** From a previous page's `next`. */
  cursor?: string;
}

export interface BacktestInput {
  /** A rule text to run (with its stream declarations), or null to run the stored rule `id`. */
  text: string | null;
  id: string | null;
  /** NDJSON events. */
  events: string;
  stream?: string;
}

export interface BacktestResult {
  records: OutputRecord[];
  errors: string[];
  diagnostics: Diagnostic[];
}

export class ServiceError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    /** More about the error, merged into the answer's `error` object (e.g. which work limit). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
