// Events checked at the door over MQTT, against a real broker over TCP (Mosquitto when
// VIGIL_TEST_MQTT_URL is set, else in-process aedes) and a real core (LMDB in a temp dir):
// - an oversized payload, or an oversized event inside an array payload, is rejected with its
//   reason (counted, logged, published on the rejected topic), the message is acknowledged (not
//   redelivered to the same session), and ingest goes on with the next messages;
// - event ids holding lone surrogates stay distinct (LMDB keys keep them apart; a guard against
//   a key form that would not).

import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { MqttConnection } from '../../src/ingest/mqtt-connection.js';
import { MqttSource, type MqttOutcome } from '../../src/ingest/mqtt-source.js';
import { startTestBroker, testTopicPrefix, type TestBroker } from '../helpers/mqtt-broker.js';
import { openTestCore, until } from '../dispatch/helpers.js';

const silent = pino({ level: 'silent' });
const rand = () => randomBytes(4).toString('hex');

let broker: TestBroker;
let publisher: MqttClient;
let cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  broker = await startTestBroker();
  publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 100, connectTimeout: 5000, clientId: `vigil-test-pub-${rand()}` });
});
afterAll(async () => {
  await publisher.endAsync();
  await broker.close();
});
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups = [];
});

it('an oversized MQTT payload is dropped with a count and a reason, acknowledged, and ingest goes on', async () => {
  const prefix = testTopicPrefix();
  const s = `s_${rand()}`;
  const LIMIT = 2000;
  const t = await openTestCore(
    `stream ${s} {
  key device
  source mqtt "${prefix}/in"
}
rule r_${s} { from ${s} match x: n < 0 alert info "x" to log }
`,
    { maxEventBytes: LIMIT, logger: silent },
  );
  cleanups.push(() => t.cleanup());
  const clientId = `vigil-test-${rand()}`;
  const connect = () => new MqttConnection({ url: broker.url, clientId, clean: false, reconnectPeriodMs: 100, maxReconnectPeriodMs: 400, connectTimeoutMs: 3000, logger: silent });
  const conn = connect();
  cleanups.push(() => conn.close({ force: true }));
  await conn.waitConnected(5000);
  const outcomes: MqttOutcome[] = [];
  const rejectedPrefix = `${prefix}/rejected/`;
  const source = new MqttSource(t.core, conn, { onMessage: (_s, o) => outcomes.push(o), rejectedTopicPrefix: rejectedPrefix, logger: silent });
  cleanups.push(() => source.stop());
  await source.start();

  const published: { topic: string; error: string }[] = [];
  const watcher = await mqtt.connectAsync(broker.url, { clientId: `vigil-test-watch-${rand()}` });
  cleanups.push(() => watcher.endAsync(true));
  watcher.on('message', (_topic, payload) => published.push(JSON.parse(payload.toString()) as { topic: string; error: string }));
  await watcher.subscribeAsync(`${rejectedPrefix}#`, { qos: 0 });

  const st = t.core.engine.streams.get(s)!;
  const pub = (body: unknown) => publisher.publishAsync(`${prefix}/in`, JSON.stringify(body), { qos: 1 });
  await pub({ device: 'd', n: 1 });
  await pub({ device: 'd', n: 2, pad: 'x'.repeat(LIMIT) }); // one event, too large
  await pub([{ device: 'd', n: 3 }, { device: 'd', n: 4, pad: 'y'.repeat(LIMIT) }, { device: 'd', n: 5 }]); // one of three too large
  await pub({ device: 'd', n: 6 });
  await until(() => outcomes.length === 4, 5000, 'four messages handled');
  expect(outcomes).toEqual(['accepted', 'rejected', 'rejected', 'accepted']);
  expect(st.counters).toMatchObject({ accepted: 4, rejected: 2, tooLarge: 2 });
  await until(() => published.length === 2, 5000, 'rejections published');
  expect(published[0]!.error).toMatch(/^the event is 20\d\d bytes, over the maximum event size of 2000 bytes \(VIGIL_MAX_EVENT_BYTES\)$/);
  expect(published[1]!.error).toMatch(/^event 1: the event is 20\d\d bytes, over the maximum event size of 2000 bytes/);

  // Acknowledged: the same session, connected again, gets nothing back.
  await source.stop();
  await conn.close();
  const conn2 = connect();
  cleanups.push(() => conn2.close({ force: true }));
  const source2 = new MqttSource(t.core, conn2, { onMessage: (_s, o) => outcomes.push(o), rejectedTopicPrefix: rejectedPrefix, logger: silent });
  cleanups.push(() => source2.stop());
  await source2.start();
  await conn2.waitConnected(5000);
  await pub({ device: 'd', n: 7 });
  await until(() => outcomes.length === 5, 5000, 'the next message');
  await new Promise((r) => setTimeout(r, 300));
  expect(outcomes.slice(4)).toEqual(['accepted']);
  expect(st.counters).toMatchObject({ accepted: 5, rejected: 2, tooLarge: 2 });
});

it('event ids with lone surrogates stay distinct: none is dropped as a duplicate of another, across a restart', async () => {
  const prefix = testTopicPrefix();
  const s = `s_${rand()}`;
  const t = await openTestCore(
    `stream ${s} {
  key device
  id event_id
  source mqtt "${prefix}/in"
}
rule r_${s} { from ${s} match x: n < 0 alert info "x" to log }
`,
    { logger: silent },
  );
  cleanups.push(() => t.cleanup());
  const outcomes: MqttOutcome[] = [];
  const attach = async (): Promise<{ conn: MqttConnection; source: MqttSource }> => {
    const conn = new MqttConnection({ url: broker.url, clientId: `vigil-test-${rand()}`, reconnectPeriodMs: 100, maxReconnectPeriodMs: 400, connectTimeoutMs: 3000, logger: silent });
    cleanups.push(() => conn.close({ force: true }));
    await conn.waitConnected(5000);
    const source = new MqttSource(t.core, conn, { onMessage: (_s, o) => outcomes.push(o), rejectedTopicPrefix: `${prefix}/rejected/`, logger: silent });
    cleanups.push(() => source.stop());
    await source.start();
    return { conn, source };
  };
  const first = await attach();
  const ids = ['\ud800', '\udbff', '\ufffd', '\ud800'];
  // JSON.stringify writes the lone surrogates as \udXXX escapes: the payload is valid UTF-8.
  for (const [n, id] of ids.entries()) await publisher.publishAsync(`${prefix}/in`, JSON.stringify({ device: 'd', event_id: id, n }), { qos: 1 });
  await until(() => outcomes.length === ids.length, 5000, 'all handled');
  // (Answers may come back in another order than the messages: a duplicate answers at once.)
  expect([...outcomes].sort()).toEqual(['accepted', 'accepted', 'accepted', 'duplicate']);
  expect(t.core.engine.streams.get(s)!.counters.accepted).toBe(3);
  await first.source.stop();
  await first.conn.close();
  await t.reopen();
  await attach();
  const st = () => t.core.engine.streams.get(s)!;
  expect(st().counters.accepted).toBe(3);
  // After a restart the stored ids still tell them apart.
  await publisher.publishAsync(`${prefix}/in`, JSON.stringify({ device: 'd', event_id: '\udbff', n: 9 }), { qos: 1 });
  await publisher.publishAsync(`${prefix}/in`, JSON.stringify({ device: 'd', event_id: '\udfff', n: 10 }), { qos: 1 });
  await until(() => outcomes.length === ids.length + 2, 5000, 'both handled');
  expect(outcomes.slice(ids.length).sort()).toEqual(['accepted', 'duplicate']);
  expect(st().counters.accepted).toBe(4);
});
