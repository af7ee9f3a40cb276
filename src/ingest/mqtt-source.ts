// MQTT ingest (service.md §3, language §3 `source mqtt "filter"`): every topic filter of every
// stream is subscribed at QoS 1 on the shared connection; each message's JSON (one object, or
// an array of objects) is ingested into the stream(s) whose filters match its topic, and the
// message is acknowledged only after the core's commit that holds its effects (the PUBACK gate
// is in mqtt-connection.ts: this module's handler resolves after `core.ingest` resolves).
//
// Exactly-once effect over at-least-once delivery. The broker redelivers a message we had not
// acknowledged (we crashed, or the connection dropped before the PUBACK), with the same packet
// id and the DUP flag. The idempotency key of a message is
//   mqtt:<stream>:<packet id>:<sha1 of topic NUL payload>
// A DUP message is looked up (a repeat gets the earlier answer and is not applied again); so is
// a message whose packet id this process had left un-acknowledged on an earlier connection
// (brokers that forget the DUP flag, aedes 1.2 among them; see mqtt-connection.ts). After a
// crash only the DUP flag tells: with such a broker, a message committed just before the crash
// and not yet acknowledged would be applied again.
// A fresh message (DUP clear) is applied without the look-up but its answer is recorded under
// the key (`recordOnly`): packet ids are reused all the time, and an old answer under the same
// id (and, say, the same heartbeat payload) must not swallow a genuinely new message.
// A stream that declares `id FIELD` dedupes by event identity instead, DUP or not:
//   mqtt:<stream>:id:<value>
// (an event without an id value falls back to the packet key).
//
// Bad input never blocks the subscription: a payload that is not JSON, or JSON that is neither
// an object nor an array, and every event the stream rejects (schema, missing key or time) is
// counted, logged with its topic, published to `vigil/rejected/<stream>` as
// `{"topic","error","payload"}` (QoS 0) — and the message is acknowledged.
// Only a failure to make the effect durable leaves a message un-acknowledged (redelivered).
//
// Retained messages: a broker sends a topic's retained message again on every (re)subscribe;
// they are last-known values, not new events, so they are acknowledged and skipped unless
// `ingestRetained` is set (live messages reach existing subscribers with the flag clear).
//
// Subscriptions: `refresh()` (after any rule or stream change) subscribes and unsubscribes the
// difference. On a connect without a kept session the broker forgot them all: every filter is
// subscribed again. With a kept session only the difference is sent (re-subscribing would make
// the broker resend retained messages).

import { createHash } from 'node:crypto';
import type { IPublishPacket } from 'mqtt';
import type { Logger } from 'pino';
import { eventSizes } from '../core/event-size.js';
import { markLoneSurrogates } from '../core/lone-surrogates.js';
import type { DurableEngine } from '../engine/durable-engine.js';
import { ServiceError, type IngestAnswer } from '../engine/types.js';
import type { MqttConnection } from './mqtt-connection.js';

export type MqttOutcome = 'accepted' | 'late' | 'rejected' | 'duplicate';

export interface MqttSourceOptions {
  /** One message offered to a stream, by outcome (vigil_mqtt_messages_total). */
  onMessage?(stream: string, outcome: MqttOutcome): void;
  /** Default `vigil/rejected/`. */
  rejectedTopicPrefix?: string;
  /** Ingest retained messages too (default false, see the header). */
  ingestRetained?: boolean;
  /** Wall clock for arrival times; default Date.now. */
  now?: () => number;
  /** Default: the core's logger. */
  logger?: Logger;
}

/** What the source needs of the core (DurableEngine satisfies it). */
export type SourceCore = Pick<DurableEngine, 'ingest' | 'engine' | 'logger'> & Partial<Pick<DurableEngine, 'maxEventBytesOf'>>;

/** Payload bytes shown in a rejection message. */
const REJECTED_PAYLOAD_CHARS = 64 * 1024;

/**
 * MQTT topic filter matching (MQTT 3.1.1 §4.7): `+` is one level, a trailing `#` is any number
 * of levels (zero included: `a/#` matches `a`); filters that start with a wildcard do not
 * match topics starting with `$`; `$share/<group>/` is stripped.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter.startsWith('$share/')) {
    const rest = filter.indexOf('/', 7);
    if (rest < 0) return false;
    filter = filter.slice(rest + 1);
  }
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const part = f[i]!;
    if (part === '#') return i === f.length - 1;
    if (i >= t.length) return false;
    if (part !== '+' && part !== t[i]) return false;
  }
  return f.length === t.length;
}

export class MqttSource {
  private readonly core: SourceCore;
  private readonly connection: MqttConnection;
  private readonly onMessage: MqttSourceOptions['onMessage'];
  private readonly rejectedPrefix: string;
  private readonly ingestRetained: boolean;
  private readonly now: () => number;
  private readonly logger: Logger;
  /** Filters the broker confirmed on this session. */
  private readonly subscribed = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private running = false;
  private readonly onConnect = ({ sessionPresent }: { sessionPresent: boolean }) => {
    if (!sessionPresent) this.subscribed.clear();
    void this.refresh();
  };

  constructor(core: SourceCore, connection: MqttConnection, options: MqttSourceOptions = {}) {
    this.core = core;
    this.connection = connection;
    this.onMessage = options.onMessage;
    this.rejectedPrefix = options.rejectedTopicPrefix ?? 'vigil/rejected/';
    this.ingestRetained = options.ingestRetained ?? false;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? core.logger;
  }

  /** Takes the connection's messages and subscribes every stream's filters (now, or on connect). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.connection.setMessageHandler((topic, payload, packet, redelivery) => this.handle(topic, payload, packet, redelivery));
    this.connection.on('connect', this.onConnect);
    await this.refresh();
  }

  /**
   * Stops taking messages. Subscriptions stay on the broker (persistent session), so messages
   * keep queueing for the next start. Messages being committed still get their PUBACK.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.connection.off('connect', this.onConnect);
    this.connection.setMessageHandler(null);
    await this.chain;
  }

  /** Every filter of every stream right now. */
  filters(): string[] {
    const out = new Set<string>();
    for (const st of this.core.engine.streams.values()) for (const f of st.compiled.sources) out.add(f);
    return [...out].sort();
  }

  /** Filters the broker has confirmed. */
  subscriptions(): string[] {
    return [...this.subscribed].sort();
  }

  /** Re-reads the streams' filters and subscribes/unsubscribes the difference (serialized). */
  refresh(): Promise<void> {
    const next = this.chain.then(() => this.reconcile());
    this.chain = next.catch(() => {});
    return next;
  }

  private async reconcile(): Promise<void> {
    if (!this.running || !this.connection.connected) return; // done on the next connect
    const client = this.connection.client;
    const desired = new Set(this.filters());
    const add = [...desired].filter((f) => !this.subscribed.has(f));
    const remove = [...this.subscribed].filter((f) => !desired.has(f));
    try {
      if (add.length > 0) {
        const granted = await client.subscribeAsync(add, { qos: 1 });
        for (const g of granted) {
          if (g.qos === 128) this.logger.error({ filter: g.topic }, 'MQTT subscription refused by the broker');
          else this.subscribed.add(g.topic);
        }
        this.logger.info({ filters: add }, 'MQTT subscribed');
      }
      if (remove.length > 0) {
        await client.unsubscribeAsync(remove);
        for (const f of remove) this.subscribed.delete(f);
        this.logger.info({ filters: remove }, 'MQTT unsubscribed');
      }
    } catch (err) {
      // Connection lost mid-way: the next connect reconciles again.
      this.logger.warn({ error: (err as Error).message }, 'MQTT subscription change failed; retried on the next connect');
    }
  }

  /** The streams whose filters match `topic`, read live (rules may have changed since refresh). */
  streamsFor(topic: string): string[] {
    const out: string[] = [];
    for (const [name, st] of this.core.engine.streams) {
      if (st.compiled.sources.some((f) => topicMatches(f, topic))) out.push(name);
    }
    return out;
  }

  /** One message; resolves when every stream it feeds has committed it. Throws only when it must not be acknowledged. */
  private async handle(topic: string, payload: Buffer, packet: IPublishPacket, redelivery: boolean): Promise<void> {
    if (packet.retain && !this.ingestRetained) {
      this.logger.debug({ topic }, 'retained MQTT message skipped');
      return;
    }
    const streams = this.streamsFor(topic);
    if (streams.length === 0) {
      this.logger.debug({ topic }, 'MQTT message for no stream (filter removed?)');
      return;
    }
    const text = payload.toString('utf8');
    let events: unknown[];
    let kind: 'array' | 'object' = 'object';
    try {
      const parsed: unknown = JSON.parse(text);
      if (Array.isArray(parsed)) {
        events = parsed;
        kind = 'array';
      } else if (parsed !== null && typeof parsed === 'object') events = [parsed];
      else throw new Error(`payload is JSON ${parsed === null ? 'null' : typeof parsed}, not an object or an array of objects`);
    } catch (err) {
      const error = err instanceof SyntaxError ? `payload is not JSON: ${err.message}` : (err as Error).message;
      for (const stream of streams) this.reject(stream, topic, error, text);
      return;
    }
    if (events.length === 0) return;
    markLoneSurrogates(text, events);
    const digest = createHash('sha1').update(topic).update('\u0000').update(payload).digest('hex');
    await Promise.all(streams.map((stream) => this.ingestInto(stream, topic, text, events, kind, packet, redelivery, digest)));
  }

  private async ingestInto(stream: string, topic: string, text: string, events: unknown[], kind: 'array' | 'object', packet: IPublishPacket, redelivery: boolean, digest: string): Promise<void> {
    const st = this.core.engine.streams.get(stream);
    if (!st) return;
    // Each event's size as sent, measured only when the payload is over the stream's maximum
    // (an event over it is rejected by the core: counted, logged, published, acknowledged).
    const sizes = eventSizes(text, kind, this.core.maxEventBytesOf?.(stream) ?? Infinity);
    const packetKey = packet.qos > 0 && packet.messageId !== undefined ? `mqtt:${stream}:${packet.messageId}:${digest}` : undefined;
    const dup = redelivery;
    const idOf = st.compiled.idOf;
    const arrival = this.now();

    // Batches to ingest: [indices, events, key, recordOnly]. core.ingest applies synchronously
    // before its first await, so the calls below happen in message order, and whether a call
    // applied anything shows at once in the stream's counters (a repeated key applies nothing).
    const calls: { indices: number[]; events: unknown[]; key: string | undefined; recordOnly: boolean }[] = [];
    if (idOf === null) {
      calls.push({ indices: events.map((_, i) => i), events, key: packetKey, recordOnly: packetKey !== undefined && !dup });
    } else {
      const rest: { indices: number[]; events: unknown[] } = { indices: [], events: [] };
      events.forEach((e, i) => {
        const id = e !== null && typeof e === 'object' && !Array.isArray(e) ? idOf(e as never) : undefined;
        if (id === undefined || id === null) {
          rest.indices.push(i);
          rest.events.push(e);
        } else {
          calls.push({ indices: [i], events: [e], key: `mqtt:${stream}:id:${typeof id === 'string' ? id : JSON.stringify(id)}`, recordOnly: false });
        }
      });
      if (rest.events.length > 0) calls.push({ ...rest, key: packetKey, recordOnly: packetKey !== undefined && !dup });
    }

    const counted = () => st.counters.accepted + st.counters.late + st.counters.rejected;
    const pending: { call: (typeof calls)[number]; applied: boolean; answer: Promise<IngestAnswer> }[] = [];
    for (const call of calls) {
      const before = counted();
      const callSizes = sizes === null ? null : call.indices.map((i) => sizes[i]!);
      const answer = this.core.ingest(stream, call.events, arrival, { topic, idempotencyKey: call.key, recordOnly: call.recordOnly, sizes: callSizes });
      pending.push({ call, applied: counted() !== before, answer });
    }
    let accepted = 0;
    let late = 0;
    let applied = false;
    const rejected: { index: number; error: string }[] = [];
    for (const p of pending) {
      let answer: IngestAnswer;
      try {
        answer = await p.answer;
      } catch (err) {
        if (err instanceof ServiceError && err.status === 404) {
          this.logger.warn({ topic, stream }, 'MQTT message for a stream that no longer exists: dropped');
          return;
        }
        throw err; // not durable: no PUBACK, the broker redelivers
      }
      if (!p.applied) continue;
      applied = true;
      accepted += answer.accepted;
      late += answer.late;
      for (const r of answer.rejected) rejected.push({ index: p.call.indices[r.index] ?? r.index, error: r.error });
    }
    if (!applied) {
      this.onMessage?.(stream, 'duplicate');
      this.logger.debug({ topic, stream, messageId: packet.messageId }, 'MQTT message already applied (redelivery)');
      return;
    }
    if (rejected.length > 0) {
      const many = events.length > 1;
      for (const r of rejected) this.reject(stream, topic, many ? `event ${r.index}: ${r.error}` : r.error, text, false);
      this.onMessage?.(stream, 'rejected');
    } else if (accepted === 0 && late > 0) this.onMessage?.(stream, 'late');
    else this.onMessage?.(stream, 'accepted');
  }

  /** Logs a rejection, publishes it to `vigil/rejected/<stream>`, and (unless already counted) counts it. */
  private reject(stream: string, topic: string, error: string, payload: string, count = true): void {
    if (count) this.onMessage?.(stream, 'rejected');
    this.logger.warn({ topic, stream, error }, 'MQTT message rejected');
    const client = this.connection.client;
    if (!this.connection.connected) return; // QoS 0 and best effort: not queued while offline
    const body = JSON.stringify({ topic, error, payload: payload.length > REJECTED_PAYLOAD_CHARS ? `${payload.slice(0, REJECTED_PAYLOAD_CHARS)}…` : payload });
    client.publish(`${this.rejectedPrefix}${stream}`, body, { qos: 0 }, (err) => {
      if (err) this.logger.warn({ stream, error: err.message }, 'cannot publish a rejected MQTT message');
    });
  }
}
