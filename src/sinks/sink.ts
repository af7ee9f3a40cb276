// The sink contract (service §5, language §4 "Sinks"): one delivery attempt of one alert to
// one target, and the classification of its failure.
//
// A sink delivers once. It does not retry, sleep, queue or remember: retrying is a separate
// stage (`retry.ts` here, the durable dispatcher over the outbox in production), the way
// Prometheus Alertmanager splits `Notifier.Notify` (returns `retry bool, err`) from its
// `RetryStage`. What a sink must do is say whether trying the same delivery again could
// succeed, so that a 400 or a 550 fails at once instead of burning every retry.
//
// A sink must not throw (every failure is an outcome), must stop promptly when its signal
// aborts, and must never put a secret (webhook secret, signature, SMTP password) in an
// error text: error texts are stored in the outbox and shown by `GET /alerts`.

import type { AlertRecord, Delivery } from '../core/alert.js';

export type SinkKind = Delivery['kind'];

export type DeliveryOutcome =
  | { ok: true }
  | {
      ok: false;
      /** True when the same delivery may succeed later (timeouts, 5xx, 429, SMTP 4xx, broker down). */
      retryable: boolean;
      /** One line for operators; never holds a secret. */
      error: string;
      /** The receiver's own hint (HTTP `Retry-After`), in milliseconds from now. */
      retryAfterMs?: number;
    };

export type DeliveryFailure = Extract<DeliveryOutcome, { ok: false }>;

export interface Sink {
  readonly kind: SinkKind;
  /**
   * Delivers one alert once. Never throws: every failure becomes an outcome. Must respect
   * `signal` (abort = timeout): when it aborts, the attempt ends and resolves promptly.
   */
  deliver(alert: AlertRecord, delivery: Delivery, signal: AbortSignal): Promise<DeliveryOutcome>;
  /** Releases connections the sink owns. Idempotent. Deliveries after close fail, retryable. */
  close(): Promise<void>;
}

export const delivered: DeliveryOutcome = Object.freeze({ ok: true });

/** A failure that the same delivery may overcome later. */
export function retryable(error: string, retryAfterMs?: number): DeliveryFailure {
  return retryAfterMs === undefined
    ? { ok: false, retryable: true, error }
    : { ok: false, retryable: true, error, retryAfterMs };
}

/** A failure that repeating the same delivery would meet again (bad request, refused recipient). */
export function permanent(error: string): DeliveryFailure {
  return { ok: false, retryable: false, error };
}

/** The failure of a sink given a delivery of another kind: a wiring bug, never worth retrying. */
export function wrongKind(sink: SinkKind, delivery: Delivery): DeliveryFailure {
  return permanent(`${sink} sink given a ${delivery.kind} delivery`);
}

/** The message of anything thrown, on one line. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/**
 * Replaces every occurrence of each secret in `text` with `[redacted]`. Secrets shorter than
 * four characters are skipped: redacting "a" would garble the text and hide nothing.
 */
export function redact(text: string, secrets: readonly (string | null | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
}

/**
 * `redact`, then cut to at most `max` characters without leaving the beginning of a secret
 * at the cut: redacting first and cutting second means a secret straddling the cut would
 * otherwise leak its first half.
 */
export function redactAndTruncate(text: string, max: number, secrets: readonly (string | null | undefined)[]): string {
  const redacted = redact(text, secrets);
  if (redacted.length <= max) return redacted;
  let out = redacted.slice(0, max);
  // Repeat until stable: cutting one secret's head may expose another's.
  for (let changed = true; changed; ) {
    changed = false;
    for (const secret of secrets) {
      if (!secret || secret.length < 4) continue;
      for (let k = Math.min(secret.length - 1, out.length); k >= 1; k--) {
        if (out.endsWith(secret.slice(0, k))) {
          out = out.slice(0, out.length - k);
          changed = true;
          break;
        }
      }
    }
  }
  return `${out}…`;
}

/** The reason of an aborted signal as error text ("aborted: timeout after 100 ms"). */
export function abortText(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason === undefined) return 'aborted';
  return `aborted: ${errorText(reason)}`;
}
