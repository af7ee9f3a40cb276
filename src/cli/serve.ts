// `vigil serve` (service.md §1): configuration from VIGIL_* variables and flags, optional start
// from a savepoint, the durable core, the HTTP API, and a clean stop on SIGTERM/SIGINT (stop
// accepting, finish in-flight requests, final commit, close LMDB, exit 0). Refuses to listen on
// a non-loopback address without an API token, and warns when such an address has no TLS.
// With VIGIL_TLS_CERT/VIGIL_TLS_KEY the API is HTTPS; SIGHUP reads both files again and gives
// the server the new certificate (`setSecureContext`): new connections get it, open ones and
// ingest go on. A TLS file that cannot be read is a bad configuration (exit 2); an MQTT broker
// whose TLS handshake fails on the first attempt stops the start (exit 1, which certificate, why). Structured JSON logs (pino) on standard output;
// the token and URL credentials never reach them. Exit codes: 0 after a clean stop, 1 when the
// service cannot start (state, savepoint, listen), 2 on a bad configuration.

import { hostname } from 'node:os';
import { cpSync, existsSync, readdirSync, statSync } from 'node:fs';
import type { Server as TlsServer } from 'node:tls';
import { basename, join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { buildServer } from '../api/server.js';
import { ConfigError, isLoopback, loadConfig, redactConfig, type Config } from '../config.js';
import { DurableEngine } from '../engine/durable-engine.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { chooseClientId, MqttConnection } from '../ingest/mqtt-connection.js';
import { MqttSource } from '../ingest/mqtt-source.js';
import { createMetrics } from '../metrics/registry.js';
import { createSinkRegistry } from '../sinks/registry.js';
import { WebhookAddressPolicy } from '../core/webhook-address-policy.js';
import { retryPolicy } from '../sinks/retry.js';
import { readPem, TlsFileError } from '../core/tls-files.js';

/** The API's certificate and key, read from VIGIL_TLS_CERT / VIGIL_TLS_KEY (null: plain HTTP). */
export function readApiTls(config: Config): { cert: Buffer; key: Buffer } | null {
  if (config.tlsCert === null && config.tlsKey === null) return null;
  if (config.tlsCert === null || config.tlsKey === null) {
    throw new TlsFileError(config.tlsCert === null ? 'VIGIL_TLS_KEY is set without VIGIL_TLS_CERT: give both or neither' : 'VIGIL_TLS_CERT is set without VIGIL_TLS_KEY: give both or neither');
  }
  return { cert: readPem('VIGIL_TLS_CERT', config.tlsCert, 'certificate'), key: readPem('VIGIL_TLS_KEY', config.tlsKey, 'key') };
}

const say = (line: string): void => {
  process.stderr.write(`vigil serve: ${line}\n`);
};

/** Copies a savepoint into a data dir that is missing or empty; throws with a clear message otherwise. */
export function restoreSavepoint(savepoint: string, dataDir: string): void {
  if (!existsSync(savepoint)) throw new Error(`savepoint ${savepoint} does not exist`);
  if (existsSync(dataDir)) {
    if (!statSync(dataDir).isDirectory()) throw new Error(`data dir ${dataDir} is not a directory`);
    const entries = readdirSync(dataDir);
    if (entries.length > 0) {
      throw new Error(
        `data dir ${dataDir} already holds state (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}); ` +
          `--from-savepoint starts only on an empty or missing data dir: move the old state away first`,
      );
    }
  }
  if (resolve(savepoint) === resolve(dataDir)) throw new Error('the savepoint and the data dir are the same path');
  if (statSync(savepoint).isDirectory()) cpSync(savepoint, dataDir, { recursive: true });
  else cpSync(savepoint, join(dataDir, basename(savepoint)));
}

export async function serve(args: string[]): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(args, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      say(`${err.message}\n(see README: Configuration)`);
      return 2;
    }
    throw err;
  }
  if (!isLoopback(config.host) && config.apiToken === null) {
    say(`refusing to listen on ${config.host}, which is not a loopback address, without an API token: set VIGIL_API_TOKEN (or --api-token), or listen on 127.0.0.1`);
    return 1;
  }

  // TLS files are read before anything opens: a bad path is a bad configuration.
  let apiTls: { cert: Buffer; key: Buffer } | null;
  let smtpCa: Buffer | null = null;
  try {
    apiTls = readApiTls(config);
    if (config.smtpCa !== null) smtpCa = readPem('VIGIL_SMTP_CA', config.smtpCa, 'certificate');
  } catch (err) {
    say(`${(err as Error).message}\n(see README: Configuration, TLS)`);
    return 2;
  }

  const logger: Logger = pino({ level: config.logLevel, base: { service: 'vigil', pid: process.pid } });
  logger.info({ config: redactConfig(config) }, 'starting');
  if (!isLoopback(config.host) && apiTls === null) {
    logger.warn({ host: config.host }, 'the API listens on a non-loopback address over plain HTTP: the API token and events cross the network in clear; set VIGIL_TLS_CERT and VIGIL_TLS_KEY, or put a TLS proxy in front');
  }
  if (!config.mqttRejectUnauthorized) logger.warn('VIGIL_MQTT_REJECT_UNAUTHORIZED=false: any broker certificate is accepted (testing only)');
  if (!config.smtpRejectUnauthorized) logger.warn('VIGIL_SMTP_REJECT_UNAUTHORIZED=false: any SMTP server certificate is accepted (testing only)');

  if (config.fromSavepoint !== null) {
    try {
      restoreSavepoint(config.fromSavepoint, config.dataDir);
    } catch (err) {
      say(`cannot start from savepoint: ${(err as Error).message}`);
      return 1;
    }
    logger.info({ savepoint: config.fromSavepoint, dataDir: config.dataDir }, 'state restored from savepoint');
  }

  let rulesDir: string | null = config.rulesDir;
  if (!existsSync(rulesDir)) {
    logger.warn({ rulesDir }, 'rules directory does not exist: no file rules (rules can still be PUT)');
    rulesDir = null;
  }

  // Where webhooks may post: the allow list, and never this service itself (its port, once it listens).
  let listenPort: number | null = null;
  const webhookPolicy = new WebhookAddressPolicy(config.webhookAllow, () => (listenPort === null ? null : { port: listenPort }));

  let fatal: ((error: Error) => void) | null = null;
  let countWork: ((kind: string, outcome: string) => void) | null = null;
  let core: DurableEngine;
  try {
    core = await DurableEngine.open({
      dataDir: config.dataDir,
      rulesDir,
      checkpointMs: config.checkpointMs,
      idempotencyTtlMs: config.idempotencyTtlMs,
      outboxKeep: config.outboxKeep,
      outboxMaxBytes: config.outboxMaxBytes,
      lateKeepPerStream: config.lateKeep,
      work: { timeMs: config.workTimeMs, memoryMb: config.workMemoryMb, concurrency: config.workConcurrency, maxEvents: config.backtestMaxEvents, maxPartials: config.backtestMaxPartials },
      onWork: (kind, outcome) => countWork?.(kind, outcome),
      maxEventBytes: config.maxEventBytes,
      maxLeadMs: config.maxLeadMs,
      lateMaxBytesPerStream: config.lateMaxBytes,
      pageMaxBytes: config.pageMaxBytes,
      idempotencySweepBatch: config.idempotencySweepBatch,
      savepointsKeep: config.savepointsKeep,
      testTimeLimitMs: config.testTimeLimitMs,
      testMaxEvents: config.testMaxEvents,
      env: process.env,
      configuredSinks: { email: config.smtpUrl !== null, mqtt: config.mqttUrl !== null },
      envPrefix: config.envPrefix,
      webhookPolicy,
      logger,
      onFatal: (error) => fatal?.(error),
    });
  } catch (err) {
    logger.error({ err }, 'cannot open the state');
    say(`cannot open the state in ${config.dataDir}: ${(err as Error).message}`);
    return 1;
  }

  // Metrics read the engine at scrape time; the rest is counted where it happens.
  let connection: MqttConnection | null = null;
  const metrics = createMetrics({
    engine: core.engine,
    stateSizeBytes: () => core.store.sizeBytes(),
    outboxBacklog: () => core.outboxBacklog(),
    givenUp: () => core.givenUp,
    pruned: () => core.pruned,
    mqttConnected: () => (connection === null ? null : connection.connected),
  });
  core.onCheckpoint((seconds, ok) => metrics.observeCheckpoint(seconds, ok));
  core.onCommittedAlerts((entries) => {
    for (const e of entries) metrics.countAlert(e.alert.rule, e.alert.kind);
  });
  core.onRuleLoadError(() => metrics.ruleLoadError());
  countWork = (kind, outcome) => metrics.countWorkRun(kind, outcome);

  // MQTT: one connection for ingest (`source mqtt` filters) and the `to mqtt` sink.
  let source: MqttSource | null = null;
  if (config.mqttUrl !== null) {
    try {
      connection = new MqttConnection({
        url: config.mqttUrl,
        clientId: chooseClientId(config.mqttUrl, config.mqttClientId, config.dataDir),
        logger,
        maxReconnectPeriodMs: config.mqttReconnectMaxMs,
        tls: { caPath: config.mqttCa, certPath: config.mqttCert, keyPath: config.mqttKey, servername: config.mqttServername, rejectUnauthorized: config.mqttRejectUnauthorized },
        username: config.mqttUsername,
        password: config.mqttPassword,
      });
    } catch (err) {
      say(`${(err as Error).message}\n(see README: Configuration, TLS)`);
      await core.close().catch(() => undefined);
      return 2;
    }
    // A certificate problem shows on the first attempt and no retry mends it: refuse to start.
    // An unreachable broker is another matter: reconnects go on and /ready says so.
    const first = await connection.firstAttempt(10_000);
    if (first.outcome === 'tls') {
      say(`cannot start: ${first.error}`);
      await connection.close({ force: true }).catch(() => undefined);
      await core.close().catch(() => undefined);
      return 1;
    }
    source = new MqttSource(core, connection, { onMessage: (stream, outcome) => metrics.countMqtt(stream, outcome), logger });
    await source.start();
  }
  core.onRulesChanged((changes) => {
    for (const [rule, c] of changes) if (c.dropped > 0) metrics.ruleChanged(rule, c.dropped);
    // New streams may declare new MQTT sources.
    void source?.refresh().catch((err: Error) => logger.warn({ error: err.message }, 'mqtt subscriptions not refreshed'));
  });

  // Delivery: the outbox, one queue per sink target, retries with backoff.
  const sinks = createSinkRegistry({
    logger,
    smtpUrl: config.smtpUrl,
    mailFrom: config.mailFrom,
    smtpTls: { ca: smtpCa, caPath: config.smtpCa, rejectUnauthorized: config.smtpRejectUnauthorized },
    mqttClient: connection?.client ?? null,
    webhook: { policy: webhookPolicy, onRefused: () => metrics.webhookRefused() },
    alertmanager: { policy: webhookPolicy, onRefused: () => metrics.webhookRefused(), publicUrl: () => config.publicUrl ?? (listenPort === null ? null : `http://${urlHost(config.host)}:${listenPort}`) },
  });
  const dispatcher = new Dispatcher(core, sinks, {
    policy: retryPolicy({ maxDelayMs: config.deliveryMaxBackoffMs, maxAgeMs: config.deliveryMaxAgeMs }),
    onDelivery: (sink, outcome, latencySeconds) => metrics.observeDelivery(sink, outcome, latencySeconds),
    logger,
  });
  dispatcher.start();

  const app = buildServer(core, config, logger, {
    https: apiTls ?? undefined,
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.metrics() }),
    extraReadiness:
      connection === null
        ? undefined
        : () => ({ ok: connection!.connected, detail: connection!.connected ? 'mqtt connected' : 'mqtt not connected' }),
  });
  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url === '/streams/:stream/events') metrics.countHttpIngest(reply.statusCode < 300 ? 'accepted' : reply.statusCode < 500 ? 'client_error' : 'server_error');
  });
  let stopping: Promise<void> | null = null;
  // Stop order: no new HTTP requests or MQTT messages; delivery stops (its last states are
  // recorded); the MQTT connection closes once the acks under way are sent; the sinks close;
  // the final commit saves everything, delivery states included.
  const stop = async (): Promise<void> => {
    try {
      await app.close();
      await source?.stop();
      await dispatcher.stop();
      await connection?.close();
      await sinks.close();
    } finally {
      await core.close();
    }
  };

  try {
    await app.listen({ host: config.host, port: config.port, listenTextResolver: (address) => `vigil listening on ${address}` });
    const address = app.server.address();
    listenPort = typeof address === 'object' && address !== null ? address.port : config.port;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : e.message;
    say(`cannot listen on ${config.host}:${config.port}: ${why}`);
    logger.error({ err, host: config.host, port: config.port }, 'listen failed');
    await stop().catch(() => undefined);
    return 1;
  }

  const signal = await new Promise<NodeJS.Signals | 'fatal'>((resolveSignal) => {
    fatal = (error) => {
      logger.fatal({ error: error.message }, 'the state can no longer be committed: stopping');
      resolveSignal('fatal');
    };
    const on = (sig: NodeJS.Signals): void => {
      if (stopping !== null) {
        // A second signal while stopping: give up waiting.
        logger.warn({ signal: sig }, 'second signal while stopping: exiting now');
        process.exit(1);
      }
      resolveSignal(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
    // SIGHUP: the API's certificate and key again (renewed files); the old ones stay on error.
    process.on('SIGHUP', () => {
      if (apiTls === null) {
        logger.info('SIGHUP: the API is plain HTTP (no VIGIL_TLS_CERT): nothing to reload');
        return;
      }
      try {
        const next = readApiTls(config)!;
        (app.server as unknown as TlsServer).setSecureContext(next);
        logger.info({ cert: config.tlsCert }, 'SIGHUP: API certificate reloaded; new connections get it');
      } catch (err) {
        logger.error({ error: (err as Error).message }, 'SIGHUP: API certificate not reloaded; the old one stays');
      }
    });
  });
  logger.info({ signal }, 'stopping: no new requests, final commit');
  stopping = stop();
  let code = signal === 'fatal' ? 1 : 0;
  try {
    await stopping;
  } catch (err) {
    logger.error({ err }, 'stop failed');
    code = 1;
  }
  logger.info({ exitCode: code }, 'stopped');
  // Anything left holding the event loop (a watcher, a socket) must not keep a stopped service alive.
  setTimeout(() => process.exit(process.exitCode ?? code), 2000).unref();
  return code;
}

/** A listen address as the host of a URL: IPv6 in brackets, the unspecified addresses as this machine's name. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return hostname();
  return host.includes(':') ? `[${host}]` : host;
}
