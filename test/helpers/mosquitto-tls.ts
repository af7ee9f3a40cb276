// A Mosquitto broker (the machine's /usr/sbin/mosquitto, or `mosquitto` on PATH) with one TLS
// listener on a free 127.0.0.1 port that requires client certificates signed by the given CA,
// for tests of MQTT over TLS. Its own config and log in a temp dir; `close()` stops it.
//
//   const broker = await startTlsMosquitto({ ca, cert, key });
//   ... connect to broker.url (mqtts://127.0.0.1:<port>) with a client certificate ...
//   await broker.close();

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface TlsMosquitto {
  url: string;
  port: number;
  output: () => string;
  close(): Promise<void>;
}

/** The mosquitto binary, or null when the machine has none. */
export function mosquittoBinary(): string | null {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/local/bin/mosquitto']) if (existsSync(p)) return p;
  return null;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startTlsMosquitto(files: { ca: string; cert: string; key: string }): Promise<TlsMosquitto> {
  const bin = mosquittoBinary();
  if (bin === null) throw new Error('no mosquitto binary on this machine');
  const dir = mkdtempSync(join(tmpdir(), 'vigil-mosquitto-'));
  // A port picked then freed may be taken by someone else before mosquitto binds it: retry.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        'per_listener_settings false',
        'allow_anonymous true',
        'persistence false',
        'max_queued_messages 0',
        `listener ${port} 127.0.0.1`,
        `cafile ${files.ca}`,
        `certfile ${files.cert}`,
        `keyfile ${files.key}`,
        'require_certificate true',
        'use_identity_as_username true',
        // Started as root, mosquitto would switch to the user `mosquitto`, which cannot read the
        // test's keys: stay the user that made them.
        `user ${userInfo().username}`,
        '',
      ].join('\n'),
    );
    let out = '';
    const child: ChildProcess = spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (out += String(d)));
    child.stderr!.on('data', (d) => (out += String(d)));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let alive = true;
    void exited.then(() => (alive = false));
    const deadline = Date.now() + 10_000;
    while (alive && Date.now() < deadline && !(await tcpOpen(port))) await new Promise((r) => setTimeout(r, 50));
    if (!alive || !(await tcpOpen(port))) {
      child.kill('SIGKILL');
      await exited;
      if (attempt === 4) throw new Error(`mosquitto did not listen on ${port}:\n${out}`);
      continue;
    }
    return {
      url: `mqtts://127.0.0.1:${port}`,
      port,
      output: () => out,
      close: async () => {
        if (alive) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('unreachable');
}
