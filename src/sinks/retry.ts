// The retry stage (service §5): a per-attempt timeout, exponential backoff with full jitter
// capped at minutes, a maximum age (default 24 h: a receiver down for an hour gets every alert
// once it is back, as Alertmanager keeps retrying), an optional bound on attempts, and the
// receiver's `Retry-After` hint.
//
// Three layers, smallest first, so that the durable dispatcher (outbox over LMDB, per-sink
// queues, states pending/retrying/delivered/failed) can reuse the first two and keep its own
// loop and clock:
//   - `backoffDelay`: pure arithmetic, the wait before the next attempt.
//   - `deliverWithTimeout`: one attempt, aborted after `timeoutMs`.
//   - `retryDelivery`: an in-memory loop for `vigil run --deliver` and tests.
//
// Must not: persist anything, retry a non-retryable outcome, loop without bound, or wait
// past `maxDelayMs` for any single pause. Sinks themselves never retry (see `sink.ts`).

import type { AlertRecord, Delivery } from '../core/alert.js';
import { abortText, errorText, retryable, type DeliveryOutcome, type Sink } from './sink.js';

export interface RetryPolicy {
  /** Attempts in all, the first included; at least 1; Infinity: bounded by `maxAgeMs` only. */
  maxAttempts: number;
  /** The ceiling of the first pause; it doubles per failed attempt. */
  baseDelayMs: number;
  /** No pause is longer than this, not even one asked for by `Retry-After`. */
  maxDelayMs: number;
  /** One attempt is aborted after this long and counts as a retryable failure. */
  timeoutMs: number;
  /**
   * How long a delivery keeps being retried, from the time it was queued (the alert raised, or
   * a retry asked for through the API); past it a retryable failure is final. Infinity or
   * absent: no limit.
   */
  maxAgeMs?: number;
}

/** The service's policy (`VIGIL_DELIVERY_MAX_BACKOFF_MS`, `VIGIL_DELIVERY_MAX_AGE_MS`). */
export const defaultRetryPolicy: RetryPolicy = Object.freeze({
  maxAttempts: Infinity,
  baseDelayMs: 500,
  maxDelayMs: 300_000,
  timeoutMs: 10_000,
  maxAgeMs: 24 * 3600_000,
});

/**
 * `vigil run --deliver`: a replay is a foreground command, so it gives up after 8 attempts
 * (about a minute) instead of waiting up to a day for a receiver.
 */
export const replayRetryPolicy: RetryPolicy = Object.freeze({
  maxAttempts: 8,
  baseDelayMs: 500,
  maxDelayMs: 60_000,
  timeoutMs: 10_000,
  maxAgeMs: Infinity,
});

/**
 * A policy from defaults and overrides (configuration), checked once at start-up so that
 * the loops below can trust it. Throws a RangeError naming the bad field.
 */
export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...defaultRetryPolicy, ...overrides };
  if ((!Number.isInteger(policy.maxAttempts) && policy.maxAttempts !== Infinity) || policy.maxAttempts < 1) {
    throw new RangeError(`retry policy: maxAttempts must be an integer >= 1 (or Infinity), got ${policy.maxAttempts}`);
  }
  if (policy.maxAgeMs !== undefined && (Number.isNaN(policy.maxAgeMs) || policy.maxAgeMs < 0)) {
    throw new RangeError(`retry policy: maxAgeMs must be a number >= 0 (or Infinity), got ${policy.maxAgeMs}`);
  }
  for (const field of ['baseDelayMs', 'maxDelayMs', 'timeoutMs'] as const) {
    const value = policy[field];
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`retry policy: ${field} must be a finite number >= 0, got ${value}`);
    }
  }
  if (policy.timeoutMs === 0) throw new RangeError('retry policy: timeoutMs must be > 0');
  return Object.freeze(policy);
}

/**
 * The pause after failed attempt number `attempt` (1 = the first attempt failed), "full
 * jitter": uniform in [0, min(maxDelayMs, baseDelayMs · 2^(attempt−1))]. Full jitter spreads
 * the retries of many alerts that failed together (a receiver back from an outage) instead
 * of sending them back in synchronized waves.
 *
 * A `retryAfterMs` hint from the receiver is a floor — we never come back sooner than asked —
 * but still capped at `maxDelayMs`, so a hostile or confused receiver cannot park an alert
 * for a day.
 *
 * Worked example, base 500 ms, cap 60 s: attempt 1 → [0, 500], 2 → [0, 1000],
 * 3 → [0, 2000], …, 8 → [0, 60000] (64000 capped); with Retry-After 5 s at attempt 1 → 5000.
 */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
  retryAfterMs?: number,
): number {
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  // 2 ** large is Infinity, which Math.min turns back into the cap: no overflow to guard.
  const ceiling = Math.max(0, Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1)));
  const r = Math.min(1, Math.max(0, random()));
  const jittered = Math.floor(r * ceiling);
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs > 0) {
    return Math.min(policy.maxDelayMs, Math.max(jittered, Math.ceil(retryAfterMs)));
  }
  return jittered;
}

/**
 * One attempt, aborted after `timeoutMs`: the sink sees its signal abort and the result is
 * the retryable failure `timeout after N ms`, even if a misbehaving sink ignores its signal
 * (we stop waiting for it; whatever it resolves later is dropped). A sink that throws,
 * breaking its contract, yields a retryable failure rather than an exception.
 *
 * `parent` (optional) aborts the attempt early, e.g. on service shutdown.
 */
export async function deliverWithTimeout(
  sink: Sink,
  alert: AlertRecord,
  delivery: Delivery,
  timeoutMs: number,
  parent?: AbortSignal,
): Promise<DeliveryOutcome> {
  const timeoutText = `timeout after ${timeoutMs} ms`;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onParentAbort: (() => void) | undefined;

  const stopped = new Promise<DeliveryOutcome>((resolve) => {
    timer = setTimeout(() => {
      const reason = new Error(timeoutText);
      reason.name = 'TimeoutError';
      controller.abort(reason);
      resolve(retryable(timeoutText));
    }, timeoutMs);
    if (parent) {
      onParentAbort = () => {
        controller.abort(parent.reason);
        resolve(retryable(abortText(parent)));
      };
      if (parent.aborted) onParentAbort();
      else parent.addEventListener('abort', onParentAbort, { once: true });
    }
  });

  const attempt = controller.signal.aborted
    ? stopped
    : sink.deliver(alert, delivery, controller.signal).then(
        (outcome) => outcome,
        (err: unknown): DeliveryOutcome => retryable(`${sink.kind} sink threw: ${errorText(err)}`),
      );

  try {
    return await Promise.race([attempt, stopped]);
  } finally {
    clearTimeout(timer);
    if (parent && onParentAbort) parent.removeEventListener('abort', onParentAbort);
  }
}

/** What `retryDelivery` reports after each attempt. */
export interface AttemptReport {
  /** 1-based. */
  attempt: number;
  outcome: DeliveryOutcome;
  durationMs: number;
  /** The pause before the next attempt, or null when this was the last one. */
  nextDelayMs: number | null;
}

export interface RetryResult {
  /** The last attempt's outcome: ok, or the failure that ended the loop. */
  outcome: DeliveryOutcome;
  attempts: number;
}

export interface RetryOptions {
  /** Stops the loop (and the running attempt) early, e.g. on shutdown. */
  signal?: AbortSignal;
  /** Jitter source, for deterministic tests. */
  random?: () => number;
}

/**
 * Delivers with retries, in memory: attempt, and on a retryable failure wait
 * `backoffDelay` and try again, until delivered, a non-retryable failure, `maxAttempts`
 * attempts, or `options.signal` aborts. Bounded by construction: at most `maxAttempts`
 * attempts of at most `timeoutMs` each, and `maxAttempts − 1` pauses of at most
 * `maxDelayMs`. Never throws.
 */
export async function retryDelivery(
  sink: Sink,
  alert: AlertRecord,
  delivery: Delivery,
  policy: RetryPolicy = defaultRetryPolicy,
  onAttempt?: (report: AttemptReport) => void,
  options: RetryOptions = {},
): Promise<RetryResult> {
  const maxAttempts = Math.max(1, Math.floor(policy.maxAttempts));
  const giveUpAt = Date.now() + (policy.maxAgeMs ?? Infinity);
  let outcome: DeliveryOutcome = retryable('not attempted');
  let attempts = 0;
  while (attempts < maxAttempts) {
    if (options.signal?.aborted) {
      if (attempts === 0) outcome = retryable(abortText(options.signal));
      break;
    }
    attempts++;
    const started = Date.now();
    outcome = await deliverWithTimeout(sink, alert, delivery, policy.timeoutMs, options.signal);
    const last = outcome.ok || !outcome.retryable || attempts >= maxAttempts || Date.now() >= giveUpAt;
    const nextDelayMs = last
      ? null
      : backoffDelay(policy, attempts, options.random, outcome.ok ? undefined : outcome.retryAfterMs);
    onAttempt?.({ attempt: attempts, outcome, durationMs: Date.now() - started, nextDelayMs });
    if (nextDelayMs === null) break;
    await sleep(nextDelayMs, options.signal);
  }
  return { outcome, attempts };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
