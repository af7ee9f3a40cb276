// After a broker outage MQTT ingest resumes within seconds of the broker's return (issue 15
// case 10): the reconnect backoff is capped low (VIGIL_MQTT_RECONNECT_MAX_MS, 3 s by default),
// where it used to double up to 30 s. A real Mosquitto on a free 127.0.0.1 port, stopped and
// started again on the same port (`max_queued_messages 0`, no persistence); events published
// after the return reach the core.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttConnection } from '../../src/ingest/mqtt-connection.js';
import { MqttSource } from '../../src/ingest/mqtt-source.js';
import { openTestCore, until } from '../dispatch/helpers.js';

const MOSQUITTO = '/usr/sbin/mosquitto';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts mosquitto on `port`; resolves once it accepts TCP connections. */
async function startMosquitto(conf: string, port: number): Promise<ChildProcess> {
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  await until(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      }),
    10_000,
    'mosquitto listening',
  );
  return child;
}

async function stopMosquitto(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups = [];
});

describe('MQTT reconnect after a broker outage', () => {
  it('reconnects within seconds of the broker coming back, with the default backoff cap, and ingest resumes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-mosquitto-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n`);
    let broker = await startMosquitto(conf, port);
    cleanups.push(() => stopMosquitto(broker));
    const url = `mqtt://127.0.0.1:${port}`;

    const t = await openTestCore(`stream readings {
  key device
  fields { device: string
           temp: number }
  source mqtt "vigil-test/reconnect/+"
}
rule hot {
  from readings
  match x: temp > 50
}
`);
    cleanups.push(() => t.cleanup());
    // Default reconnect settings: the cap under test is the default one.
    const conn = new MqttConnection({ url, clientId: `vigil-test-reconnect-${port}`, clean: true });
    const source = new MqttSource(t.core, conn);
    cleanups.push(() => conn.close({ force: true }), () => source.stop());
    await source.start();
    await conn.waitConnected(5000);

    // The outage: long enough that the old backoff (1, 2, 4, 8, … up to 30 s) would wait 8 s or more.
    await stopMosquitto(broker);
    await until(() => !conn.connected, 5000, 'disconnected');
    await new Promise((r) => setTimeout(r, 9000));
    expect(conn.connected).toBe(false);
    // Never more than the cap (3 s) plus its jitter (20 %) between two attempts.
    expect(conn.client.options.reconnectPeriod!).toBeLessThanOrEqual(3600);

    broker = await startMosquitto(conf, port);
    const back = Date.now();
    await until(() => conn.connected, 15_000, 'reconnected');
    const ms = Date.now() - back;
    console.log(`mqtt reconnect: connected ${ms} ms after the broker came back (default cap 3000 ms)`);
    expect(ms).toBeLessThan(6000);

    // Ingest resumes: an event published now reaches the stream.
    const pub = await mqtt.connectAsync(url, { clientId: `vigil-test-reconnect-pub-${port}` });
    cleanups.push(() => pub.endAsync());
    await until(async () => {
      await pub.publishAsync('vigil-test/reconnect/x', JSON.stringify({ device: 'd1', temp: 70 }), { qos: 1 });
      return t.core.streams().find((s) => s.name === 'readings')!.accepted > 0;
    }, 10_000, 'an event ingested after the outage');
  }, 60_000);
});
