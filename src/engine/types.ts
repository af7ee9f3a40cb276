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
  /** Called when a commit fails (the state can no longer be made durable); the serve command exits. */
  onFatal?: (error: Error) => void;
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
  status: 'running' | 'error';
  /** The last load error of a file rule whose new text did not compile (the old version keeps running). */
  errors: Diagnostic[];
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
    steps: { name: string; min: number; max: number | null; loop: string; greedy: boolean; until: boolean; exits: { to: string; link: string; guards: number }[]; final: boolean }[];
    withinMs: number | null;
    skip: string;
    maxPartials: number;
  };
}

export type PutRuleResult =
  | { ok: true; rule: RuleDetail; created: boolean; keptPartialMatches: boolean; droppedPartialMatches: number; warnings: Diagnostic[] }
  | { ok: false; status: 400 | 409; errors: Diagnostic[] };

export interface StreamInfo {
  name: string;
  declared: boolean;
  watermark: number | null;
  maxTime: number | null;
  lagMs: number | null;
  accepted: number;
  late: number;
  rejected: number;
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
  ) {
    super(message);
  }
}
