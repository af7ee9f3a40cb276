// The alert record (language §9): what every match, and every timeout of a rule with an
// `on timeout` clause, produces. This shape is a contract: `vigil run` prints it, the
// outbox stores it, sinks deliver it.

import type { Json } from './event.js';

export interface AlertRecord {
  /** Deterministic: the same rule version matching the same events gives the same id. */
  id: string;
  kind: 'match' | 'timeout';
  rule: string;
  version: number;
  /** The key value of the match (`null` for a rule with no key). */
  key: Json;
  severity: string;
  message: string;
  /** Event time of the match, ISO-8601 (UTC, milliseconds). */
  time: string;
  /** Wall clock when the engine produced it, ISO-8601. */
  detectedAt: string;
  /** Step name → the events bound to it, exactly as they arrived, in the order bound. */
  events: { [step: string]: Json[] };
}

/** A late event on the late side output, as `vigil run` prints it. */
export interface LateRecord {
  kind: 'late';
  stream: string;
  event: Json;
}

/** A sink target after compilation: settings resolved except templates, which render per alert. */
export type SinkTarget =
  | {
      kind: 'webhook';
      url: string;
      headers: { name: string; value: string }[];
      /** The HMAC secret, resolved from `env("NAME")` or given inline; never logged. */
      secret: string | null;
    }
  | { kind: 'email'; to: string[]; subject: string | null }
  | { kind: 'mqtt'; topic: string; qos: 0 | 1 | 2; retain: boolean }
  | { kind: 'alertmanager'; urls: string[] }
  | { kind: 'log' };

/** A sink with its templates rendered for one alert: what a sink implementation receives. */
export type Delivery =
  | { kind: 'webhook'; url: string; headers: { name: string; value: string }[]; secret: string | null }
  | { kind: 'email'; to: string[]; subject: string }
  | { kind: 'mqtt'; topic: string; qos: 0 | 1 | 2; retain: boolean }
  /** One Alertmanager of a `to alertmanager` clause: each URL of the clause is a delivery of its own. */
  | { kind: 'alertmanager'; url: string }
  | { kind: 'log' };
