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
  /** Wall-clock limit for the tests of one hot load (PUT /rules/:id, rules-directory edit), ms; default 5000. */
  testTimeLimitMs?: number;
  /** Most events one rule test may give; default 10,000. */
  testMaxEvents?: number;
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
    steps: { name: string; min: number; max: number | null; loop: string; greedy: boolean; until: boolean; exits: { to: string; link: string; guards: number }[]; final: boolean }[];
    withinMs: number | null;
    skip: string;
    maxPartials: number;
  };
}

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
  rules: string[];
  sources: string[];
}

export interface LateEntry {
  seq: number;
  stream: string;
  time: number;
  arrivalTime: string;
  event: Json;
}

export type DeliveryStateName = 'pending' | 'delivered' | 'retrying' | 'failed';

export interface DeliveryState {
  sink: string;
  state: DeliveryStateName;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
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
