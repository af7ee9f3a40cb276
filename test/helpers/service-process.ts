// Runs `node bin/vigil.js serve` as a child process (the built dist/: `npm run build` first),
// waits for its "vigil listening on URL" log line, and gives the URL, the output and the exit.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_WEBHOOK_ALLOW } from './http-receiver.js';

export const BIN = fileURLToPath(new URL('../../bin/vigil.js', import.meta.url));

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnResult {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `vigil serve ARGS` (does not wait for it to listen). */
export function spawnServe(args: string[], env: Record<string, string> = {}): SpawnResult {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], {
    // Receivers listen on 127.0.0.1: allowed for every test service (an `env` given wins).
    env: { PATH: process.env.PATH ?? '', VIGIL_LOG_LEVEL: 'info', VIGIL_WEBHOOK_ALLOW: TEST_WEBHOOK_ALLOW, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, output: () => out, exited };
}

/** Spawns `vigil serve ARGS` and resolves once it listens (rejects if it exits first or takes too long). */
export async function startServe(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<ServiceProcess> {
  const p = spawnServe(args, env);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running behind a failed test.
      p.child.kill('SIGKILL');
      reject(new Error(`vigil serve did not listen within ${timeoutMs} ms:\n${p.output()}`));
    }, timeoutMs);
    const check = (): void => {
      const m = /vigil listening on (https?:\/\/[^\s"]+)/.exec(p.output());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    p.child.stdout!.on('data', check);
    void p.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`vigil serve exited (${code ?? signal}) before listening:\n${p.output()}`));
    });
  });
  return { ...p, url };
}
