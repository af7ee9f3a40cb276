// The MQTT sink (language §4 `to mqtt "TOPIC TEMPLATE" [qos 0|1|2] [retain]`, service §3
// "Action"): publishes the alert JSON (which carries `id`, so subscribers can drop
// duplicates) to the rendered topic with the given QoS and retain flag.
//
// The sink does not own its connection: the service shares one mqtt.js client between
// ingest, rejected-event publishing and this sink, so `close()` leaves the client alone.
//
// Must not: queue silently. mqtt.js buffers publishes while offline and sends them after a
// reconnect; an alert parked in that buffer would look "in progress" forever and vanish with
// the process. So a client that is not connected fails the attempt (retryable) and the
// retry stage, which is durable, owns the alert. Must not retry either.
//
// Note on timeouts: an aborted QoS 1/2 publish may already sit in mqtt.js's outgoing store
// and still reach the broker; that is a duplicate, which at-least-once allows.

import type { MqttClient } from 'mqtt';
import type { AlertRecord, Delivery } from '../../core/alert.js';
import {
  abortText,
  delivered,
  errorText,
  permanent,
  retryable,
  wrongKind,
  type DeliveryOutcome,
  type Sink,
} from '../sink.js';

/**
 * MQTT 5 reason codes in a PUBACK/PUBREC that retrying the same publish would meet again
 * (MQTT 5.0 §3.4.2.1): not authorized, topic name invalid, packet too large, payload format
 * invalid. Others (quota exceeded, unspecified, implementation specific) may pass later.
 */
const PERMANENT_REASON_CODES = new Set([0x87, 0x90, 0x95, 0x99]);

/** Null when `topic` is a valid publish topic, else why not. */
export function topicProblem(topic: string): string | null {
  if (topic.length === 0) return 'empty topic';
  if (/[+#]/.test(topic)) return 'wildcards (+, #) are not allowed in a publish topic';
  if (topic.includes('\u0000')) return 'NUL in topic';
  if (Buffer.byteLength(topic, 'utf8') > 65535) return 'topic longer than 65535 bytes';
  return null;
}

export class MqttSink implements Sink {
  readonly kind = 'mqtt' as const;
  readonly #client: MqttClient;
  #closed = false;

  /** `client` is the service's shared connection; the sink never ends it. */
  constructor(client: MqttClient) {
    this.#client = client;
  }

  async deliver(alert: AlertRecord, delivery: Delivery, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (delivery.kind !== 'mqtt') return wrongKind(this.kind, delivery);
    if (this.#closed) return retryable('mqtt sink closed');
    if (signal.aborted) return retryable(abortText(signal));
    const problem = topicProblem(delivery.topic);
    if (problem !== null) return permanent(`mqtt topic ${JSON.stringify(delivery.topic)}: ${problem}`);
    if (!this.#client.connected || this.#client.disconnecting) {
      return retryable('mqtt client not connected');
    }

    const payload = JSON.stringify(alert);
    return new Promise<DeliveryOutcome>((resolve) => {
      let settled = false;
      const settle = (outcome: DeliveryOutcome) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const onAbort = () => settle(retryable(`mqtt publish to ${delivery.topic}: ${abortText(signal)}`));
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        // The callback fires when the socket took a QoS 0 packet, on PUBACK for QoS 1 and
        // on PUBCOMP for QoS 2.
        this.#client.publish(delivery.topic, payload, { qos: delivery.qos, retain: delivery.retain }, (err) => {
          if (!err) return settle(delivered);
          const code = (err as { code?: unknown }).code;
          const text = `mqtt publish to ${delivery.topic}: ${errorText(err)}`;
          settle(typeof code === 'number' && PERMANENT_REASON_CODES.has(code) ? permanent(text) : retryable(text));
        });
      } catch (err) {
        settle(retryable(`mqtt publish to ${delivery.topic}: ${errorText(err)}`));
      }
    });
  }

  async close(): Promise<void> {
    // The connection belongs to the service; only stop accepting deliveries.
    this.#closed = true;
  }
}
