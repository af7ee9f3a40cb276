// Configuration (src/config.ts): defaults, environment, flags over environment, clear errors
// naming the variable or flag, loopback detection, the README table. And the JSON error
// locator (src/api/body.ts): it agrees with JSON.parse on what is valid, over a seeded fuzz.

import { describe, expect, test } from 'vitest';
import { locateJsonError, lineColumn, parseEvents } from '../../src/api/body.js';
import { ConfigError, isLoopback, loadConfig, redactConfig, renderSettingsTable, SETTINGS } from '../../src/config.js';

describe('loadConfig', () => {
  test('defaults', () => {
    expect(loadConfig([], {})).toEqual({
      host: '127.0.0.1',
      port: 8080,
      dataDir: './data',
      rulesDir: './rules',
      mqttUrl: null,
      mqttClientId: null,
      mqttCa: null,
      mqttCert: null,
      mqttKey: null,
      mqttServername: null,
      mqttRejectUnauthorized: true,
      mqttUsername: null,
      mqttPassword: null,
      smtpUrl: null,
      mailFrom: null,
      smtpCa: null,
      smtpRejectUnauthorized: true,
      tlsCert: null,
      tlsKey: null,
      apiToken: null,
      checkpointMs: 5,
      logLevel: 'info',
      bodyLimit: 16 * 1024 * 1024,
      idempotencyTtlMs: 86_400_000,
      outboxKeep: 100_000,
      lateKeep: 10_000,
      webhookAllow: [],
      envPrefix: 'VIGIL_SECRET_',
      publicUrl: null,
      workTimeMs: 10_000,
      workMemoryMb: 256,
      workConcurrency: 2,
      backtestMaxEvents: 100_000,
      backtestMaxPartials: 200_000,
      maxEventBytes: 1024 * 1024,
      maxLeadMs: 3_600_000,
      lateMaxBytes: 64 * 1024 * 1024,
      outboxMaxBytes: 256 * 1024 * 1024,
      deliveryMaxAgeMs: 86_400_000,
      deliveryMaxBackoffMs: 300_000,
      pageMaxBytes: 8 * 1024 * 1024,
      idempotencySweepBatch: 1000,
      savepointsKeep: 5,
      mqttReconnectMaxMs: 3000,
      testTimeLimitMs: 5_000,
      testMaxEvents: 10_000,
      fromSavepoint: null,
    });
  });

  test('environment, and flags over environment', () => {
    const env = { VIGIL_HOST: '0.0.0.0', VIGIL_PORT: '9000', VIGIL_API_TOKEN: 't', VIGIL_MQTT_URL: 'mqtt://broker:1883', VIGIL_LOG_LEVEL: 'debug', VIGIL_BODY_LIMIT: '100', VIGIL_CHECKPOINT_MS: '5' };
    const c = loadConfig(['--port', '9001', '--data-dir', '/tmp/x', '--from-savepoint', '/sp'], env);
    expect(c).toMatchObject({ host: '0.0.0.0', port: 9001, apiToken: 't', mqttUrl: 'mqtt://broker:1883', logLevel: 'debug', bodyLimit: 100, checkpointMs: 5, dataDir: '/tmp/x', fromSavepoint: '/sp' });
    expect(loadConfig(['--port=7'], {}).port).toBe(7);
  });

  test('work limits: set by flag or variable; the heap has a floor', () => {
    const c = loadConfig(['--work-time-ms', '2500', '--backtest-max-events', '10'], { VIGIL_WORK_MEMORY_MB: '64', VIGIL_WORK_CONCURRENCY: '3', VIGIL_BACKTEST_MAX_PARTIALS: '99' });
    expect(c).toMatchObject({ workTimeMs: 2500, workMemoryMb: 64, workConcurrency: 3, backtestMaxEvents: 10, backtestMaxPartials: 99 });
    expect(() => loadConfig(['--work-memory-mb', '16'], {})).toThrow(/--work-memory-mb: "16" is below the minimum of 32/);
    expect(() => loadConfig([], { VIGIL_WORK_CONCURRENCY: '0' })).toThrow(/VIGIL_WORK_CONCURRENCY/);
  });

  test('TLS settings: paths and booleans', () => {
    const c = loadConfig(['--tls-cert', '/c.pem'], { VIGIL_TLS_KEY: '/k.pem', VIGIL_MQTT_CA: '/ca.pem', VIGIL_MQTT_REJECT_UNAUTHORIZED: 'false', VIGIL_SMTP_REJECT_UNAUTHORIZED: '0', VIGIL_MQTT_PASSWORD: 'sekret9' });
    expect(c).toMatchObject({ tlsCert: '/c.pem', tlsKey: '/k.pem', mqttCa: '/ca.pem', mqttRejectUnauthorized: false, smtpRejectUnauthorized: false });
    expect(JSON.stringify(redactConfig(c))).not.toContain('sekret9');
  });

  test('an empty variable counts as unset', () => {
    expect(loadConfig([], { VIGIL_API_TOKEN: '', VIGIL_PORT: '' })).toMatchObject({ apiToken: null, port: 8080 });
  });

  test.each([
    [[], { VIGIL_PORT: 'eighty' }, /VIGIL_PORT.*port number/],
    [['--port', '70000'], {}, /--port.*port number/],
    [[], { VIGIL_CHECKPOINT_MS: '-1' }, /VIGIL_CHECKPOINT_MS/],
    [['--body-limit', '0'], {}, /--body-limit.*> 0/],
    [[], { VIGIL_LOG_LEVEL: 'loud' }, /VIGIL_LOG_LEVEL.*log level/],
    [[], { VIGIL_MQTT_URL: 'http://x' }, /VIGIL_MQTT_URL.*mqtt:\/\//],
    [['--smtp-url', 'nonsense'], {}, /--smtp-url.*smtp:\/\//],
    [['--nope', '1'], {}, /nope/],
    [[], { VIGIL_MQTT_REJECT_UNAUTHORIZED: 'maybe' }, /VIGIL_MQTT_REJECT_UNAUTHORIZED.*true or false/],
    [['stray'], {}, /stray|positional/i],
  ])('bad value %j %j', (argv, env, message) => {
    expect(() => loadConfig(argv as string[], env as NodeJS.ProcessEnv)).toThrow(ConfigError);
    expect(() => loadConfig(argv as string[], env as NodeJS.ProcessEnv)).toThrow(message);
  });

  test('loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '127.0.0.256']) expect(isLoopback(h)).toBe(false);
  });

  test('the README table names every setting; the redacted config hides secrets', () => {
    const table = renderSettingsTable();
    for (const s of SETTINGS) expect(table).toContain(`--${s.flag}`);
    for (const v of ['VIGIL_HOST', 'VIGIL_PORT', 'VIGIL_DATA_DIR', 'VIGIL_RULES_DIR', 'VIGIL_MQTT_URL', 'VIGIL_SMTP_URL', 'VIGIL_MAIL_FROM', 'VIGIL_API_TOKEN', 'VIGIL_CHECKPOINT_MS', 'VIGIL_LOG_LEVEL', 'VIGIL_BODY_LIMIT', 'VIGIL_IDEMPOTENCY_TTL_MS']) {
      expect(table).toContain(v);
    }
    const shown = JSON.stringify(redactConfig(loadConfig(['--api-token', 'tok123', '--smtp-url', 'smtp://user:pw456@mail:25'], {})));
    expect(shown).not.toContain('tok123');
    expect(shown).not.toContain('pw456');
  });
});

describe('JSON error locator', () => {
  test('positions', () => {
    expect(locateJsonError('{"a": 1}')).toBeNull();
    expect(locateJsonError('{"a": }')).toMatchObject({ line: 1, column: 7 });
    expect(locateJsonError('[1,\n2,\n]')).toMatchObject({ line: 3, column: 1 });
    expect(locateJsonError('"abc')).toMatchObject({ line: 1, column: 1, message: 'unterminated string' });
    expect(locateJsonError('{"a": "\\x"}')).toMatchObject({ column: 8 });
    expect(locateJsonError('[01]')).toMatchObject({ column: 3 });
    expect(locateJsonError('')).toMatchObject({ line: 1, column: 1 });
    expect(locateJsonError('['.repeat(100_000))).toMatchObject({ column: 100_001 });
    expect(lineColumn('ab\ncd\r\nef', 8)).toEqual({ line: 3, column: 2 });
  });

  test('agrees with JSON.parse on validity (seeded fuzz)', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const bases = ['{"a": [1, 2.5e3, -0.1, true, false, null, "x\\n\\u00e9"], "b": {"c": {}}}', '[[], [{}], "", 0]', '  {"k" : "v" }  '];
    const alphabet = ' \n\t{}[],:"\\-+.0123456789eEtrufalsn\u0001x';
    for (let i = 0; i < 3000; i++) {
      let t = bases[i % bases.length]!;
      const edits = 1 + Math.floor(rand() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * (t.length + 1));
        const op = rand();
        const ch = alphabet[Math.floor(rand() * alphabet.length)]!;
        t = op < 0.4 ? t.slice(0, at) + ch + t.slice(at) : op < 0.8 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + ch + t.slice(at + 1);
      }
      let valid = true;
      try {
        JSON.parse(t);
      } catch {
        valid = false;
      }
      const loc = locateJsonError(t);
      expect(loc === null, JSON.stringify(t)).toBe(valid);
      if (loc) expect(loc.offset).toBeLessThanOrEqual(t.length);
    }
  });

  test('parseEvents: object, array, NDJSON lines', () => {
    expect(parseEvents('{"a":1}', 'application/json')).toEqual({ events: [{ a: 1 }], lines: null, kind: 'object' });
    expect(parseEvents('[1,{"a":1}]', 'application/json')).toEqual({ events: [1, { a: 1 }], lines: null, kind: 'array' });
    expect(parseEvents('\n{"a":1}\n\n2\n', 'application/x-ndjson')).toEqual({ events: [{ a: 1 }, 2], lines: [2, 4], kind: 'lines' });
  });
});

describe('VIGIL_PUBLIC_URL', () => {
  test('an http(s) URL is taken; anything else is refused naming the variable', () => {
    expect(loadConfig([], { VIGIL_PUBLIC_URL: 'https://vigil.example.com/base' }).publicUrl).toBe('https://vigil.example.com/base');
    expect(loadConfig(['--public-url', 'http://10.1.2.3:8080'], {}).publicUrl).toBe('http://10.1.2.3:8080');
    for (const bad of ['vigil.example.com', 'ftp://x', 'http://']) {
      expect(() => loadConfig([], { VIGIL_PUBLIC_URL: bad }), bad).toThrow(/VIGIL_PUBLIC_URL: .* is not an http:\/\/ or https:\/\/ URL/);
    }
  });
});
