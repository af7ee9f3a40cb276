// Runs Debian's real `prometheus-alertmanager` and `prometheus` (issue 13) on a free loopback
// port with a temp storage path and a config written by the test, and waits until each says
// it is ready (`GET /-/ready`). Never the packaged system service: every test starts its own
// process and stops it (SIGTERM, then SIGKILL) in `stop()`.
//
// A missing binary is an error that says how to install it (`.ci/run` does): the tests fail,
// they do not skip.
//
//   const am = await startAlertmanager(`route: {receiver: none}\nreceivers: [{name: none}]\n`);
//   await fetch(`${am.url}/api/v2/alerts`);
//   await am.stop();

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ALERTMANAGER_BIN = process.env.VIGIL_TEST_ALERTMANAGER ?? '/usr/bin/prometheus-alertmanager';
export const PROMETHEUS_BIN = process.env.VIGIL_TEST_PROMETHEUS ?? '/usr/bin/prometheus';
export const PROMTOOL_BIN = process.env.VIGIL_TEST_PROMTOOL ?? '/usr/bin/promtool';

const INSTALL_HINT = 'install the Debian packages: apt-get install -y prometheus prometheus-alertmanager (.ci/run does this when they are missing)';

/** Throws, naming the package to install, when `bin` is not an executable file. */
export function requireBinary(bin: string): void {
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`${bin} not found: ${INSTALL_HINT}`);
  }
}

export interface RealProcess {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

/** A port free right now on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function startReady(bin: string, args: (port: number, dir: string) => string[], config: string, configName: string, timeoutMs: number): Promise<RealProcess> {
  requireBinary(bin);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-neighbour-'));
  writeFileSync(join(dir, configName), config);
  const port = await freePort();
  const child = spawn(bin, args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${bin} exited before it was ready:\n${out.slice(-4000)}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${bin} not ready within ${timeoutMs} ms:\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, port, child, output: () => out, stop };
}

/** A real Alertmanager with `config` (alertmanager.yml text); clustering off (no gossip port). */
export async function startAlertmanager(config: string, timeoutMs = 30_000): Promise<RealProcess> {
  return startReady(
    ALERTMANAGER_BIN,
    (port, dir) => [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    config,
    'alertmanager.yml',
    timeoutMs,
  );
}

/** A real Prometheus with `config` (prometheus.yml text). */
export async function startPrometheus(config: string, timeoutMs = 30_000): Promise<RealProcess> {
  return startReady(
    PROMETHEUS_BIN,
    (port, dir) => [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    config,
    'prometheus.yml',
    timeoutMs,
  );
}

/** Polls `check` every 200 ms until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
