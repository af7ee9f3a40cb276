// The service's one MQTT connection (service.md §3, `VIGIL_MQTT_URL`): shared by MQTT ingest
// (mqtt-source.ts), the publishing of rejected payloads, and the `to mqtt` sink (`.client`).
//
// Session: a fixed client id (`VIGIL_MQTT_CLIENT_ID`, else the URL's `?clientId=`, else
// `vigil-<hostname>-<hash of the absolute data dir>`: two instances on one host with their own
// data dirs never take over each other's session) and `clean: false`, so the broker
// keeps our subscriptions and queues QoS 1 messages while we are away (restart, network loss),
// and redelivers those we had not acknowledged.
//
// Acknowledgements: a QoS 1 message may be acknowledged (PUBACK) only once its effect is
// durable (service.md §4). mqtt.js's `customHandleAcks` hook exists only for MQTT 5 (aedes,
// the in-process test broker, speaks 3.1.1 only), and both it and `handleMessage` hold back
// the client's whole incoming packet pipeline until they call back — one commit per message
// (≈ 50 messages/s at a 20 ms checkpoint), and our own publishes' PUBACKs stuck behind ingest.
// So the gate sits at the one place every outgoing PUBACK passes, `_sendPacket`: the PUBACK of
// an incoming message is held until the message handler's promise resolves, while the client
// goes on reading packets. Many messages then share one group commit, and their PUBACKs go
// out in order of their commits. An outgoing PUBACK is always for an incoming publish (we
// never answer our own publishes), so the gate cannot catch anything else.
//
// A held PUBACK whose connection has meanwhile dropped is discarded, never sent on the next
// connection: its packet id may already name another message there. The broker redelivers
// the message (DUP set) and the source's idempotency keys keep its effect single.
// A handler that rejects (the effect could not be made durable) leaves the message un-acked
// for the same reason. The ids left un-acked when a connection closes are remembered (while
// the session is kept): their next arrival is a redelivery even if the broker forgets the DUP
// flag (aedes 1.2 does). A PUBACK already written to a socket that then dies is beyond our
// knowledge: only the broker's DUP flag protects that one.
//
// TLS (mqtts://, wss://): the CA, client certificate and key are read from files when the
// connection is made (a missing or non-PEM file throws TlsFileError naming the setting and
// path); a handshake that fails is logged as one line saying which certificate and why
// (`tlsFailure`), and `firstAttempt()` lets `vigil serve` refuse to start on it.
//
// Reconnects: mqtt.js's fixed `reconnectPeriod`, doubled per failed attempt up to a low cap
// (3 s by default, so ingest resumes within seconds of the broker's return; with jitter, so a
// fleet does not reconnect in step) and reset on connect.

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient, type Packet } from 'mqtt';
import { pino, type Logger } from 'pino';
import { isTlsFailure, readPem, tlsFailure } from '../core/tls-files.js';

/** TLS settings of the broker connection: file paths, never inline PEM (service.md §1). */
export interface MqttTlsSettings {
  /** `VIGIL_MQTT_CA`: PEM CA file the broker's certificate must chain to; null: the system CAs. */
  caPath?: string | null;
  /** `VIGIL_MQTT_CERT`: PEM client certificate. */
  certPath?: string | null;
  /** `VIGIL_MQTT_KEY`: PEM private key of the client certificate. */
  keyPath?: string | null;
  /** `VIGIL_MQTT_SERVERNAME`: name the broker's certificate must carry; null: the URL's host. */
  servername?: string | null;
  /** `VIGIL_MQTT_REJECT_UNAUTHORIZED`; default true. */
  rejectUnauthorized?: boolean;
}

export interface MqttConnectionOptions {
  /** `VIGIL_MQTT_URL`: mqtt://user:pass@host:1883, mqtts://…, ws://… */
  url: string;
  /** The persistent session is found again by this id; default: the URL's `?clientId=`, else `vigil-<hostname>`. */
  clientId?: string;
  /** Default false (persistent session). */
  clean?: boolean;
  /** First reconnect delay; default 1000 ms. */
  reconnectPeriodMs?: number;
  /** Reconnect delay cap (`VIGIL_MQTT_RECONNECT_MAX_MS`); default 3 000 ms: ingest resumes within seconds of the broker's return. */
  maxReconnectPeriodMs?: number;
  /** Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Keepalive in seconds; default 30. */
  keepaliveSeconds?: number;
  /** 4 (MQTT 3.1.1, the default) or 5. */
  protocolVersion?: 4 | 5;
  logger?: Logger;
  /** CA, client certificate and key files, server name, verification. */
  tls?: MqttTlsSettings;
  /** User name and password; null/undefined: the URL's. */
  username?: string | null;
  password?: string | null;
  /** More mqtt.js options (tests: TLS settings, will). */
  clientOptions?: IClientOptions;
}

/**
 * Handles one incoming message; for QoS 1 the PUBACK waits for the returned promise.
 * `redelivery` is true when the message carries the DUP flag, or when this process dropped the
 * PUBACK of that packet id on an earlier connection of the kept session (so the broker cannot
 * have given the id to a new message): some brokers (aedes 1.2) redeliver without DUP.
 */
export type MqttMessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket, redelivery: boolean) => Promise<void> | void;

interface ConnectionEvents {
  connect: [{ sessionPresent: boolean }];
  close: [];
  tlsError: [string];
}

type SendPacket = (packet: Packet, cb?: (err?: Error) => void, cbStorePut?: () => void, noStore?: boolean) => void;

/**
 * `vigil-<hostname>`, and with a data dir `-<8 hex of the SHA-256 of its absolute path>`: the
 * same instance finds its session again after a restart, another instance (own data dir) on the
 * same host gets its own. Client ids are limited to 23 bytes by MQTT 3.1.1 brokers that enforce
 * it; most (Mosquitto, aedes) allow more.
 */
export function defaultClientId(dataDir?: string): string {
  const suffix = dataDir === undefined ? '' : `-${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 8)}`;
  return `vigil-${hostname()}${suffix}`.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/** The `clientId` query parameter of a broker URL (`mqtt://host:1883?clientId=x`), if any. */
export function urlClientId(url: string): string | null {
  try {
    const id = new URL(url).searchParams.get('clientId');
    return id !== null && id !== '' ? id : null;
  } catch {
    return null;
  }
}

/** The URL without its `clientId` query parameter (unchanged when it has none or does not parse). */
function withoutClientId(url: string): string {
  try {
    const u = new URL(url);
    if (!u.searchParams.has('clientId')) return url;
    u.searchParams.delete('clientId');
    return u.toString();
  } catch {
    return url;
  }
}

/** The client id to use: the setting, else the URL's `?clientId=`, else `defaultClientId(dataDir)`. */
export function chooseClientId(url: string, setting: string | null, dataDir: string): string {
  return setting ?? urlClientId(url) ?? defaultClientId(dataDir);
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable MQTT URL)';
  }
}

export class MqttConnection extends EventEmitter<ConnectionEvents> {
  readonly client: MqttClient;
  readonly clientId: string;
  private readonly logger: Logger;
  private readonly basePeriod: number;
  private readonly maxPeriod: number;
  private handler: MqttMessageHandler | null = null;
  /** Incremented on each connect: a PUBACK is sent only on the connection its message came in on. */
  private generation = 0;
  /** Incoming QoS 1 messages whose handler has not settled yet: packet id → settle promise. */
  private readonly held = new Map<number, { generation: number; done: Promise<boolean> }>();
  /** Messages whose handler has not settled yet (for a graceful close). */
  private readonly outstanding = new Set<Promise<boolean>>();
  /** Packet ids whose PUBACK we never sent (connection lost first): their next arrival is a redelivery. */
  private readonly droppedAcks = new Set<number>();
  /** Packet ids of this connection received and not yet acknowledged. */
  private readonly unacked = new Set<number>();
  private closed = false;
  private everConnected = false;
  /** The last TLS failure said plainly (null once connected). */
  private tlsError: string | null = null;

  constructor(options: MqttConnectionOptions) {
    super();
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.clientId = options.clientId ?? urlClientId(options.url) ?? defaultClientId();
    this.basePeriod = options.reconnectPeriodMs ?? 1000;
    this.maxPeriod = Math.max(this.basePeriod, options.maxReconnectPeriodMs ?? 3000);
    const url = redactUrl(options.url);
    const tlsOptions = mqttTlsOptions(options.tls ?? {});
    const peer = `MQTT broker ${hostPort(options.url)}`;
    // mqtt.js lets the URL's `?clientId=` override the option: the id chosen here is the one used.
    this.client = mqtt.connect(withoutClientId(options.url), {
      ...options.clientOptions,
      ...tlsOptions,
      ...(options.username != null ? { username: options.username } : {}),
      ...(options.password != null ? { password: options.password } : {}),
      clientId: this.clientId,
      clean: options.clean ?? false,
      protocolVersion: options.protocolVersion ?? 4,
      reconnectPeriod: this.basePeriod,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      keepalive: options.keepaliveSeconds ?? 30,
      // Subscriptions are the source's business: it re-subscribes on every connect without a
      // kept session (and only the difference with one), see MqttSource.
      resubscribe: false,
    });
    this.installAckGate();

    this.client.on('connect', (connack: IConnackPacket) => {
      this.tlsError = null;
      this.generation++;
      this.client.options.reconnectPeriod = this.basePeriod;
      const sessionPresent = connack.sessionPresent === true;
      // Without the session the broker forgot those messages: their ids are free again.
      if (!sessionPresent) this.droppedAcks.clear();
      this.logger.info({ url, clientId: this.clientId, sessionPresent }, this.everConnected ? 'MQTT reconnected' : 'MQTT connected');
      this.everConnected = true;
      this.emit('connect', { sessionPresent });
    });
    this.client.on('close', () => {
      this.generation++;
      this.held.clear();
      // Their PUBACKs will not be sent (see the ack gate): mark them now, not when their commits
      // end — the broker may redeliver them on the next connection before that.
      for (const id of this.unacked) this.droppedAcks.add(id);
      this.unacked.clear();
      if (!this.closed) this.emit('close');
    });
    this.client.on('offline', () => {
      if (!this.closed) this.logger.warn({ url }, 'MQTT connection lost; reconnecting');
    });
    this.client.on('reconnect', () => {
      // Exponential backoff over mqtt.js's fixed period: it reads the option anew each time.
      const next = Math.min(this.maxPeriod, this.client.options.reconnectPeriod! * 2);
      this.client.options.reconnectPeriod = Math.max(1, Math.round(next * (0.8 + 0.4 * Math.random())));
    });
    this.client.on('error', (err) => {
      if (isTlsFailure(err)) {
        const tls = options.tls ?? {};
        this.tlsError = tlsFailure(err, { peer, caSetting: 'VIGIL_MQTT_CA', caPath: tls.caPath ?? null, certSetting: 'VIGIL_MQTT_CERT', certPath: tls.certPath ?? null });
        this.logger.error({ url, error: this.tlsError }, 'MQTT TLS handshake failed');
        this.emit('tlsError', this.tlsError);
        return;
      }
      this.logger.warn({ url, error: err.message }, 'MQTT error');
    });
    this.client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, packet));
  }

  /** True while connected to the broker (readiness). */
  get connected(): boolean {
    return this.client.connected;
  }

  /** Sets the handler of incoming messages (one; the source). */
  setMessageHandler(handler: MqttMessageHandler | null): void {
    this.handler = handler;
  }

  /** Resolves once connected (at once if connected); rejects after `timeoutMs`. */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this.client.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('connect', onConnect);
        reject(new Error(`MQTT not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnect = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once('connect', onConnect);
    });
  }

  /**
   * The outcome of the first connection attempt(s) within `timeoutMs`: 'connected', a TLS
   * failure said plainly (a certificate problem, which no retry mends), or 'pending' (the broker
   * is not reachable yet: reconnects go on).
   */
  firstAttempt(timeoutMs = 10_000): Promise<{ outcome: 'connected' | 'pending' } | { outcome: 'tls'; error: string }> {
    if (this.client.connected) return Promise.resolve({ outcome: 'connected' });
    if (this.tlsError !== null) return Promise.resolve({ outcome: 'tls', error: this.tlsError });
    return new Promise((resolve) => {
      const done = (r: { outcome: 'connected' | 'pending' } | { outcome: 'tls'; error: string }): void => {
        clearTimeout(timer);
        this.off('connect', onConnect);
        this.off('tlsError', onTls);
        resolve(r);
      };
      const onConnect = (): void => done({ outcome: 'connected' });
      const onTls = (error: string): void => done({ outcome: 'tls', error });
      const timer = setTimeout(() => done({ outcome: 'pending' }), timeoutMs);
      this.once('connect', onConnect);
      this.once('tlsError', onTls);
    });
  }

  /**
   * Closes the connection. By default waits up to `graceMs` for held acknowledgements
   * (messages being committed) and sends DISCONNECT; `force` drops the socket at once, like a
   * crash (the broker redelivers every un-acked message).
   */
  async close(opts: { force?: boolean; graceMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    if (!opts.force && this.outstanding.size > 0) {
      await Promise.race([Promise.allSettled([...this.outstanding]), new Promise((r) => setTimeout(r, opts.graceMs ?? 2000).unref())]);
      // Let the released PUBACKs reach the socket before DISCONNECT.
      await new Promise((r) => setImmediate(r));
    }
    this.closed = true;
    this.handler = null;
    this.droppedAcks.clear();
    if (opts.force) this.client.stream?.destroy();
    await this.client.endAsync(opts.force === true);
  }

  private dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const handler = this.handler;
    const id = packet.messageId;
    const redelivery = packet.dup === true || (packet.qos > 0 && id !== undefined && this.droppedAcks.delete(id));
    let result: Promise<void> | void;
    try {
      result = handler ? handler(topic, payload, packet, redelivery) : undefined;
    } catch (err) {
      result = Promise.reject(err);
    }
    if (packet.qos === 0 || packet.messageId === undefined) {
      if (result) result.catch((err: unknown) => this.logger.error({ topic, error: errorText(err) }, 'MQTT message handler failed'));
      return;
    }
    // mqtt.js emits 'message' synchronously before it sends the PUBACK: register the gate now.
    const done = Promise.resolve(result).then(
      () => true,
      (err: unknown) => {
        this.logger.error({ topic, error: errorText(err) }, 'MQTT message not processed; left un-acknowledged for redelivery');
        return false;
      },
    );
    this.unacked.add(packet.messageId);
    this.outstanding.add(done);
    void done.then(() => this.outstanding.delete(done));
    this.held.set(packet.messageId, { generation: this.generation, done });
  }

  private installAckGate(): void {
    const client = this.client as unknown as { _sendPacket: SendPacket };
    const send: SendPacket = client._sendPacket.bind(this.client);
    client._sendPacket = (packet, cb, cbStorePut, noStore) => {
      if (packet.cmd !== 'puback' || packet.messageId === undefined) return send(packet, cb, cbStorePut, noStore);
      const id = packet.messageId;
      const hold = this.held.get(id);
      if (!hold) return send(packet, cb, cbStorePut, noStore);
      this.held.delete(id);
      // Let mqtt.js go on to the next packet now; the PUBACK itself follows the commit.
      cb?.();
      void hold.done.then((ok) => {
        if (!ok) return;
        const stream = this.client.stream as { destroyed?: boolean; writable?: boolean } | undefined;
        if (hold.generation !== this.generation || !this.client.connected || !stream || stream.destroyed || stream.writable === false) {
          this.logger.debug({ messageId: id }, 'connection changed before the commit: acknowledgement dropped (the broker redelivers)');
          return;
        }
        this.unacked.delete(id);
        send(packet, undefined, cbStorePut, noStore);
      });
    };
  }
}

/** mqtt.js (node:tls) options from the TLS settings; reads the files (TlsFileError when one is bad). */
export function mqttTlsOptions(tls: MqttTlsSettings): IClientOptions {
  const out: IClientOptions = {};
  if ((tls.certPath == null) !== (tls.keyPath == null)) {
    throw new Error(tls.certPath == null ? 'VIGIL_MQTT_KEY is set without VIGIL_MQTT_CERT: give both or neither' : 'VIGIL_MQTT_CERT is set without VIGIL_MQTT_KEY: give both or neither');
  }
  if (tls.caPath != null) out.ca = readPem('VIGIL_MQTT_CA', tls.caPath, 'certificate');
  if (tls.certPath != null) out.cert = readPem('VIGIL_MQTT_CERT', tls.certPath, 'certificate');
  if (tls.keyPath != null) out.key = readPem('VIGIL_MQTT_KEY', tls.keyPath, 'key');
  if (tls.servername != null) out.servername = tls.servername;
  if (tls.rejectUnauthorized === false) out.rejectUnauthorized = false;
  return out;
}

/** `host:port` of a broker URL, for messages. */
function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return u.port ? `${u.hostname}:${u.port}` : u.hostname;
  } catch {
    return '(unparseable URL)';
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
