// The sink registry: builds, from the service settings, the one sink per kind that every
// delivery of that kind goes through (one webhook agent pool, one SMTP pool, the shared MQTT
// client, the service logger), and closes them together on shutdown.
//
// Sinks are built on first use, so a service with no email rule never opens an SMTP pool.
// A kind whose settings are missing (no `VIGIL_SMTP_URL`, no MQTT broker) is reported by
// `missingSetting`: the durable dispatcher does not attempt such deliveries, it keeps them
// `waiting` until a start with the sink configured (issue 8). `sinkFor` still hands out a sink
// for it that fails every delivery, not retryable, naming the missing setting (what
// `vigil run --deliver` reports). Use `missingSetting` at rule load to warn earlier.
//
// Must not: read the environment (the configuration module does that), or retry.

import { hostname } from 'node:os';
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { AlertRecord, Delivery } from '../core/alert.js';
import { AlertmanagerSink, type AlertmanagerSinkOptions } from './alertmanager/alertmanager-sink.js';
import { EmailSink } from './email/email-sink.js';
import { LogSink } from './log/log-sink.js';
import { MqttSink } from './mqtt/mqtt-sink.js';
import { permanent, type DeliveryOutcome, type Sink, type SinkKind } from './sink.js';
import { WebhookSink, type WebhookSinkOptions } from './webhook/webhook-sink.js';

export interface SinkSettings {
  /** The service logger: the log sink writes to it, the registry warns on it. */
  logger: Logger;
  /** `VIGIL_SMTP_URL`: smtp://user:pass@host:port, smtps://…, `?requireTLS=true` … */
  smtpUrl?: string | null;
  /** `VIGIL_SMTP_CA` (read), its path, `VIGIL_SMTP_REJECT_UNAUTHORIZED`. */
  smtpTls?: { ca?: Buffer | null; caPath?: string | null; rejectUnauthorized?: boolean };
  /** `VIGIL_MAIL_FROM`; default `vigil@<hostname>`. */
  mailFrom?: string | null;
  /** The service's shared MQTT connection (`VIGIL_MQTT_URL`), if any. */
  mqttClient?: MqttClient | null;
  webhook?: WebhookSinkOptions;
  /** The Alertmanager sink: the webhook's address policy, and the public URL for its links. */
  alertmanager?: AlertmanagerSinkOptions;
}

export class SinkRegistry {
  readonly #settings: SinkSettings;
  readonly #sinks = new Map<SinkKind, Sink>();
  #closed = false;

  constructor(settings: SinkSettings) {
    this.#settings = settings;
  }

  /** The setting a kind lacks, e.g. `VIGIL_SMTP_URL`, or null when it can deliver. */
  missingSetting(kind: SinkKind): string | null {
    if (kind === 'email' && !this.#settings.smtpUrl) return 'VIGIL_SMTP_URL';
    if (kind === 'mqtt' && !this.#settings.mqttClient) return 'VIGIL_MQTT_URL';
    return null;
  }

  /** The sink for a delivery kind, built on first use. */
  sinkFor(kind: SinkKind): Sink {
    let sink = this.#sinks.get(kind);
    if (!sink) {
      sink = this.#build(kind);
      // After close() nothing may open connections again: hand out a closed sink.
      if (this.#closed) void sink.close();
      else this.#sinks.set(kind, sink);
    }
    return sink;
  }

  /** Shorthand: the sink for `delivery.kind`. */
  sinkForDelivery(delivery: Delivery): Sink {
    return this.sinkFor(delivery.kind);
  }

  /** Closes every sink built so far; sinks built after this are closed at once. */
  async close(): Promise<void> {
    this.#closed = true;
    const sinks = [...this.#sinks.values()];
    this.#sinks.clear();
    await Promise.allSettled(sinks.map((s) => s.close()));
  }

  #build(kind: SinkKind): Sink {
    const s = this.#settings;
    const missing = this.missingSetting(kind);
    if (missing !== null) {
      s.logger.warn({ sink: kind, missing }, `${kind} sink not configured: set ${missing}`);
      return new UnconfiguredSink(kind, missing);
    }
    switch (kind) {
      case 'webhook':
        return new WebhookSink(s.webhook);
      case 'email':
        return new EmailSink({ url: s.smtpUrl as string, from: s.mailFrom || `vigil@${hostname()}`, tls: s.smtpTls });
      case 'mqtt':
        return new MqttSink(s.mqttClient as MqttClient);
      case 'alertmanager':
        return new AlertmanagerSink(s.alertmanager ?? s.webhook);
      case 'log':
        return new LogSink(s.logger);
    }
  }
}

export function createSinkRegistry(settings: SinkSettings): SinkRegistry {
  return new SinkRegistry(settings);
}

/** Stands in for a kind whose settings are missing: every delivery fails, not retryable. */
class UnconfiguredSink implements Sink {
  readonly kind: SinkKind;
  readonly #error: string;

  constructor(kind: SinkKind, missing: string) {
    this.kind = kind;
    this.#error = `${kind} sink not configured: set ${missing}`;
  }

  async deliver(_alert: AlertRecord, _delivery: Delivery, _signal: AbortSignal): Promise<DeliveryOutcome> {
    return permanent(this.#error);
  }

  async close(): Promise<void> {}
}
