// The log sink and the sink registry, writing through a real pino logger to a captured
// destination stream.

import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/alert.js';
import { LogSink, logLevelOf } from '../../src/sinks/log/log-sink.js';
import { createSinkRegistry } from '../../src/sinks/registry.js';
import { WebhookSink } from '../../src/sinks/webhook/webhook-sink.js';
import { sampleAlert } from '../helpers/alert-fixture.js';

const never = new AbortController().signal;
const logDelivery: Delivery = { kind: 'log' };

/** A pino logger writing JSON lines into an array. */
function capturedLogger(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe('log sink', () => {
  it('writes one structured line carrying the alert', async () => {
    const { logger, lines } = capturedLogger();
    const alert = sampleAlert();
    expect(await new LogSink(logger).deliver(alert, logDelivery, never)).toEqual({ ok: true });
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line.level).toBe(50); // high → error
    expect(line.sink).toBe('log');
    expect(line.msg).toBe(`alert card_testing: ${alert.message}`);
    expect(line.alert).toEqual(alert);
  });

  it('maps severities to levels', async () => {
    const { logger, lines } = capturedLogger();
    const sink = new LogSink(logger);
    for (const severity of ['info', 'warning', 'high', 'critical', 'my_own']) {
      await sink.deliver(sampleAlert({ severity }), logDelivery, never);
    }
    expect(lines.map((l) => l.level)).toEqual([30, 40, 50, 50, 40]);
    expect(['info', 'warning', 'high', 'critical', 'x'].map(logLevelOf)).toEqual(['info', 'warn', 'error', 'error', 'warn']);
  });

  it('is always ok, even below the logger level', async () => {
    const { logger, lines } = capturedLogger('error');
    expect(await new LogSink(logger).deliver(sampleAlert({ severity: 'info' }), logDelivery, never)).toEqual({ ok: true });
    expect(lines).toHaveLength(0);
  });

  it('refuses a delivery of another kind', async () => {
    const { logger } = capturedLogger();
    const outcome = await new LogSink(logger).deliver(sampleAlert(), { kind: 'mqtt', topic: 't', qos: 0, retain: false }, never);
    expect(outcome).toMatchObject({ ok: false, retryable: false });
  });
});

describe('sink registry', () => {
  const { logger, lines } = capturedLogger();
  const registry = createSinkRegistry({ logger });
  afterAll(() => registry.close());

  it('builds one sink per kind, on first use', async () => {
    const webhook = registry.sinkFor('webhook');
    expect(webhook).toBeInstanceOf(WebhookSink);
    expect(registry.sinkFor('webhook')).toBe(webhook);
    const log = registry.sinkForDelivery(logDelivery);
    expect(log.kind).toBe('log');
    expect(await log.deliver(sampleAlert(), logDelivery, never)).toEqual({ ok: true });
  });

  it('fails deliveries of a kind whose settings are missing, naming the setting', async () => {
    expect(registry.missingSetting('email')).toBe('VIGIL_SMTP_URL');
    expect(registry.missingSetting('mqtt')).toBe('VIGIL_MQTT_URL');
    expect(registry.missingSetting('webhook')).toBeNull();
    const outcome = await registry
      .sinkFor('email')
      .deliver(sampleAlert(), { kind: 'email', to: ['a@example.com'], subject: '' }, never);
    expect(outcome).toEqual({ ok: false, retryable: false, error: 'email sink not configured: set VIGIL_SMTP_URL' });
    expect(lines.some((l) => l.missing === 'VIGIL_SMTP_URL' && l.level === 40)).toBe(true);
  });
});
