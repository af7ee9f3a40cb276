// The service configuration (service.md §1): `VIGIL_*` environment variables, and the same
// settings as `vigil serve` flags (a flag wins over its variable). Every value is checked here,
// once: a bad value is a ConfigError that names the variable or flag and says what is wanted.
// `SETTINGS` is the one table of every setting (name, variable, flag, default, meaning); the
// README's configuration table is `renderSettingsTable()`.

import { parseArgs } from 'node:util';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  rulesDir: string;
  mqttUrl: string | null;
  smtpUrl: string | null;
  mailFrom: string | null;
  /** Bearer token for rule writes and admin routes; null: those routes are open (loopback only). */
  apiToken: string | null;
  checkpointMs: number;
  logLevel: LogLevel;
  /** Largest request body in bytes (413 above). */
  bodyLimit: number;
  idempotencyTtlMs: number;
  outboxKeep: number;
  lateKeep: number;
  /** Wall-clock limit for the rule tests of one hot load (ms). */
  testTimeLimitMs: number;
  /** Most events one rule test may give. */
  testMaxEvents: number;
  /** `--from-savepoint PATH`: copy this savepoint into the (empty) data dir before opening. */
  fromSavepoint: string | null;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Kind = 'string' | 'port' | 'int' | 'positive-int' | 'mqtt-url' | 'smtp-url' | 'log-level' | 'path';

interface Setting {
  key: keyof Config;
  env: string | null;
  flag: string;
  kind: Kind;
  default: string | number | null;
  meaning: string;
}

/** Every setting: the README table is built from this. */
export const SETTINGS: readonly Setting[] = [
  { key: 'host', env: 'VIGIL_HOST', flag: 'host', kind: 'string', default: '127.0.0.1', meaning: 'HTTP listen address. Anything but loopback (127.0.0.0/8, ::1, localhost) requires VIGIL_API_TOKEN.' },
  { key: 'port', env: 'VIGIL_PORT', flag: 'port', kind: 'port', default: 8080, meaning: 'HTTP port (0: any free port).' },
  { key: 'dataDir', env: 'VIGIL_DATA_DIR', flag: 'data-dir', kind: 'path', default: './data', meaning: 'State directory (LMDB): partial matches, timers, watermarks, outbox, idempotency keys.' },
  { key: 'rulesDir', env: 'VIGIL_RULES_DIR', flag: 'rules-dir', kind: 'path', default: './rules', meaning: 'Directory of `*.vigil` files, loaded at start and hot-loaded on change.' },
  { key: 'mqttUrl', env: 'VIGIL_MQTT_URL', flag: 'mqtt-url', kind: 'mqtt-url', default: null, meaning: 'MQTT broker (mqtt://, mqtts://, ws://, wss://) for `source mqtt` ingest and `to mqtt` alerts; none: MQTT off.' },
  { key: 'smtpUrl', env: 'VIGIL_SMTP_URL', flag: 'smtp-url', kind: 'smtp-url', default: null, meaning: 'SMTP server (smtp:// or smtps://, credentials in the URL) for `to email`; none: email deliveries fail.' },
  { key: 'mailFrom', env: 'VIGIL_MAIL_FROM', flag: 'mail-from', kind: 'string', default: null, meaning: 'From address of alert mail.' },
  { key: 'apiToken', env: 'VIGIL_API_TOKEN', flag: 'api-token', kind: 'string', default: null, meaning: 'Bearer token required by rule writes (PUT/DELETE /rules/:id) and /admin/*. Reads, ingest, validate and backtest stay open.' },
  { key: 'checkpointMs', env: 'VIGIL_CHECKPOINT_MS', flag: 'checkpoint-ms', kind: 'int', default: 5, meaning: 'Group commit: how long changes gather after an idle period before a commit starts (ms); under load commits run back to back. An ingest is answered after the commit that holds it.' },
  { key: 'logLevel', env: 'VIGIL_LOG_LEVEL', flag: 'log-level', kind: 'log-level', default: 'info', meaning: `JSON log level: ${LOG_LEVELS.join(', ')}.` },
  { key: 'bodyLimit', env: 'VIGIL_BODY_LIMIT', flag: 'body-limit', kind: 'positive-int', default: 16 * 1024 * 1024, meaning: 'Largest request body in bytes; larger bodies get 413.' },
  { key: 'idempotencyTtlMs', env: 'VIGIL_IDEMPOTENCY_TTL_MS', flag: 'idempotency-ttl-ms', kind: 'int', default: 24 * 60 * 60 * 1000, meaning: 'How long an ingest Idempotency-Key is remembered (ms).' },
  { key: 'outboxKeep', env: 'VIGIL_OUTBOX_KEEP', flag: 'outbox-keep', kind: 'int', default: 100_000, meaning: 'Alerts kept in the outbox (GET /alerts); the oldest whose deliveries are all final are pruned beyond it.' },
  { key: 'lateKeep', env: 'VIGIL_LATE_KEEP', flag: 'late-keep', kind: 'int', default: 10_000, meaning: 'Late events kept per stream on the late side output; the oldest are pruned beyond it.' },
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
      out[s.key] = s.default;
      continue;
    }
    out[s.key] = convert(s.kind, raw, source);
  }
  return out as unknown as Config;
}

function convert(kind: Kind, raw: string, source: string): string | number {
  const value = raw.trim();
  const bad = (want: string): never => {
    throw new ConfigError(`${source}: ${JSON.stringify(raw)} is not ${want}`);
  };
  switch (kind) {
    case 'string':
    case 'path':
      if (value === '') bad('a non-empty value');
      return value;
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
    const def = s.default === null ? '(none)' : s.key === 'bodyLimit' ? '16777216 (16 MiB)' : s.key === 'idempotencyTtlMs' ? '86400000 (24 h)' : String(s.default);
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
  return { ...config, apiToken: config.apiToken === null ? null : '***', mqttUrl: hideCreds(config.mqttUrl), smtpUrl: hideCreds(config.smtpUrl) };
}
