// The log sink (language §4 `to log`; the only sink of a rule with no `to`): one structured
// pino line per alert, with the alert record under `alert` so that its fields (`time`, a
// user-chosen `message`) cannot collide with pino's own (`time`, `msg`, `level`).
//
// Level by severity: info → info, warning → warn, high and critical → error; a severity of
// the rule's own naming → warn (visible at the default level, not paging-loud).
//
// Always delivered: writing to the log cannot usefully be retried, and pino does not report
// per-line write failures. Must not: own or close the logger (the service's), throw.

import type { Logger } from 'pino';
import type { AlertRecord, Delivery } from '../../core/alert.js';
import { delivered, wrongKind, type DeliveryOutcome, type Sink } from '../sink.js';

export type AlertLogLevel = 'info' | 'warn' | 'error';

export function logLevelOf(severity: string): AlertLogLevel {
  switch (severity) {
    case 'info':
      return 'info';
    case 'warning':
      return 'warn';
    case 'high':
    case 'critical':
      return 'error';
    default:
      return 'warn';
  }
}

export class LogSink implements Sink {
  readonly kind = 'log' as const;
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async deliver(alert: AlertRecord, delivery: Delivery, _signal: AbortSignal): Promise<DeliveryOutcome> {
    if (delivery.kind !== 'log') return wrongKind(this.kind, delivery);
    try {
      this.#logger[logLevelOf(alert.severity)]({ sink: 'log', alert }, `alert ${alert.rule}: ${alert.message}`);
    } catch {
      // A broken destination must not turn into a retry storm of log lines; pino reports
      // its own destination errors on the stream.
    }
    return delivered;
  }

  async close(): Promise<void> {
    // The logger belongs to the service.
  }
}
