// The retry stage: backoff arithmetic (properties over many draws), one attempt with a
// timeout, and the bounded in-memory loop. The sinks here are tiny scripted `Sink`
// implementations — the loop is what is under test, not any transport.

import { describe, expect, it } from 'vitest';
import type { AlertRecord, Delivery } from '../../src/core/alert.js';
import {
  backoffDelay,
  defaultRetryPolicy,
  deliverWithTimeout,
  retryDelivery,
  retryPolicy,
  type AttemptReport,
  type RetryPolicy,
} from '../../src/sinks/retry.js';
import { permanent, retryable, type DeliveryOutcome, type Sink } from '../../src/sinks/sink.js';
import { sampleAlert } from '../helpers/alert-fixture.js';

const logDelivery: Delivery = { kind: 'log' };

/** A sink answering from a script, one entry per attempt; 'hang' waits for the abort. */
function scriptedSink(script: (attempt: number, signal: AbortSignal) => DeliveryOutcome | 'hang' | 'ignore-abort'): Sink & { calls: number } {
  const sink = {
    kind: 'log' as const,
    calls: 0,
    async deliver(_alert: AlertRecord, _delivery: Delivery, signal: AbortSignal): Promise<DeliveryOutcome> {
      sink.calls++;
      const step = script(sink.calls, signal);
      if (step === 'hang') {
        return new Promise((resolve) => signal.addEventListener('abort', () => resolve(retryable('aborted')), { once: true }));
      }
      if (step === 'ignore-abort') return new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 300));
      return step;
    },
    async close() {},
  };
  return sink;
}

const fast: RetryPolicy = { maxAttempts: 4, baseDelayMs: 2, maxDelayMs: 10, timeoutMs: 200 };

describe('backoffDelay', () => {
  const policy: RetryPolicy = { maxAttempts: 20, baseDelayMs: 100, maxDelayMs: 5000, timeoutMs: 1000 };

  it('has a ceiling that doubles per attempt and stops at maxDelayMs', () => {
    const top = () => 1; // the largest draw shows the ceiling
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(policy, a, top))).toEqual([100, 200, 400, 800, 1600, 3200, 5000]);
    expect(backoffDelay(policy, 60, top)).toBe(5000);
    expect(backoffDelay(policy, 10_000, top)).toBe(5000); // 2^9999 overflows to Infinity, still capped
  });

  it('draws full jitter within [0, ceiling] and uses the whole range', () => {
    let seed = 42;
    const lcg = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(5000, 100 * 2 ** (attempt - 1));
      const draws = Array.from({ length: 300 }, () => backoffDelay(policy, attempt, lcg));
      for (const d of draws) {
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(d)).toBe(true);
      }
      expect(Math.min(...draws)).toBeLessThan(ceiling * 0.2);
      expect(Math.max(...draws)).toBeGreaterThan(ceiling * 0.8);
    }
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
  });

  it('treats attempt < 1 and non-finite attempts as the first', () => {
    expect(backoffDelay(policy, 0, () => 1)).toBe(100);
    expect(backoffDelay(policy, -3, () => 1)).toBe(100);
    expect(backoffDelay(policy, Number.NaN, () => 1)).toBe(100);
  });

  it('waits at least Retry-After, capped at maxDelayMs', () => {
    expect(backoffDelay(policy, 1, () => 0, 2500)).toBe(2500);
    expect(backoffDelay(policy, 1, () => 0.5, 10)).toBe(50); // the jitter is larger than the hint
    expect(backoffDelay(policy, 1, () => 0, 3_600_000)).toBe(5000);
    expect(backoffDelay(policy, 1, () => 0, 0)).toBe(0);
    expect(backoffDelay(policy, 1, () => 0, Number.NaN)).toBe(0);
  });

  it('has sane defaults and validates configured policies', () => {
    // Retries outlast outages: no attempt bound, pauses capped at 5 min, given up after 24 h.
    expect(defaultRetryPolicy).toEqual({ maxAttempts: Infinity, baseDelayMs: 500, maxDelayMs: 300_000, timeoutMs: 10_000, maxAgeMs: 24 * 3600_000 });
    expect(retryPolicy({ maxAttempts: 3 }).maxAttempts).toBe(3);
    expect(() => retryPolicy({ maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => retryPolicy({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => retryPolicy({ maxDelayMs: -1 })).toThrow(/maxDelayMs/);
  });
});

describe('deliverWithTimeout', () => {
  const alert = sampleAlert();

  it('passes an outcome through', async () => {
    expect(await deliverWithTimeout(scriptedSink(() => ({ ok: true })), alert, logDelivery, 100)).toEqual({ ok: true });
    expect(await deliverWithTimeout(scriptedSink(() => permanent('no')), alert, logDelivery, 100)).toEqual(permanent('no'));
  });

  it('aborts a hanging attempt and reports a retryable timeout', async () => {
    let seen: AbortSignal | undefined;
    const sink = scriptedSink((_, signal) => ((seen = signal), 'hang'));
    const started = Date.now();
    const outcome = await deliverWithTimeout(sink, alert, logDelivery, 50);
    expect(outcome).toEqual({ ok: false, retryable: true, error: 'timeout after 50 ms' });
    expect(seen?.aborted).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops waiting for a sink that ignores its signal', async () => {
    const started = Date.now();
    const outcome = await deliverWithTimeout(scriptedSink(() => 'ignore-abort'), alert, logDelivery, 30);
    expect(outcome).toMatchObject({ ok: false, retryable: true, error: 'timeout after 30 ms' });
    // Bounded by the timeout, not by the sink (which would hang forever); generous for loaded CI.
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('turns a throwing sink into a retryable failure', async () => {
    const sink = scriptedSink(() => {
      throw new Error('boom');
    });
    expect(await deliverWithTimeout(sink, alert, logDelivery, 100)).toEqual({
      ok: false,
      retryable: true,
      error: 'log sink threw: boom',
    });
  });

  it('ends early when the parent signal aborts', async () => {
    const parent = new AbortController();
    setTimeout(() => parent.abort(new Error('shutdown')), 20);
    const outcome = await deliverWithTimeout(scriptedSink(() => 'hang'), alert, logDelivery, 5000, parent.signal);
    expect(outcome).toEqual({ ok: false, retryable: true, error: 'aborted: shutdown' });
  });
});

describe('retryDelivery', () => {
  const alert = sampleAlert();

  it('retries retryable failures until delivered, reporting each attempt', async () => {
    const sink = scriptedSink((n) => (n < 3 ? retryable(`fail ${n}`) : { ok: true }));
    const reports: AttemptReport[] = [];
    const result = await retryDelivery(sink, alert, logDelivery, fast, (r) => reports.push(r));
    expect(result).toEqual({ outcome: { ok: true }, attempts: 3 });
    expect(reports.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(reports.map((r) => r.outcome.ok)).toEqual([false, false, true]);
    expect(reports[2]!.nextDelayMs).toBeNull();
    for (const r of reports.slice(0, 2)) expect(r.nextDelayMs).toBeLessThanOrEqual(fast.maxDelayMs);
  });

  it('stops at once on a non-retryable failure', async () => {
    const sink = scriptedSink(() => permanent('400 bad request'));
    const result = await retryDelivery(sink, alert, logDelivery, fast);
    expect(result).toEqual({ outcome: permanent('400 bad request'), attempts: 1 });
    expect(sink.calls).toBe(1);
  });

  it('gives up after maxAttempts with the last failure', async () => {
    const sink = scriptedSink((n) => retryable(`fail ${n}`));
    const result = await retryDelivery(sink, alert, logDelivery, fast);
    expect(result).toEqual({ outcome: retryable('fail 4'), attempts: 4 });
    expect(sink.calls).toBe(4);
  });

  it('honours the Retry-After hint of a failure', async () => {
    const sink = scriptedSink((n) => (n === 1 ? retryable('429', 80) : { ok: true }));
    const reports: AttemptReport[] = [];
    const started = Date.now();
    const result = await retryDelivery(sink, alert, logDelivery, { ...fast, maxDelayMs: 1000 }, (r) => reports.push(r));
    expect(result.attempts).toBe(2);
    expect(reports[0]!.nextDelayMs).toBe(80);
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
  });

  it('stops when its signal aborts, between attempts too', async () => {
    const controller = new AbortController();
    const sink = scriptedSink(() => retryable('down'));
    setTimeout(() => controller.abort(new Error('shutdown')), 30);
    const result = await retryDelivery(sink, alert, logDelivery, { maxAttempts: 1000, baseDelayMs: 20, maxDelayMs: 20, timeoutMs: 100 }, undefined, {
      signal: controller.signal,
      random: () => 1,
    });
    expect(result.attempts).toBeLessThan(10);
    expect(result.outcome.ok).toBe(false);
  });
});
