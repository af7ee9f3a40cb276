// The service configuration (service.md §1): `VIGIL_*` environment variables, and the same
// settings as `vigil serve` flags (a flag wins over its variable). Every value is checked here,
// once: a bad value is a ConfigError that names the variable or flag and says what is wanted.
// `SETTINGS` is the one table of every setting (name, variable, flag, default, meaning); the
// README's configuration table is `renderSettingsTable()`.

import { parseArgs } from 'node:util';
import { checkAllowEntry } from './core/webhook-address-policy.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  rulesDir: string;
  mqttUrl: string | null;
  /** MQTT client id; null: the URL's `?clientId=`, else `vigil-<hostname>-<hash of the data dir>`. */
  mqttClientId: string | null;
  /** PEM file of the CA(s) the MQTT broker's certificate is checked against (mqtts://, wss://); null: the system CAs. */
  mqttCa: string | null;
  /** PEM file of the client certificate presented to the broker (with `mqttKey`). */
  mqttCert: string | null;
  /** PEM file of the client certificate's private key. */
  mqttKey: string | null;
  /** Server name checked against the broker's certificate (SNI); null: the URL's host. */
  mqttServername: string | null;
  /** False accepts any broker certificate (testing only). */
  mqttRejectUnauthorized: boolean;
  /** MQTT user name; null: the URL's. */
  mqttUsername: string | null;
  /** MQTT password; null: the URL's. */
  mqttPassword: string | null;
  smtpUrl: string | null;
  mailFrom: string | null;
  /** PEM file of the CA(s) the SMTP server's certificate is checked against (smtps:// and STARTTLS). */
  smtpCa: string | null;
  /** False accepts any SMTP server certificate (testing only). */
  smtpRejectUnauthorized: boolean;
  /** PEM certificate (chain) file: with `tlsKey`, the API is served over HTTPS. */
  tlsCert: string | null;
  /** PEM private key file of `tlsCert`. */
  tlsKey: string | null;
  /** Bearer token for rule writes and admin routes; null: those routes are open (loopback only). */
  apiToken: string | null;
  checkpointMs: number;
  logLevel: LogLevel;
  /** Largest request body in bytes (413 above). */
  bodyLimit: number;
  idempotencyTtlMs: number;
  outboxKeep: number;
  lateKeep: number;
  /** Wall-clock limit of one validate or backtest run (ms). */
  workTimeMs: number;
  /** Heap limit of one validate or backtest run's work thread (MiB). */
  workMemoryMb: number;
  /** Validate and backtest runs at once; more are refused with 503 and Retry-After. */
  workConcurrency: number;
  /** Most events one backtest replays. */
  backtestMaxEvents: number;
  /** Most partial matches one backtest holds at once. */
  backtestMaxPartials: number;
  /** Largest event in bytes, unless its stream declares `max size` (rejected above). */
  maxEventBytes: number;
  /** How far an event's time may be ahead of the wall clock (ms), unless its stream declares `max lead`. */
  maxLeadMs: number;
  /** Delivery retries: how long a delivery is retried (ms) before it is failed. */
  deliveryMaxAgeMs: number;
  /** Delivery retries: the longest pause between two attempts (ms). */
  deliveryMaxBackoffMs: number;
  outboxMaxBytes: number;
  lateMaxBytes: number;
  pageMaxBytes: number;
  idempotencySweepBatch: number;
  savepointsKeep: number;
  /** MQTT: the longest pause between two reconnect attempts (ms). */
  mqttReconnectMaxMs: number;
  /** Wall-clock limit for the rule tests of one hot load (ms). */
  testTimeLimitMs: number;
  /** Most events one rule test may give. */
  testMaxEvents: number;
  /** `--from-savepoint PATH`: copy this savepoint into the (empty) data dir before opening. */
  fromSavepoint: string | null;
  /** Webhook targets allowed although internal: IPs, CIDR blocks, host names, `self`. */
  webhookAllow: string[];
  /** `env("NAME")` in sink settings reads only variables whose names start with this. */
  envPrefix: string;
  /** The URL users reach this service at (Alertmanager links back to alerts); null: http://HOST:PORT. */
  publicUrl: string | null;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Kind = 'bool' | 'http-url' | 'string' | 'port' | 'int' | 'positive-int' | 'mqtt-url' | 'smtp-url' | 'log-level' | 'path' | 'token' | 'allow-list' | 'env-prefix';

interface Setting {
  key: keyof Config;
  env: string | null;
  flag: string;
  kind: Kind;
  default: string | number | boolean | null;
  /** The default as the README shows it, when the plain number is hard to read. */
  shown?: string;
  meaning: string;
  /** Smallest value allowed (numbers). */
  min?: number;
}

/** Every setting: the README table is built from this. */
export const SETTINGS: readonly Setting[] = [
  { key: 'host', env: 'VIGIL_HOST', flag: 'host', kind: 'string', default: '127.0.0.1', meaning: 'HTTP listen address. Anything but loopback (127.0.0.0/8, ::1, localhost) requires VIGIL_API_TOKEN.' },
  { key: 'port', env: 'VIGIL_PORT', flag: 'port', kind: 'port', default: 8080, meaning: 'HTTP port (0: any free port).' },
  { key: 'dataDir', env: 'VIGIL_DATA_DIR', flag: 'data-dir', kind: 'path', default: './data', meaning: 'State directory (LMDB): partial matches, timers, watermarks, outbox, idempotency keys.' },
  { key: 'rulesDir', env: 'VIGIL_RULES_DIR', flag: 'rules-dir', kind: 'path', default: './rules', meaning: 'Directory of `*.vigil` files, loaded at start and hot-loaded on change.' },
  { key: 'mqttUrl', env: 'VIGIL_MQTT_URL', flag: 'mqtt-url', kind: 'mqtt-url', default: null, meaning: 'MQTT broker (mqtt://, mqtts://, ws://, wss://) for `source mqtt` ingest and `to mqtt` alerts; none: MQTT off, and `to mqtt` deliveries wait (state `waiting`) for a start with it set.' },
  { key: 'mqttClientId', env: 'VIGIL_MQTT_CLIENT_ID', flag: 'mqtt-client-id', kind: 'string', default: null, meaning: 'MQTT client id (the broker keeps the persistent session under it). None: the URL\'s `?clientId=`, else `vigil-<hostname>-<8 hex of the absolute data dir>`, so instances with their own data dirs never share a session.' },
  { key: 'mqttCa', env: 'VIGIL_MQTT_CA', flag: 'mqtt-ca', kind: 'path', default: null, meaning: 'PEM file of the CA certificate(s) that the broker\'s certificate must chain to (mqtts://, wss://). None: the system CAs.' },
  { key: 'mqttCert', env: 'VIGIL_MQTT_CERT', flag: 'mqtt-cert', kind: 'path', default: null, meaning: 'PEM file of the client certificate presented to the broker (with VIGIL_MQTT_KEY), for brokers that require client certificates.' },
  { key: 'mqttKey', env: 'VIGIL_MQTT_KEY', flag: 'mqtt-key', kind: 'path', default: null, meaning: 'PEM file of the client certificate\'s private key (unencrypted).' },
  { key: 'mqttServername', env: 'VIGIL_MQTT_SERVERNAME', flag: 'mqtt-servername', kind: 'string', default: null, meaning: 'Name the broker\'s certificate must carry (and SNI). None: the URL\'s host.' },
  { key: 'mqttRejectUnauthorized', env: 'VIGIL_MQTT_REJECT_UNAUTHORIZED', flag: 'mqtt-reject-unauthorized', kind: 'bool', default: true, meaning: 'false accepts any broker certificate (testing only; logged as a warning).' },
  { key: 'mqttUsername', env: 'VIGIL_MQTT_USERNAME', flag: 'mqtt-username', kind: 'string', default: null, meaning: 'MQTT user name. None: the one in VIGIL_MQTT_URL, if any.' },
  { key: 'mqttPassword', env: 'VIGIL_MQTT_PASSWORD', flag: 'mqtt-password', kind: 'string', default: null, meaning: 'MQTT password (never logged). None: the one in VIGIL_MQTT_URL, if any.' },
  { key: 'smtpUrl', env: 'VIGIL_SMTP_URL', flag: 'smtp-url', kind: 'smtp-url', default: null, meaning: 'SMTP server (smtp:// or smtps://, credentials in the URL, `?requireTLS=true` for STARTTLS) for `to email`; none: email deliveries wait (state `waiting`) for a start with it set.' },
  { key: 'mailFrom', env: 'VIGIL_MAIL_FROM', flag: 'mail-from', kind: 'string', default: null, shown: 'vigil@&lt;hostname&gt;', meaning: 'From address of alert mail.' },
  { key: 'smtpCa', env: 'VIGIL_SMTP_CA', flag: 'smtp-ca', kind: 'path', default: null, meaning: 'PEM file of the CA certificate(s) that the SMTP server\'s certificate must chain to (smtps:// and STARTTLS). None: the system CAs.' },
  { key: 'smtpRejectUnauthorized', env: 'VIGIL_SMTP_REJECT_UNAUTHORIZED', flag: 'smtp-reject-unauthorized', kind: 'bool', default: true, meaning: 'false accepts any SMTP server certificate (testing only; logged as a warning).' },
  { key: 'tlsCert', env: 'VIGIL_TLS_CERT', flag: 'tls-cert', kind: 'path', default: null, meaning: 'PEM certificate (chain) file: with VIGIL_TLS_KEY the API is served over HTTPS; both files are read again on SIGHUP (new connections get the new certificate, ingest goes on). None: plain HTTP.' },
  { key: 'tlsKey', env: 'VIGIL_TLS_KEY', flag: 'tls-key', kind: 'path', default: null, meaning: 'PEM private key file of VIGIL_TLS_CERT (unencrypted).' },
  { key: 'apiToken', env: 'VIGIL_API_TOKEN', flag: 'api-token', kind: 'token', default: null, meaning: 'Bearer token required by rule and stream writes (PUT/DELETE /rules/:id, /streams/:stream), POST /alerts/:id/retry and /admin/*. Any printable characters, spaces included (leading and trailing spaces are dropped). Reads, ingest, validate and backtest stay open; with the token, `GET /rules/:id` shows the rule text unredacted.' },
  { key: 'checkpointMs', env: 'VIGIL_CHECKPOINT_MS', flag: 'checkpoint-ms', kind: 'int', default: 5, meaning: 'Group commit: how long changes gather after an idle period before a commit starts (ms); under load commits run back to back. An ingest is answered after the commit that holds it.' },
  { key: 'logLevel', env: 'VIGIL_LOG_LEVEL', flag: 'log-level', kind: 'log-level', default: 'info', meaning: `JSON log level: ${LOG_LEVELS.join(', ')}.` },
  { key: 'bodyLimit', env: 'VIGIL_BODY_LIMIT', flag: 'body-limit', kind: 'positive-int', default: 16 * 1024 * 1024, meaning: 'Largest request body in bytes; larger bodies get 413.' },
  { key: 'idempotencyTtlMs', env: 'VIGIL_IDEMPOTENCY_TTL_MS', flag: 'idempotency-ttl-ms', kind: 'int', default: 24 * 60 * 60 * 1000, meaning: 'How long an ingest Idempotency-Key is remembered (ms).' },
  { key: 'outboxKeep', env: 'VIGIL_OUTBOX_KEEP', flag: 'outbox-keep', kind: 'int', default: 100_000, meaning: 'Alerts kept in the outbox (GET /alerts); the oldest are pruned beyond it (one still undelivered is marked failed first, counted and logged). Undelivered alerts may fill at most half of it.' },
  { key: 'lateKeep', env: 'VIGIL_LATE_KEEP', flag: 'late-keep', kind: 'int', default: 10_000, meaning: 'Late events kept per stream on the late side output; the oldest are pruned beyond it.' },
  { key: 'webhookAllow', env: 'VIGIL_WEBHOOK_ALLOW', flag: 'webhook-allow', kind: 'allow-list', default: null, meaning: 'Webhook targets allowed although internal, comma-separated: IP addresses, CIDR blocks (`10.0.0.0/8`), host names, `self` (this service). Without it loopback, link-local, private and unspecified addresses and the service itself are refused (see docs/limits.md).' },
  { key: 'publicUrl', env: 'VIGIL_PUBLIC_URL', flag: 'public-url', kind: 'http-url', default: null, meaning: 'The URL users reach this service at (http:// or https://), for links back to alerts (`generatorURL` of `to alertmanager`). None: http://HOST:PORT, with the port it listens on.' },
  { key: 'envPrefix', env: 'VIGIL_ENV_PREFIX', flag: 'env-prefix', kind: 'env-prefix', default: 'VIGIL_SECRET_', meaning: '`env("NAME")` in sink settings reads only variables whose names start with this; any other name is a compile error.' },
  { key: 'workTimeMs', env: 'VIGIL_WORK_TIME_MS', flag: 'work-time-ms', kind: 'positive-int', default: 10_000, meaning: 'Wall-clock limit of one validate or backtest run (ms); the run is stopped and answered 422 VIGIL_ERR_WORK_LIMIT. Runs happen in work threads, never on the event loop. See docs/limits.md.' },
  { key: 'workMemoryMb', env: 'VIGIL_WORK_MEMORY_MB', flag: 'work-memory-mb', kind: 'positive-int', default: 256, min: 32, meaning: 'Heap limit of the work thread of one validate or backtest run (MiB, at least 32); past it the run is stopped (422 VIGIL_ERR_WORK_LIMIT).' },
  { key: 'workConcurrency', env: 'VIGIL_WORK_CONCURRENCY', flag: 'work-concurrency', kind: 'positive-int', default: 2, meaning: 'Validate and backtest runs at once; one more is refused at once with 503 VIGIL_ERR_WORK_BUSY and Retry-After.' },
  { key: 'backtestMaxEvents', env: 'VIGIL_BACKTEST_MAX_EVENTS', flag: 'backtest-max-events', kind: 'positive-int', default: 100_000, meaning: 'Most events one backtest replays (422 VIGIL_ERR_WORK_LIMIT above).' },
  { key: 'backtestMaxPartials', env: 'VIGIL_BACKTEST_MAX_PARTIALS', flag: 'backtest-max-partials', kind: 'positive-int', default: 200_000, meaning: 'Most partial matches one backtest may hold at once, over every rule and key (422 VIGIL_ERR_WORK_LIMIT above).' },
  { key: 'maxEventBytes', env: 'VIGIL_MAX_EVENT_BYTES', flag: 'max-event-bytes', kind: 'positive-int', default: 1024 * 1024, meaning: "Largest event in bytes (its JSON as sent, UTF-8), unless its stream declares `max size`; a larger event is rejected with its reason (HTTP: in the ingest answer; MQTT: logged, counted, acknowledged). See docs/limits.md." },
  { key: 'maxLeadMs', env: 'VIGIL_MAX_LEAD_MS', flag: 'max-lead-ms', kind: 'int', default: 60 * 60 * 1000, meaning: "How far an event's time may be ahead of the wall clock at arrival (ms), unless its stream declares `max lead`; a later time is rejected with its reason, so one sender cannot move a watermark. Streams without a `time` field are not checked. See docs/limits.md." },
  { key: 'lateMaxBytes', env: 'VIGIL_LATE_MAX_BYTES', flag: 'late-max-bytes', kind: 'positive-int', default: 64 * 1024 * 1024, shown: '67108864 (64 MiB)', meaning: 'Bytes of late events (as JSON) kept per stream on the late side output; the oldest are pruned beyond it.' },
  { key: 'outboxMaxBytes', env: 'VIGIL_OUTBOX_MAX_BYTES', flag: 'outbox-max-bytes', kind: 'positive-int', default: 256 * 1024 * 1024, shown: '268435456 (256 MiB)', meaning: 'Bytes of alerts (as JSON) the outbox holds; the oldest are pruned beyond it. Undelivered alerts may fill at most half of the outbox (count and bytes): past that the oldest undelivered are marked failed, counted and logged.' },
  { key: 'deliveryMaxAgeMs', env: 'VIGIL_DELIVERY_MAX_AGE_MS', flag: 'delivery-max-age-ms', kind: 'positive-int', default: 24 * 60 * 60 * 1000, shown: '86400000 (24 h)', meaning: 'How long an alert delivery is retried (ms, from when it was queued) before it is marked failed; a permanent error (e.g. HTTP 4xx other than 408/429) fails it at once.' },
  { key: 'deliveryMaxBackoffMs', env: 'VIGIL_DELIVERY_MAX_BACKOFF_MS', flag: 'delivery-max-backoff-ms', kind: 'positive-int', default: 5 * 60 * 1000, shown: '300000 (5 min)', meaning: 'Longest pause between two delivery attempts (ms); pauses double from 0.5 s with full jitter up to it.' },
  { key: 'pageMaxBytes', env: 'VIGIL_PAGE_MAX_BYTES', flag: 'page-max-bytes', kind: 'positive-int', default: 8 * 1024 * 1024, shown: '8388608 (8 MiB)', meaning: 'Largest page of GET /alerts and GET /streams/:stream/late in bytes (at least one item per page); the rest follows with `next`.' },
  { key: 'idempotencySweepBatch', env: 'VIGIL_IDEMPOTENCY_SWEEP_BATCH', flag: 'idempotency-sweep-batch', kind: 'positive-int', default: 1000, meaning: 'Idempotency keys examined per sweep (one sweep a second); expired keys are deleted.' },
  { key: 'savepointsKeep', env: 'VIGIL_SAVEPOINTS_KEEP', flag: 'savepoints-keep', kind: 'positive-int', default: 5, meaning: 'Savepoints kept in the data dir\'s `savepoints/` folder; the oldest are deleted when a new one is written.' },
  { key: 'mqttReconnectMaxMs', env: 'VIGIL_MQTT_RECONNECT_MAX_MS', flag: 'mqtt-reconnect-max-ms', kind: 'positive-int', default: 3000, meaning: 'Longest pause between two MQTT reconnect attempts (ms; from 1 s, doubling, with jitter): ingest resumes within about this long after the broker is back.' },
  { key: 'testTimeLimitMs', env: 'VIGIL_RULE_TEST_TIME_LIMIT_MS', flag: 'rule-test-time-limit-ms', kind: 'positive-int', default: 5_000, meaning: 'Time limit for the `test` blocks run before a hot load (PUT /rules/:id, rules-directory edit), in ms; past it the load is refused as failing.' },
  { key: 'testMaxEvents', env: 'VIGIL_RULE_TEST_MAX_EVENTS', flag: 'rule-test-max-events', kind: 'positive-int', default: 10_000, meaning: 'Most events one `test` block may give (inline and `from` files together); more is a compile error.' },
  { key: 'fromSavepoint', env: null, flag: 'from-savepoint', kind: 'path', default: null, meaning: 'Start from a savepoint (POST /admin/savepoints): copied into the data dir, which must be empty or missing.' },
];

/**
 * Reads the configuration: flags (`argv`, without the `serve` word) over environment variables
 * over defaults. Throws ConfigError on an unknown flag or a bad value.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  let values: Record<string, string | undefined>;
  try {
    const parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }])),
    });
    values = parsed.values as Record<string, string | undefined>;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const fromFlag = values[s.flag];
    const fromEnv = s.env === null ? undefined : env[s.env];
    let raw: string | undefined;
    let source: string;
    if (fromFlag !== undefined) {
      raw = fromFlag;
      source = `--${s.flag}`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      // An empty variable counts as unset (`VIGIL_API_TOKEN=` in a unit file).
      raw = fromEnv;
      source = s.env!;
    } else {
      out[s.key] = s.kind === 'allow-list' ? [] : s.default;
      continue;
    }
    const value = convert(s.kind, raw, source);
    if (s.min !== undefined && typeof value === 'number' && value < s.min) throw new ConfigError(`${source}: ${JSON.stringify(raw)} is below the minimum of ${s.min}`);
    out[s.key] = value;
  }
  return out as unknown as Config;
}

function convert(kind: Kind, raw: string, source: string): string | number | boolean | string[] {
  const value = raw.trim();
  const bad = (want: string): never => {
    throw new ConfigError(`${source}: ${JSON.stringify(raw)} is not ${want}`);
  };
  switch (kind) {
    case 'bool':
      if (/^(true|1|yes)$/i.test(value)) return true;
      if (/^(false|0|no)$/i.test(value)) return false;
      return bad('true or false');
    case 'string':
    case 'path':
      if (value === '') bad('a non-empty value');
      return value;
    case 'token':
      // Sent as `Authorization: Bearer <token>`: control characters could never arrive.
      if (value === '') bad('a non-empty value');
      if (/[\u0000-\u001f\u007f]/.test(value)) throw new ConfigError(`${source}: the token holds a control character (tab, newline, ...): use printable characters only`);
      return value;
    case 'allow-list': {
      const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
      for (const e of entries) {
        const why = checkAllowEntry(e);
        if (why !== null) throw new ConfigError(`${source}: ${why}`);
      }
      return entries;
    }
    case 'env-prefix': {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) bad('a variable name prefix (letters, digits, _)');
      // A prefix that lets rules read the service's own settings (the API token) is refused.
      const exposed = SETTINGS.find((s) => s.env !== null && s.env.startsWith(value));
      if (exposed) throw new ConfigError(`${source}: ${JSON.stringify(value)} would let rules read ${exposed.env}: choose a prefix no VIGIL_* setting starts with (default VIGIL_SECRET_)`);
      return value;
    }
    case 'port': {
      if (!/^\d+$/.test(value)) bad('a port number (0-65535)');
      const n = Number(value);
      if (n > 65535) bad('a port number (0-65535)');
      return n;
    }
    case 'int':
    case 'positive-int': {
      if (!/^\d+$/.test(value)) bad(kind === 'int' ? 'a whole number >= 0' : 'a whole number > 0');
      const n = Number(value);
      if (!Number.isSafeInteger(n) || (kind === 'positive-int' && n === 0)) bad(kind === 'int' ? 'a whole number >= 0' : 'a whole number > 0');
      return n;
    }
    case 'log-level':
      if (!(LOG_LEVELS as readonly string[]).includes(value)) bad(`a log level (${LOG_LEVELS.join(', ')})`);
      return value;
    case 'http-url': {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return bad('an http:// or https:// URL');
      }
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') bad('an http:// or https:// URL');
      return value;
    }
    case 'mqtt-url':
    case 'smtp-url': {
      const protocols = kind === 'mqtt-url' ? ['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ws:', 'wss:'] : ['smtp:', 'smtps:'];
      const want = `a URL starting with ${protocols.map((p) => p + '//').join(', ')}`;
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return bad(want);
      }
      if (!protocols.includes(url.protocol) || url.hostname === '') bad(want);
      return value;
    }
  }
}

/** True for an address that only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v4);
  return m !== null && m.slice(1).every((p) => Number(p) <= 255) && m[1] === '127';
}

/** The configuration table for the README (markdown). */
export function renderSettingsTable(): string {
  const rows = SETTINGS.map((s) => {
    const def = s.shown !== undefined ? s.shown : s.default === null ? '(none)' : s.key === 'bodyLimit' ? '16777216 (16 MiB)' : s.key === 'idempotencyTtlMs' ? '86400000 (24 h)' : s.key === 'maxEventBytes' ? '1048576 (1 MiB)' : s.key === 'maxLeadMs' ? '3600000 (1 h)' : String(s.default);
    return `| ${s.env === null ? '—' : '`' + s.env + '`'} | \`--${s.flag}\` | ${def} | ${s.meaning} |`;
  });
  return ['| variable | flag | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The configuration as safe to log: the token and URL credentials hidden. */
export function redactConfig(config: Config): Record<string, unknown> {
  const hideCreds = (u: string | null): string | null => {
    if (u === null) return null;
    try {
      const url = new URL(u);
      if (url.username || url.password) {
        url.username = url.username ? '***' : '';
        url.password = url.password ? '***' : '';
      }
      return url.toString();
    } catch {
      return '***';
    }
  };
  return { ...config, apiToken: config.apiToken === null ? null : '***', mqttPassword: config.mqttPassword === null ? null : '***', mqttUrl: hideCreds(config.mqttUrl), smtpUrl: hideCreds(config.smtpUrl), publicUrl: hideCreds(config.publicUrl) };
}
