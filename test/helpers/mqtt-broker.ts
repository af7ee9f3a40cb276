// An MQTT broker over TCP for tests: the machine's broker when `VIGIL_TEST_MQTT_URL` is set
// (e.g. Mosquitto on mqtt://127.0.0.1:1883), else an in-process aedes broker on a free
// 127.0.0.1 port.
//
//   const broker = await startTestBroker();
//   const client = await mqtt.connectAsync(broker.url);
//   ...
//   await broker.close();   // in afterAll; a no-op for the external broker
//
// The external broker is shared with other test files and other runs: use a unique topic
// prefix per run (`testTopicPrefix()`), and clear retained messages you publish.

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

export interface TestBroker {
  /** `mqtt://host:port`. */
  url: string;
  /** True for the in-process aedes broker, false for `VIGIL_TEST_MQTT_URL`. */
  inProcess: boolean;
  /** Stops the in-process broker and its connections; leaves an external broker alone. */
  close(): Promise<void>;
}

export async function startTestBroker(): Promise<TestBroker> {
  const external = process.env.VIGIL_TEST_MQTT_URL;
  if (external) return { url: external, inProcess: false, close: async () => {} };

  const broker = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    inProcess: true,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** `vigil-test/<random>`: a topic prefix no other run shares. */
export function testTopicPrefix(): string {
  return `vigil-test/${randomBytes(6).toString('hex')}`;
}
