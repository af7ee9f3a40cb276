// The MQTT sink against a real broker over TCP: Mosquitto when VIGIL_TEST_MQTT_URL is set,
// else an in-process aedes broker. A second client subscribes and checks what arrives.
// Topics live under a per-run prefix because an external broker is shared.

import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/alert.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { sampleAlert } from '../helpers/alert-fixture.js';
import { refusedUrl } from '../helpers/http-receiver.js';
import { startTestBroker, testTopicPrefix, type TestBroker } from '../helpers/mqtt-broker.js';

const never = new AbortController().signal;
const prefix = testTopicPrefix();

let broker: TestBroker;
let publisher: MqttClient;
let subscriber: MqttClient;
let sink: MqttSink;
const retainedTopics: string[] = [];

function mqttDelivery(topic: string, qos: 0 | 1 | 2, retain = false): Delivery {
  return { kind: 'mqtt', topic, qos, retain };
}

/** The next message on `topic` seen by `client`, or a rejection after `timeoutMs`. */
function nextMessage(client: MqttClient, topic: string, timeoutMs = 3000): Promise<IPublishPacket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`no message on ${topic} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (t: string, _payload: Buffer, packet: IPublishPacket) => {
      if (t !== topic) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(packet);
    };
    client.on('message', onMessage);
  });
}

beforeAll(async () => {
  broker = await startTestBroker();
  const options = { reconnectPeriod: 0, connectTimeout: 5000 };
  publisher = await mqtt.connectAsync(broker.url, options);
  subscriber = await mqtt.connectAsync(broker.url, options);
  await subscriber.subscribeAsync(`${prefix}/#`, { qos: 2 });
  sink = new MqttSink(publisher);
});

afterAll(async () => {
  // Clear retained messages on the (possibly shared) broker.
  for (const topic of retainedTopics) await publisher.publishAsync(topic, '', { retain: true, qos: 1 });
  await sink.close();
  await subscriber.endAsync();
  await publisher.endAsync();
  await broker.close();
});

describe('mqtt sink', () => {
  it.each([0, 1, 2] as const)('publishes the alert JSON with QoS %i', async (qos) => {
    const alert = sampleAlert();
    const topic = `${prefix}/alerts/qos${qos}/${alert.key as string}`;
    const arrived = nextMessage(subscriber, topic);
    expect(await sink.deliver(alert, mqttDelivery(topic, qos), never)).toEqual({ ok: true });
    const packet = await arrived;
    expect(JSON.parse(packet.payload.toString()) as unknown).toEqual(alert);
    expect((JSON.parse(packet.payload.toString()) as { id: string }).id).toBe(alert.id);
    expect(packet.qos).toBe(qos);
    expect(packet.retain).toBe(false);
  });

  it('publishes retained messages that a later subscriber receives with the retain flag', async () => {
    const alert = sampleAlert();
    const topic = `${prefix}/alerts/retained`;
    retainedTopics.push(topic);
    expect(await sink.deliver(alert, mqttDelivery(topic, 1, true), never)).toEqual({ ok: true });

    const late = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    try {
      const arrived = nextMessage(late, topic);
      await late.subscribeAsync(topic, { qos: 1 });
      const packet = await arrived;
      expect(packet.retain).toBe(true);
      expect(JSON.parse(packet.payload.toString()) as unknown).toEqual(alert);
    } finally {
      await late.endAsync();
    }
  });

  it('fails the attempt, retryable, when the client is not connected', async () => {
    // A client whose broker is unreachable: it never connects (nothing listens on the port).
    const port = new URL(await refusedUrl()).port;
    const offline = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 1000 });
    offline.on('error', () => undefined);
    const offlineSink = new MqttSink(offline);
    try {
      const outcome = await offlineSink.deliver(sampleAlert(), mqttDelivery(`${prefix}/never`, 1), never);
      expect(outcome).toEqual({ ok: false, retryable: true, error: 'mqtt client not connected' });
    } finally {
      await offlineSink.close();
      await offline.endAsync(true);
    }

    // A client that was connected and has been ended.
    const ended = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    await ended.endAsync();
    expect(await new MqttSink(ended).deliver(sampleAlert(), mqttDelivery(`${prefix}/never`, 0), never)).toMatchObject({
      ok: false,
      retryable: true,
    });
  });

  it('rejects a topic with wildcards without retrying', async () => {
    const outcome = await sink.deliver(sampleAlert(), mqttDelivery(`${prefix}/+/bad`, 1), never);
    expect(outcome).toMatchObject({ ok: false, retryable: false });
  });

  it('does not close the shared client', async () => {
    const shared = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    const own = new MqttSink(shared);
    await own.close();
    expect(shared.connected).toBe(true);
    expect(await own.deliver(sampleAlert(), mqttDelivery(`${prefix}/closed`, 0), never)).toMatchObject({ ok: false, retryable: true });
    await shared.endAsync();
  });
});
