// Renders a compiled alert's sinks into the deliveries of one alert record (templates such as
// the MQTT topic and the email subject are rendered with the match's scope). An alert with no
// `to` goes to the log sink only (language §4). A `to alertmanager` clause with several URLs
// gives one delivery per URL.

import type { AlertRecord, Delivery } from '../core/alert.js';
import type { EvalScope } from '../core/event.js';
import type { CompiledAlert } from '../compiler/rule.js';

export function renderDeliveries(record: AlertRecord, alert: CompiledAlert, scope: EvalScope): Delivery[] {
  if (alert.sinks.length === 0) return [{ kind: 'log' }];
  return alert.sinks.flatMap((s): Delivery | Delivery[] => {
    switch (s.kind) {
      case 'webhook':
        return { kind: 'webhook', url: s.url, headers: s.headers, secret: s.secret };
      case 'email':
        return { kind: 'email', to: s.to, subject: s.subject ? s.subject(scope) : `[${record.severity}] ${record.rule}: ${record.message}` };
      case 'mqtt':
        return { kind: 'mqtt', topic: s.topic(scope), qos: s.qos, retain: s.retain };
      case 'alertmanager':
        // Each Alertmanager of an HA pair is its own delivery: its own retries and state.
        return s.urls.map((url): Delivery => ({ kind: 'alertmanager', url }));
      case 'log':
        return { kind: 'log' };
    }
  });
}

/** A stable name for one sink of an alert, used as the key of its delivery state. */
export function deliveryName(d: Delivery, index: number): string {
  switch (d.kind) {
    case 'webhook':
      return `${index}:webhook`;
    case 'email':
      return `${index}:email`;
    case 'mqtt':
      return `${index}:mqtt`;
    case 'alertmanager':
      return `${index}:alertmanager`;
    case 'log':
      return `${index}:log`;
  }
}
