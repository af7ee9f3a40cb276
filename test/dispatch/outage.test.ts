// Delivery outlasts outages (issue 15 case 9, issue 8 item 5), against real receivers on
// 127.0.0.1 and a real core (LMDB in a temp dir), with the timings shortened through the
// policy (not the defaults): a webhook down for many times the old retry window receives every
// alert exactly once when it is back, across a restart; a dead sink's backlog is bounded by
// bytes and by age (the oldest marked failed, counted, visible after a restart); failed
// deliveries can be queued again; a sink that was not configured waits and is delivered after
// a restart with it configured.

import { testWebhookPolicy } from '../helpers/http-receiver.js';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { DurableEngine } from '../../src/engine/durable-engine.js';
import { LmdbStore, type Op } from '../../src/state/lmdb-store.js';
import type { ServiceOptions } from '../../src/engine/types.js';
import { createSinkRegistry, type SinkSettings } from '../../src/sinks/registry.js';
import { retryPolicy, type RetryPolicy } from '../../src/sinks/retry.js';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.js';
import { startTestBroker, testTopicPrefix, type TestBroker } from '../helpers/mqtt-broker.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import { openTestCore, until, type TestCore } from './helpers.js';

const silent = pino({ level: 'silent' });

const stream = `stream readings {
  key device
  fields { device: string
           temp: number }
}
`;

function rule(name: string, sinks: string): string {
  return `rule ${name} {
  from readings
  match x: temp > 50
  alert high "Device {device} at {x.temp}"
${sinks}
}
`;
}

type Alerts = ReturnType<DurableEngine['alerts']>['alerts'];
const alertsOf = (core: DurableEngine, r: string): Alerts => core.alerts({ rule: r, limit: 1000 }).alerts;
const states = (core: DurableEngine, r: string, sink = '0:webhook'): string[] => alertsOf(core, r).map((a) => a.delivery[sink]!.state);

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups = [];
});

/** A dispatcher over `core` with its own sink registry; closed after the test (or by the returned stop). */
function dispatch(core: DurableEngine, policy: RetryPolicy, sinks: Partial<SinkSettings> = {}) {
  const registry = createSinkRegistry({ logger: silent, webhook: { policy: testWebhookPolicy() }, ...sinks });
  const dispatcher = new Dispatcher(core, registry, { policy });
  const stop = async () => {
    await dispatcher.stop();
    await registry.close();
  };
  cleanups.push(stop);
  dispatcher.start();
  return { dispatcher, registry, stop };
}

async function core(rules: string, extra: Partial<ServiceOptions> = {}): Promise<TestCore> {
  const t = await openTestCore(stream + rules, extra);
  cleanups.push(() => t.cleanup());
  return t;
}

const readings = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ device: `d${from + i}`, temp: 60 + i }));

describe('delivery through an outage', () => {
  let receiver: HttpReceiver;
  beforeAll(async () => {
    receiver = await startHttpReceiver();
  });
  afterAll(async () => {
    await receiver.close();
  });

  it('a webhook down (503) for many times the old retry window, with a restart in the middle, receives every alert exactly once when back', async () => {
    // Shortened timings: pauses of at most 200 ms, given up after 60 s. The old policy gave up
    // after 8 attempts; here the receiver stays down for well over 8 attempts per alert.
    const policy = retryPolicy({ baseDelayMs: 20, maxDelayMs: 200, maxAgeMs: 60_000, timeoutMs: 10_000 });
    let down = true;
    const delivered: string[] = [];
    receiver.reply((req) => {
      if (down) return { status: 503 };
      delivered.push(JSON.parse(req.text).id as string);
      return { status: 204 };
    });
    const before = receiver.requests.length;
    const t = await core(rule('outage', `    to webhook "${receiver.url}/outage"`));
    let d = dispatch(t.core, policy);
    const N = 40;
    await t.core.ingest('readings', readings(N), Date.now());
    expect(alertsOf(t.core, 'outage')).toHaveLength(N);
    // Down long enough that every delivery has failed more than 8 times.
    await until(() => alertsOf(t.core, 'outage').every((a) => a.delivery['0:webhook']!.attempts > 8), 20_000, 'more than 8 attempts each');
    expect(states(t.core, 'outage').every((s) => s === 'retrying')).toBe(true);

    // A restart of the service in the middle of the outage: the retries resume with their schedule.
    await d.stop();
    const core2 = await t.reopen();
    expect(core2.unfinishedDeliveries()).toHaveLength(N);
    expect(core2.outboxBacklog()).toEqual({ webhook: N });
    d = dispatch(core2, policy);
    await until(() => receiver.requests.length - before > N * 10, 20_000, 'retries after the restart');
    expect(states(core2, 'outage').every((s) => s === 'retrying' || s === 'pending')).toBe(true);

    // The receiver is back: every alert arrives, each exactly once (one 2xx per alert id).
    down = false;
    await until(() => states(core2, 'outage').every((s) => s === 'delivered'), 10_000, 'all delivered');
    const ids = alertsOf(core2, 'outage').map((a) => a.id);
    expect(new Set(delivered)).toEqual(new Set(ids));
    // Exactly once per alert id: a repeat (an attempt that timed out on the sender's side under
    // load after the receiver had taken it) carries the same Idempotency-Key, so the receiver drops it.
    expect(delivered.length).toBeGreaterThanOrEqual(N);
    // Every request of an alert, the failed ones included, carried that alert's id as its Idempotency-Key.
    for (const r of receiver.requests.slice(before)) expect(r.headers['idempotency-key']).toBe(JSON.parse(r.text).id);
    expect(core2.outboxBacklog()).toEqual({});
  }, 60_000);

  it('a delivery is failed only past its maximum age, with the reason; counted as max_age', async () => {
    receiver.reply(() => ({ status: 503 }));
    const policy = retryPolicy({ baseDelayMs: 10, maxDelayMs: 50, maxAgeMs: 600, timeoutMs: 1000 });
    const t = await core(rule('aged', `    to webhook "${receiver.url}/aged"`));
    dispatch(t.core, policy);
    const started = Date.now();
    await t.core.ingest('readings', readings(3), Date.now());
    await until(() => states(t.core, 'aged').every((s) => s === 'failed'), 10_000, 'failed at the maximum age');
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    for (const a of alertsOf(t.core, 'aged')) {
      expect(a.delivery['0:webhook']!.lastError).toMatch(/given up after \d+ attempt\(s\) over 600 ms \(the maximum age\); last error: .*503/);
      expect(a.delivery['0:webhook']!.attempts).toBeGreaterThan(3);
    }
    expect(t.core.givenUp.get('webhook max_age')).toBe(3);
    expect(t.core.outboxBacklog()).toEqual({});
  });

  it('a permanent error (400) still fails at once', async () => {
    receiver.reply(() => ({ status: 400 }));
    const t = await core(rule('perm', `    to webhook "${receiver.url}/perm"`));
    dispatch(t.core, retryPolicy({ baseDelayMs: 10, maxDelayMs: 50, maxAgeMs: 60_000 }));
    await t.core.ingest('readings', readings(1), Date.now());
    await until(() => states(t.core, 'perm')[0] === 'failed', 5000, 'failed');
    expect(alertsOf(t.core, 'perm')[0]!.delivery['0:webhook']!.attempts).toBe(1);
  });

  it('failed deliveries are queued again: one alert, or every failed delivery of a sink kind', async () => {
    receiver.reply(() => ({ status: 400 }));
    const t = await core(rule('again', `    to webhook "${receiver.url}/again"\n    to log`));
    const policy = retryPolicy({ baseDelayMs: 10, maxDelayMs: 50, maxAgeMs: 60_000 });
    dispatch(t.core, policy);
    await t.core.ingest('readings', readings(5), Date.now());
    await until(() => states(t.core, 'again').filter((s) => s === 'failed').length === 5, 5000, 'all failed');
    await until(() => states(t.core, 'again', '1:log').every((s) => s === 'delivered'), 5000, 'log delivered');
    const [first, ...rest] = alertsOf(t.core, 'again');
    receiver.reply(() => ({ status: 204 }));
    const before = receiver.requests.length;

    expect(await t.core.retryDeliveries({ alertId: 'no-such-alert' })).toBeNull();
    expect(await t.core.retryDeliveries({ alertId: first!.id })).toBe(1);
    await until(() => alertsOf(t.core, 'again').find((a) => a.id === first!.id)!.delivery['0:webhook']!.state === 'delivered', 5000, 'one retried');
    expect(receiver.requests.length - before).toBe(1);
    expect(receiver.requests.at(-1)!.headers['idempotency-key']).toBe(first!.id);
    // The others are still failed; the log deliveries (delivered) are untouched.
    expect(rest.every((a) => alertsOf(t.core, 'again').find((b) => b.id === a.id)!.delivery['0:webhook']!.state === 'failed')).toBe(true);

    expect(await t.core.retryDeliveries({ sink: 'email' })).toBe(0);
    expect(await t.core.retryDeliveries({ sink: 'webhook' })).toBe(4);
    await until(() => states(t.core, 'again').every((s) => s === 'delivered'), 5000, 'all retried');
    expect(receiver.requests.length - before).toBe(5);
    expect(new Set(receiver.requests.slice(before).map((r) => r.headers['idempotency-key']))).toEqual(new Set(alertsOf(t.core, 'again').map((a) => a.id)));
    expect(states(t.core, 'again', '1:log').every((s) => s === 'delivered')).toBe(true);
    const a = alertsOf(t.core, 'again')[0]!.delivery['0:webhook']!;
    expect(a.attempts).toBe(1); // counted from the retry
  });
});

describe('a dead sink: the outbox stays bounded', () => {
  let receiver: HttpReceiver;
  beforeAll(async () => {
    receiver = await startHttpReceiver(() => 'hang');
  });
  afterAll(async () => {
    await receiver.close();
  });

  it('by count and bytes: the oldest undelivered are marked failed with the reason, counted, and stay so across a restart', async () => {
    // A hanging webhook: attempts time out; 4 in flight, the rest queued.
    const policy = retryPolicy({ baseDelayMs: 50, maxDelayMs: 200, maxAgeMs: 3600_000, timeoutMs: 5000 });
    const t = await core(rule('dead', `    to webhook "${receiver.url}/dead"`), { outboxKeep: 1000, outboxMaxBytes: 60_000 });
    dispatch(t.core, policy);
    for (let i = 0; i < 10; i++) await t.core.ingest('readings', readings(20, i * 20), Date.now());
    await t.core.commitNow();
    const totals = t.core.outboxTotals();
    const oneAlert = totals.bytes / totals.count;
    expect(oneAlert).toBeGreaterThan(300);
    // The undelivered half of the outbox: at most 30,000 bytes (and one commit's alerts more).
    expect(totals.backlogBytes).toBeLessThanOrEqual(30_000 + 20 * oneAlert);
    expect(totals.bytes).toBeLessThanOrEqual(60_000 + 20 * oneAlert);
    const all = alertsOf(t.core, 'dead');
    const failed = all.filter((a) => a.delivery['0:webhook']!.state === 'failed');
    const open = all.filter((a) => a.delivery['0:webhook']!.state !== 'failed');
    expect(failed.length).toBeGreaterThan(0);
    expect(open.length).toBe(totals.backlogCount);
    for (const a of failed) expect(a.delivery['0:webhook']!.lastError).toMatch(/undelivered alerts over half the outbox/);
    // The oldest went first: every failed alert is older than every undelivered one.
    expect(Math.max(...failed.map((a) => Date.parse(a.time)))).toBeLessThanOrEqual(Math.min(...open.map((a) => Date.parse(a.time))));
    const given = t.core.givenUp.get('webhook backlog_full')!;
    expect(given).toBeGreaterThanOrEqual(failed.length);
    // O(1) backlog gauge, kept incrementally.
    expect(t.core.outboxBacklog()).toEqual({ webhook: open.length });

    // Across a restart: the totals come back without a scan, the failed stay failed with their reason.
    const core2 = await t.reopen();
    expect(core2.outboxTotals()).toEqual(totals);
    expect(core2.outboxBacklog()).toEqual({ webhook: open.length });
    expect(core2.unfinishedDeliveries()).toHaveLength(open.length);
    const after = alertsOf(core2, 'dead');
    expect(after.filter((a) => a.delivery['0:webhook']!.state === 'failed').map((a) => a.id)).toEqual(failed.map((a) => a.id));
    // More alerts after the restart: still bounded.
    dispatch(core2, policy);
    await core2.ingest('readings', readings(100, 1000), Date.now());
    await core2.commitNow();
    const t2 = core2.outboxTotals();
    expect(t2.backlogBytes).toBeLessThanOrEqual(30_000 + 100 * oneAlert);
    expect(t2.bytes).toBeLessThanOrEqual(60_000 + 100 * oneAlert);
    await core2.commitNow();
    expect(core2.outboxTotals().backlogBytes).toBeLessThanOrEqual(30_000);
    expect(core2.outboxTotals().bytes).toBeLessThanOrEqual(60_000);
    expect(core2.store.dbs.outbox.getCount()).toBe(core2.outboxTotals().count);
    expect(core2.store.dbs.unfinished.getCount()).toBe(core2.outboxTotals().backlogCount);
  }, 30_000);

  it("the dispatcher's queue of a hanging sink stays bounded too while the core gives up its backlog", async () => {
    const policy = retryPolicy({ baseDelayMs: 50, maxDelayMs: 200, maxAgeMs: 3600_000, timeoutMs: 5000 });
    const t = await core(rule('flood', `    to webhook "${receiver.url}/flood"`), { outboxKeep: 200 });
    const { dispatcher } = dispatch(t.core, policy);
    for (let i = 0; i < 30; i++) await t.core.ingest('readings', readings(200, i * 200), Date.now());
    await t.core.commitNow();
    expect(t.core.givenUp.get('webhook backlog_full')).toBeGreaterThan(5000);
    expect(t.core.outboxTotals().backlogCount).toBeLessThanOrEqual(100);
    // 6,000 alerts were queued; what is left waiting is the live backlog plus at most the
    // not yet compacted cancelled jobs (fewer than 1,024 or half the list).
    const ready = dispatcher.stats().reduce((n, q) => n + q.ready, 0);
    expect(ready).toBeLessThanOrEqual(2 * 1024 + 200);
  }, 30_000);

  it('state written before the outbox totals were stored: the first start scans once and rebuilds them and the index', async () => {
    const t = await core(rule('legacy', '    to log')); // no dispatcher: the log deliveries stay pending
    await t.core.ingest('readings', readings(30), Date.now());
    await t.core.commitNow();
    const totals = t.core.outboxTotals();
    await t.core.close();
    // The old layout: no stored totals, no index of unfinished entries, no sizes in the entries.
    const store = LmdbStore.open(t.options.dataDir);
    const ops: Op[] = [{ db: 'meta', key: 'outbox' }];
    for (const { key, value } of store.range<Record<string, unknown>>('outbox')) {
      const { bytes: _bytes, ...old } = value;
      ops.push({ db: 'outbox', key, value: old });
    }
    for (const { key } of store.range('unfinished')) ops.push({ db: 'unfinished', key });
    store.commit(ops);
    expect(store.dbs.unfinished.getCount()).toBe(0);
    await store.close();

    t.core = await DurableEngine.open(t.options);
    const again = t.core.outboxTotals();
    expect(again.count).toBe(totals.count);
    expect(again.backlogCount).toBe(30);
    expect(Math.abs(again.bytes - totals.bytes)).toBeLessThan(totals.bytes * 0.05);
    expect(t.core.outboxBacklog()).toEqual({ log: 30 });
    expect(t.core.unfinishedDeliveries()).toHaveLength(30);
    expect(t.core.store.dbs.unfinished.getCount()).toBe(30);
    for (const { value } of t.core.store.range<{ bytes?: number }>('outbox')) expect(value.bytes).toBeGreaterThan(0);
  });

  it('by age: queued deliveries that never got an attempt are failed at the maximum age', async () => {
    const policy = retryPolicy({ baseDelayMs: 50, maxDelayMs: 200, maxAgeMs: 400, timeoutMs: 800 });
    const t = await core(rule('stale', `    to webhook "${receiver.url}/stale"`));
    dispatch(t.core, policy);
    await t.core.ingest('readings', readings(30), Date.now());
    // 4 attempts in flight at a time (hanging), 800 ms each: most never get an attempt before 400 ms.
    await until(() => states(t.core, 'stale').every((s) => s === 'failed'), 10_000, 'all failed by age');
    const never = alertsOf(t.core, 'stale').filter((a) => a.delivery['0:webhook']!.attempts === 0);
    expect(never.length).toBeGreaterThan(20);
    for (const a of never) expect(a.delivery['0:webhook']!.lastError).toMatch(/given up after 0 attempt\(s\) over 400 ms/);
    expect(t.core.givenUp.get('webhook max_age')).toBe(30);
  });
});

describe('a sink that is not configured waits', () => {
  let smtp: TestSmtpServer;
  let broker: TestBroker;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    broker = await startTestBroker();
  });
  afterAll(async () => {
    await smtp.close();
    await broker.close();
  });

  it('email without VIGIL_SMTP_URL is `waiting`, and delivered after a restart with it set', async () => {
    const t = await core(rule('mail', `    to email "ops@example.com" subject "Hot {device}"`));
    const policy = retryPolicy({ baseDelayMs: 10, maxDelayMs: 50, maxAgeMs: 60_000, timeoutMs: 5000 });
    const first = dispatch(t.core, policy); // no smtpUrl
    await t.core.ingest('readings', readings(2), Date.now());
    await until(() => states(t.core, 'mail', '0:email').every((s) => s === 'waiting'), 5000, 'waiting');
    const a = alertsOf(t.core, 'mail')[0]!.delivery['0:email']!;
    expect(a.lastError).toMatch(/email sink not configured: set VIGIL_SMTP_URL/);
    expect(a.attempts).toBe(0);
    expect(t.core.outboxBacklog()).toEqual({ email: 2 });
    // Not failed later either (well within the maximum age).
    await new Promise((r) => setTimeout(r, 300));
    expect(states(t.core, 'mail', '0:email')).toEqual(['waiting', 'waiting']);

    await first.stop();
    const core2 = await t.reopen();
    const before = smtp.messages.length;
    dispatch(core2, policy, { smtpUrl: smtp.url });
    await until(() => states(core2, 'mail', '0:email').every((s) => s === 'delivered'), 10_000, 'delivered after the restart');
    expect(smtp.messages.length - before).toBe(2);
    expect(smtp.messages.slice(before).every((m) => /Subject: Hot d[01]/.test(m.raw))).toBe(true);
  }, 20_000);

  it('mqtt without VIGIL_MQTT_URL is `waiting`, and published after a restart with a broker', async () => {
    const prefix = testTopicPrefix();
    const t = await core(rule('pub', `    to mqtt "${prefix}/alerts/{device}" qos 1`));
    const policy = retryPolicy({ baseDelayMs: 10, maxDelayMs: 50, maxAgeMs: 60_000, timeoutMs: 5000 });
    const first = dispatch(t.core, policy);
    await t.core.ingest('readings', readings(1), Date.now());
    await until(() => states(t.core, 'pub', '0:mqtt')[0] === 'waiting', 5000, 'waiting');
    expect(alertsOf(t.core, 'pub')[0]!.delivery['0:mqtt']!.lastError).toMatch(/mqtt sink not configured: set VIGIL_MQTT_URL/);
    await first.stop();

    const sub = await mqtt.connectAsync(broker.url, { clientId: `vigil-test-sub-${prefix.replace(/\W/g, '')}` });
    const got: { topic: string; text: string }[] = [];
    sub.on('message', (topic, payload) => got.push({ topic, text: payload.toString() }));
    await sub.subscribeAsync(`${prefix}/alerts/#`, { qos: 1 });
    const client = await mqtt.connectAsync(broker.url, { clientId: `vigil-test-pub-${prefix.replace(/\W/g, '')}` });
    cleanups.push(async () => {
      await sub.endAsync();
      await client.endAsync();
    });
    const core2 = await t.reopen();
    dispatch(core2, policy, { mqttClient: client });
    await until(() => got.length === 1, 10_000, 'published after the restart');
    expect(got[0]!.topic).toBe(`${prefix}/alerts/d0`);
    expect(JSON.parse(got[0]!.text).id).toBe(alertsOf(core2, 'pub')[0]!.id);
    await until(() => states(core2, 'pub', '0:mqtt')[0] === 'delivered', 5000, 'delivered');
  }, 20_000);
});
