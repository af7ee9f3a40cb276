// The durable dispatcher (service.md §5): delivers the alerts of the outbox to their sinks,
// with retries, and records every attempt's result in the outbox (`GET /alerts` shows it).
//
// Durability comes from the core, not from here: an alert enters the outbox in the same commit
// as the state change that raised it, with every sink `pending`; this module only moves a
// sink's state forward (`retrying` → `delivered` | `failed`) through `core.updateDelivery`,
// which the next commit writes. After a restart `start()` picks up every delivery still
// `pending`/`retrying`/`waiting` (`core.unfinishedDeliveries()`), honouring the stored
// `nextAttemptAt`.
//
// Outages: retries go on with capped backoff (minutes) until the policy's maximum age (24 h by
// default, counted from when the delivery was queued), so a receiver down for an hour gets
// every alert once it is back; a delivery is `failed` only past that age, on a permanent error
// (a 4xx other than 408/429, a 5xx SMTP reply: the sinks classify), or when the core gives it
// up at a bound (the outbox full of undelivered alerts). A delivery to a sink kind that is not
// configured (no VIGIL_SMTP_URL / VIGIL_MQTT_URL) is not attempted: it is `waiting`, and a
// start with the sink configured delivers it. Failed deliveries can be queued again
// (`core.retryDeliveries`, POST /alerts/:id/retry and POST /admin/sinks/:sink/retry).
// So delivery is at least once: an attempt that succeeded just before a crash, whose state
// was not yet committed, is sent again — with the same alert id (Idempotency-Key, Message-ID,
// the JSON `id`), so receivers drop the duplicate.
//
// Isolation: one queue per target — kind plus target (a webhook URL, an email recipient list,
// the MQTT broker, the log) — each with a small bound on attempts in flight. A dead webhook
// fills its own queue and its own retry timers, never another's; waiting for a retry holds no
// slot (a timer puts the job back when due); ingest never waits for delivery at all.
//
// State is per sink name (`0:webhook`, `1:email`, ...), so a sink that delivered is never sent
// the same alert again because another sink of that alert is still retrying.
//
// Must not: log a delivery's settings (webhook secrets, headers): log lines name the alert,
// the sink name and kind, and the sink's own error text (the sinks redact it already).

import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { AlertRecord, Delivery } from '../core/alert.js';
import type { DurableEngine } from '../engine/durable-engine.js';
import type { DeliveryState, OutboxEntry } from '../engine/types.js';
import type { SinkRegistry } from '../sinks/registry.js';
import { backoffDelay, defaultRetryPolicy, deliverWithTimeout, type RetryPolicy } from '../sinks/retry.js';
import type { DeliveryOutcome, SinkKind } from '../sinks/sink.js';

/** The outcome of one attempt, as metrics count it (vigil_deliveries_total{outcome}). */
export type DeliveryMetricOutcome = 'delivered' | 'retried' | 'failed';

export interface DispatcherOptions {
  /** Retries, backoff and the per-attempt timeout; default `defaultRetryPolicy`. */
  policy?: RetryPolicy;
  /** A policy per sink kind, overriding `policy` (e.g. a longer timeout for email). */
  policies?: Partial<Record<SinkKind, RetryPolicy>>;
  /** Attempts in flight per queue (per target); default 4. */
  concurrency?: number;
  /** Called after every attempt; `latencySeconds` (alert raised → delivered) only on success. */
  onDelivery?(sink: SinkKind, outcome: DeliveryMetricOutcome, latencySeconds?: number): void;
  /** Wall clock in ms; default Date.now. */
  now?: () => number;
  /** Jitter source in [0, 1); default Math.random. */
  random?: () => number;
  /** Default: the core's logger. */
  logger?: Logger;
}

/** One sink of one alert, while the dispatcher owns it. */
interface Job {
  id: string;
  seq: number;
  name: string;
  alert: AlertRecord;
  delivery: Delivery;
  raisedAt: number;
  /** Attempts made so far (stored ones included). */
  attempts: number;
  /** When the delivery was queued (its age counts from here). */
  since: number;
  lastError: string | null;
  /** The retry at the maximum age: attempted even though the age is reached. */
  lastChance: boolean;
  /** Given up by the core meanwhile: skipped when its turn comes. */
  cancelled: boolean;
  /** The stored state is `waiting` already. */
  waiting: boolean;
  /** In its queue's `ready` list. */
  queued: boolean;
  queue: Queue;
  timer: NodeJS.Timeout | null;
}

interface Queue {
  key: string;
  ready: Job[];
  /** Index of the next job in `ready` (a cheap FIFO without shifting). */
  head: number;
  inFlight: number;
  /** Jobs in `ready` given up by the core meanwhile (compacted away when they pile up). */
  cancelled: number;
}

/** What the dispatcher needs of the core (DurableEngine satisfies it). */
export type DispatchCore = Pick<
  DurableEngine,
  'onCommittedAlerts' | 'unfinishedDeliveries' | 'updateDelivery' | 'logger' | 'onDeliveriesGivenUp' | 'onDeliveriesRequeued' | 'countGivenUp'
>;

/** Longest single timer (setTimeout's limit is 2^31 − 1 ms); a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function durationText(ms: number): string {
  if (ms >= 3600_000 && ms % 3600_000 === 0) return `${ms / 3600_000} h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

/** The queue of a delivery: its kind and target. Webhook URLs keep only origin and path (a query may carry a token, and the same endpoint is the same endpoint). */
export function queueKeyOf(d: Delivery): string {
  switch (d.kind) {
    case 'webhook': {
      try {
        const u = new URL(d.url);
        return `webhook ${u.origin}${u.pathname}`;
      } catch {
        return `webhook ${d.url}`;
      }
    }
    case 'alertmanager': {
      try {
        const u = new URL(d.url);
        return `alertmanager ${u.origin}${u.pathname}`;
      } catch {
        return `alertmanager ${d.url}`;
      }
    }
    case 'email':
      return `email ${[...d.to].sort().join(',')}`;
    case 'mqtt':
      return 'mqtt';
    case 'log':
      return 'log';
  }
}

export class Dispatcher {
  private readonly core: DispatchCore;
  private readonly registry: SinkRegistry;
  private readonly policy: RetryPolicy;
  private readonly policies: Partial<Record<SinkKind, RetryPolicy>>;
  private readonly concurrency: number;
  private readonly onDelivery: DispatcherOptions['onDelivery'];
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly logger: Logger;

  private readonly queues = new Map<string, Queue>();
  /** Every job the dispatcher owns (queued, in flight or waiting for its retry), by `seq name`. */
  private readonly jobs = new Map<string, Job>();
  private readonly inFlight = new Set<Promise<void>>();
  private abort = new AbortController();
  private running = false;
  private subscribed = false;
  /** Sink kinds already reported as not configured (one log line per kind and start). */
  private readonly warnedMissing = new Set<string>();

  constructor(core: DispatchCore, registry: SinkRegistry, options: DispatcherOptions = {}) {
    this.core = core;
    this.registry = registry;
    this.policy = options.policy ?? defaultRetryPolicy;
    this.policies = options.policies ?? {};
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.onDelivery = options.onDelivery;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? core.logger;
  }

  /** Subscribes to newly committed alerts and resumes every unfinished delivery of the outbox. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    // Every attempt in flight listens on this one signal (more than Node's default 10).
    setMaxListeners(0, this.abort.signal);
    // The core has no way to unsubscribe: subscribe once, and ignore alerts while stopped
    // (they stay `pending` in the outbox, and the next start() resumes them).
    if (!this.subscribed) {
      this.subscribed = true;
      this.core.onCommittedAlerts((entries) => {
        if (this.running) for (const e of entries) this.add(e);
      });
      this.core.onDeliveriesRequeued((entries) => {
        if (this.running) for (const e of entries) this.add(e);
      });
      this.core.onDeliveriesGivenUp((dropped) => {
        for (const { seq, name } of dropped) {
          const job = this.jobs.get(`${seq} ${name}`);
          if (!job) continue;
          job.cancelled = true;
          if (job.timer) clearTimeout(job.timer);
          job.timer = null;
          this.jobs.delete(job.id);
          if (job.queued) this.dropCancelled(job.queue);
        }
      });
    }
    this.warnedMissing.clear();
    let resumed = 0;
    for (const e of this.core.unfinishedDeliveries()) resumed += this.add(e);
    if (resumed > 0) this.logger.info({ deliveries: resumed }, 'resuming unfinished alert deliveries');
  }

  /**
   * Stops: clears retry timers, aborts attempts in flight and waits for them to settle.
   * Their states are left as they were (pending/retrying), for the next start.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort(new Error('dispatcher stopped'));
    for (const job of this.jobs.values()) if (job.timer) clearTimeout(job.timer);
    this.jobs.clear();
    this.queues.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Deliveries owned right now, per queue: ready, in flight, waiting for a retry. For tests and diagnostics. */
  stats(): { queue: string; ready: number; inFlight: number }[] {
    return [...this.queues.values()].map((q) => ({ queue: q.key, ready: q.ready.length - q.head, inFlight: q.inFlight }));
  }

  /** Takes over the unfinished deliveries of one outbox entry; returns how many. */
  private add(entry: OutboxEntry): number {
    let n = 0;
    for (const [name, delivery] of Object.entries(entry.deliveries)) {
      const state = entry.delivery[name];
      if (state && state.state !== 'pending' && state.state !== 'retrying' && state.state !== 'waiting') continue;
      const id = `${entry.seq} ${name}`;
      if (this.jobs.has(id)) continue;
      const key = queueKeyOf(delivery);
      let queue = this.queues.get(key);
      if (!queue) this.queues.set(key, (queue = { key, ready: [], head: 0, inFlight: 0, cancelled: 0 }));
      const job: Job = {
        id,
        seq: entry.seq,
        name,
        alert: entry.alert,
        delivery,
        raisedAt: entry.raisedAt,
        attempts: state?.attempts ?? 0,
        since: state?.queuedAt ?? entry.raisedAt,
        lastError: state?.lastError ?? null,
        lastChance: false,
        cancelled: false,
        waiting: state?.state === 'waiting',
        queued: false,
        queue,
        timer: null,
      };
      this.jobs.set(id, job);
      n++;
      const wait = state?.state === 'retrying' && state.nextAttemptAt !== null ? state.nextAttemptAt - this.now() : 0;
      if (wait > 0) this.later(job, wait);
      else this.enqueue(job);
    }
    return n;
  }

  private later(job: Job, ms: number): void {
    // Unref'd: a pending retry must not keep a stopping process alive (the outbox has it).
    const step = Math.min(ms, MAX_TIMER_MS);
    job.timer = setTimeout(() => {
      job.timer = null;
      if (!this.running || job.cancelled) return;
      if (step < ms) this.later(job, ms - step);
      else this.enqueue(job);
    }, step);
    job.timer.unref();
  }

  private enqueue(job: Job): void {
    job.queued = true;
    job.queue.ready.push(job);
    this.pump(job.queue);
  }

  /**
   * Counts a cancelled job left in a queue's ready list; once they are more than half of it,
   * the list is compacted, so a hanging sink whose backlog the core keeps giving up does not
   * grow the list without bound.
   */
  private dropCancelled(q: Queue): void {
    q.cancelled++;
    const waiting = q.ready.length - q.head;
    if (q.cancelled < 1024 || q.cancelled * 2 < waiting) return;
    q.ready = q.ready.slice(q.head).filter((j) => !j.cancelled);
    q.head = 0;
    q.cancelled = 0;
  }

  private policyOf(job: Job): RetryPolicy {
    return this.policies[job.delivery.kind] ?? this.policy;
  }

  /**
   * Before a job's turn: given up by the core, past its maximum age (failed without another
   * attempt: a dead sink's backlog expires even when the queue never reaches it), or its sink
   * not configured (waiting). False when the job is not to be attempted now.
   */
  private ready(job: Job): boolean {
    if (job.cancelled) return false;
    const maxAge = this.policyOf(job).maxAgeMs ?? Infinity;
    const now = this.now();
    if (!job.lastChance && now - job.since >= maxAge) {
      this.expire(job, maxAge);
      return false;
    }
    const missing = this.registry.missingSetting(job.delivery.kind);
    if (missing !== null) {
      const error = `${job.delivery.kind} sink not configured: set ${missing}; the delivery waits for a start with it set`;
      if (!this.warnedMissing.has(job.delivery.kind)) {
        this.warnedMissing.add(job.delivery.kind);
        this.logger.warn({ sink: job.delivery.kind, missing }, `${job.delivery.kind} sink not configured: its deliveries wait (set ${missing} and restart)`);
      }
      if (!job.waiting) {
        job.waiting = true;
        job.lastError = error;
        this.record(job, { sink: job.delivery.kind, state: 'waiting', attempts: job.attempts, lastError: error, nextAttemptAt: null, deliveredAt: null, ...(job.since !== job.raisedAt ? { queuedAt: job.since } : {}) });
      }
      // Wait for the maximum age; a start with the sink configured delivers it.
      if (Number.isFinite(maxAge)) this.later(job, Math.max(0, job.since + maxAge - now));
      return false;
    }
    return true;
  }

  /** Fails a job that reached its maximum age. */
  private expire(job: Job, maxAge: number): void {
    const kind = job.delivery.kind;
    const error = `given up after ${job.attempts} attempt(s) over ${durationText(maxAge)} (the maximum age)${job.lastError ? `; last error: ${job.lastError}` : ''}`;
    this.record(job, { sink: kind, state: 'failed', attempts: job.attempts, lastError: error, nextAttemptAt: null, deliveredAt: null, ...(job.since !== job.raisedAt ? { queuedAt: job.since } : {}) });
    this.jobs.delete(job.id);
    this.core.countGivenUp(kind, 'max_age');
    this.onDelivery?.(kind, 'failed');
    this.logger.error({ alert: job.alert.id, rule: job.alert.rule, sink: job.name, kind, attempts: job.attempts, error }, 'alert delivery failed: maximum age reached');
  }

  private pump(q: Queue): void {
    while (this.running && q.inFlight < this.concurrency && q.head < q.ready.length) {
      const job = q.ready[q.head++]!;
      job.queued = false;
      if (q.head > 1024 && q.head * 2 > q.ready.length) {
        q.ready = q.ready.slice(q.head);
        q.head = 0;
      }
      if (job.cancelled) {
        q.cancelled = Math.max(0, q.cancelled - 1);
        continue;
      }
      if (!this.ready(job)) continue;
      q.inFlight++;
      const p = this.attempt(job).finally(() => {
        this.inFlight.delete(p);
        q.inFlight--;
        this.pump(q);
      });
      this.inFlight.add(p);
    }
  }

  private async attempt(job: Job): Promise<void> {
    const policy = this.policyOf(job);
    const signal = this.abort.signal;
    let outcome: DeliveryOutcome;
    try {
      const sink = this.registry.sinkFor(job.delivery.kind);
      outcome = await deliverWithTimeout(sink, job.alert, job.delivery, policy.timeoutMs, signal);
    } catch (err) {
      // sinkFor or a broken sink; deliverWithTimeout itself never throws.
      outcome = { ok: false, retryable: true, error: err instanceof Error ? err.message : String(err) };
    }
    // Stopped meanwhile: the attempt was aborted by us, not failed by the receiver; its
    // state stays as stored and the next start() tries again.
    if (signal.aborted || !this.running) return;

    const now = this.now();
    const attempts = job.attempts + 1;
    job.attempts = attempts;
    const kind = job.delivery.kind;
    const base = { sink: kind, attempts, ...(job.since !== job.raisedAt ? { queuedAt: job.since } : {}) };
    const ctx = { alert: job.alert.id, rule: job.alert.rule, sink: job.name, kind, attempt: attempts };
    if (outcome.ok) {
      this.record(job, { ...base, state: 'delivered', lastError: null, nextAttemptAt: null, deliveredAt: now });
      this.jobs.delete(job.id);
      this.onDelivery?.(kind, 'delivered', Math.max(0, now - job.raisedAt) / 1000);
      return;
    }
    // Given up by the core while in flight: its failed state stands.
    if (job.cancelled) return;
    job.lastError = outcome.error;
    const maxAge = policy.maxAgeMs ?? Infinity;
    const ageLeft = job.since + maxAge - now;
    if (outcome.retryable && attempts < Math.max(1, policy.maxAttempts) && ageLeft > 0) {
      // The last retry comes at the maximum age, not after it.
      const backoff = backoffDelay(policy, attempts, this.random, outcome.retryAfterMs);
      const delay = Math.min(backoff, ageLeft);
      job.lastChance = backoff >= ageLeft;
      this.record(job, { ...base, state: 'retrying', lastError: outcome.error, nextAttemptAt: now + delay, deliveredAt: null });
      this.onDelivery?.(kind, 'retried');
      // Retries last up to a day: log attempts 1, 2, 4, 8, … at warn (about a dozen lines per
      // delivery and day), the others at debug, so a receiver down for hours does not flood the log.
      const loud = (attempts & (attempts - 1)) === 0;
      this.logger[loud ? 'warn' : 'debug']({ ...ctx, error: outcome.error, retryInMs: delay }, 'alert delivery failed; will retry');
      this.later(job, delay);
      return;
    }
    if (outcome.retryable && ageLeft <= 0) {
      this.expire(job, maxAge);
      return;
    }
    this.record(job, { ...base, state: 'failed', lastError: outcome.error, nextAttemptAt: null, deliveredAt: null });
    this.jobs.delete(job.id);
    this.onDelivery?.(kind, 'failed');
    this.logger.error(
      { ...ctx, error: outcome.error, retryable: outcome.retryable },
      outcome.retryable ? 'alert delivery failed: no attempts left' : 'alert delivery failed: not retryable',
    );
  }

  private record(job: Job, state: DeliveryState): void {
    try {
      this.core.updateDelivery(job.seq, job.name, state);
    } catch (err) {
      this.logger.error({ alert: job.alert.id, sink: job.name, error: (err as Error).message }, 'cannot record a delivery state');
    }
  }
}
