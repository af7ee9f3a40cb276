// Helpers of the service benchmarks (bench/service.ts): the service as a child process, a
// keep-alive HTTP client, temp dirs, a private Mosquitto broker, time bounds, and cleanup.
// Everything started here is registered in `cleanups` and undone by `runCleanups()`, which
// the sections call in `finally` (and main.ts on an uncaught failure), so no child process,
// temp dir or broker outlives the bench.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bin/vigil.js of this checkout (dist/bench/ → ../../bin). */
export const VIGIL_BIN = fileURLToPath(new URL('../../bin/vigil.js', import.meta.url));

// ------------------------------------------------------------------ cleanup

const cleanups: { name: string; run: () => Promise<void> | void }[] = [];

/** Registers an undo step; returns a function that runs it once and unregisters it. */
export function onCleanup(name: string, run: () => Promise<void> | void): () => Promise<void> {
  const entry = { name, run };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await entry.run();
  };
}

/** Runs every registered undo step, newest first; never throws. */
export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const entry = cleanups.pop()!;
    try {
      await entry.run();
    } catch (err) {
      console.error(`cleanup ${entry.name} failed: ${(err as Error).message}`);
    }
  }
}

// ------------------------------------------------------------------ time

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class BenchTimeout extends Error {
  override name = 'BenchTimeout';
}

/** Rejects with a clear message when `p` takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchTimeout(`timed out after ${(ms / 1000).toFixed(1)} s: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Polls `check` every `everyMs` until it returns a non-undefined value, or throws after `ms`.
 * An error thrown by `check` ends the polling (catch inside `check` what should be retried).
 */
export async function pollUntil<T>(check: () => Promise<T | undefined>, everyMs: number, ms: number, what: string): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new BenchTimeout(`timed out after ${(ms / 1000).toFixed(1)} s: ${what}`);
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------ files and ports

/** A fresh temp dir, removed at cleanup. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `vigil-bench-${prefix}-`));
  onCleanup(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A rules dir holding one file. */
export function rulesDir(text: string): string {
  const dir = tempDir('rules');
  writeFileSync(join(dir, 'bench.vigil'), text);
  return dir;
}

/** Bytes of the files under `dir`: apparent (st_size) and allocated (st_blocks × 512; LMDB files are sparse). */
export function diskUsage(dir: string): { apparent: number; allocated: number } {
  let apparent = 0;
  let allocated = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) {
      const sub = diskUsage(p);
      apparent += sub.apparent;
      allocated += sub.allocated;
    } else {
      apparent += st.size;
      allocated += st.blocks * 512;
    }
  }
  return { apparent, allocated };
}

/** A port that was free a moment ago (on 127.0.0.1). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

// ------------------------------------------------------------------ HTTP client

export interface HttpAnswer {
  status: number;
  body: string;
}

export class HttpClient {
  readonly agent: http.Agent;
  constructor(readonly base: string, maxSockets = 16) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  request(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const url = new URL(path, this.base);
      const h: Record<string, string | number> = { ...headers };
      if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: h, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      if (body !== undefined) req.end(body);
      else req.end();
    });
  }

  async json<T>(method: string, path: string): Promise<T> {
    const a = await this.request(method, path);
    if (a.status !== 200) throw new Error(`${method} ${path}: ${a.status} ${a.body.slice(0, 300)}`);
    return JSON.parse(a.body) as T;
  }

  /** POST an NDJSON batch; resolves with the 202 answer, throws on anything else. */
  async ingest(stream: string, ndjson: string | Buffer): Promise<{ accepted: number; late: number; rejected: unknown[] }> {
    const a = await this.request('POST', `/streams/${stream}/events`, ndjson, { 'content-type': 'application/x-ndjson' });
    if (a.status !== 202) throw new Error(`POST /streams/${stream}/events: ${a.status} ${a.body.slice(0, 300)}`);
    return JSON.parse(a.body) as { accepted: number; late: number; rejected: unknown[] };
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Sends `batches` with `inFlight` requests outstanding at a time; resolves with the summed
 * answers and the seconds from the first request to the last 202.
 */
export async function sendAll(client: HttpClient, stream: string, batches: (string | Buffer)[], inFlight: number): Promise<{ seconds: number; accepted: number; late: number; rejected: number }> {
  let next = 0;
  let accepted = 0;
  let late = 0;
  let rejected = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const b = batches[next++]!;
      const a = await client.ingest(stream, b);
      accepted += a.accepted;
      late += a.late;
      rejected += a.rejected.length;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { seconds: (performance.now() - t0) / 1000, accepted, late, rejected };
}

// ------------------------------------------------------------------ the service

export interface ServiceOptions {
  dataDir: string;
  rulesDir: string;
  checkpointMs: number;
  mqttUrl?: string;
  /** How long to wait for the first 200 from /ready (default 60 s). */
  readyTimeoutMs?: number;
}

export interface Service {
  child: ChildProcess;
  port: number;
  client: HttpClient;
  /** performance.now() at spawn. */
  spawnedAt: number;
  /** performance.now() at the first 200 from GET /ready. */
  readyAt: number;
  /** SIGTERM, wait for the exit (SIGKILL after `ms`); resolves with the exit code. */
  stop(ms?: number): Promise<number | null>;
}

/** Spawns `vigil serve` and waits for the first 200 from GET /ready (polled every 10 ms). */
export async function startService(o: ServiceOptions): Promise<Service> {
  const port = await freePort();
  // VIGIL_BENCH_NODE_ARGS: node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.VIGIL_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const args = [...nodeArgs, VIGIL_BIN, 'serve', '--port', String(port), '--data-dir', o.dataDir, '--rules-dir', o.rulesDir, '--checkpoint-ms', String(o.checkpointMs), '--log-level', 'warn'];
  if (o.mqttUrl !== undefined) args.push('--mqtt-url', o.mqttUrl);
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (c: Buffer) => {
    output = (output + c.toString('utf8')).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = code ?? (signal ? -1 : null);
      resolve(exited);
    });
  });
  const client = new HttpClient(`http://127.0.0.1:${port}`);
  const kill = async (ms = 30_000): Promise<number | null> => {
    client.close();
    if (exited !== undefined) return exited;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    const code = await exit;
    clearTimeout(t);
    return code;
  };
  const undo = onCleanup(`vigil serve pid ${child.pid}`, async () => void (await kill(10_000)));
  const readyAt = await pollUntil(
    async () => {
      if (exited !== undefined) throw new Error(`vigil serve exited with ${exited} before ready:\n${output}`);
      const a = await client.request('GET', '/ready', undefined, {}, 2000).catch(() => null);
      return a?.status === 200 ? performance.now() : undefined;
    },
    10,
    o.readyTimeoutMs ?? 60_000,
    `vigil serve on port ${port} ready (GET /ready 200)`,
  ).catch(async (err: Error) => {
    await undo();
    throw exited !== undefined ? new Error(`vigil serve exited with ${exited} before ready:\n${output}`) : err;
  });
  return {
    child,
    port,
    client,
    spawnedAt,
    readyAt,
    stop: async (ms = 30_000) => {
      const code = await kill(ms);
      await undo();
      return code;
    },
  };
}

/** Sum of `counters.partialMatches` over GET /rules. */
export async function partialMatches(client: HttpClient): Promise<number> {
  const { rules } = await client.json<{ rules: { counters: { partialMatches: number } }[] }>('GET', '/rules');
  return rules.reduce((n, r) => n + r.counters.partialMatches, 0);
}

/** `accepted` of one stream from GET /streams. */
export async function streamAccepted(client: HttpClient, stream: string): Promise<number> {
  const { streams } = await client.json<{ streams: { name: string; accepted: number }[] }>('GET', '/streams');
  return streams.find((s) => s.name === stream)?.accepted ?? 0;
}

// ------------------------------------------------------------------ mosquitto

export interface Broker {
  url: string;
  stop(): Promise<void>;
}

/**
 * A private Mosquitto on a free loopback port, with no per-client queue limit (the default
 * 1,000 drops QoS 1 messages to a subscriber that falls behind) and no persistence.
 */
export async function startMosquitto(): Promise<Broker> {
  const bin = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/local/bin/mosquitto'].find((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
  if (bin === undefined) throw new Error('mosquitto is not installed (looked in /usr/sbin, /usr/bin, /usr/local/{s,}bin)');
  const port = await freePort();
  const dir = tempDir('mosquitto');
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'max_queued_messages 0',
      'max_queued_bytes 0',
      'max_inflight_messages 0',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => void (output = (output + c.toString('utf8')).slice(-4000)));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stopIt = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(t);
  };
  const undo = onCleanup(`mosquitto pid ${child.pid}`, stopIt);
  await pollUntil(
    () =>
      new Promise<true | undefined>((resolve, reject) => {
        if (exited) return reject(new Error(`mosquitto exited:\n${output}`));
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(undefined));
      }),
    20,
    10_000,
    `mosquitto listening on ${port}`,
  ).catch(async (err: Error) => {
    await undo();
    throw exited ? new Error(`mosquitto exited before listening:\n${output}`) : err;
  });
  return { url: `mqtt://127.0.0.1:${port}`, stop: undo };
}

// ------------------------------------------------------------------ pipelined HTTP/1.1

/**
 * HTTP/1.1 requests pipelined on ONE connection: each is written at once, without waiting for
 * the answers before it, and answered in order. One producer keeps its order this way (the
 * server takes the bodies in the order of the bytes) without one round trip per request.
 * Answers must carry Content-Length (Fastify's JSON answers do).
 */
export class PipelinedClient {
  private readonly socket: net.Socket;
  private readonly queue: { resolve: (a: HttpAnswer) => void; reject: (e: Error) => void }[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private failed: Error | null = null;
  readonly ready: Promise<void>;

  constructor(private readonly host: string, private readonly port: number) {
    this.socket = net.connect(port, host);
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('data', (c: Buffer) => this.onData(c));
    const fail = (err: Error) => {
      this.failed ??= err;
      for (const q of this.queue.splice(0)) q.reject(err);
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail(new Error('connection closed')));
  }

  get outstanding(): number {
    return this.queue.length;
  }

  request(method: string, path: string, body: string, headers: Record<string, string>): Promise<HttpAnswer> {
    if (this.failed) return Promise.reject(this.failed);
    const payload = Buffer.from(body, 'utf8');
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nContent-Length: ${payload.length}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    head += '\r\n';
    const p = new Promise<HttpAnswer>((resolve, reject) => this.queue.push({ resolve, reject }));
    this.socket.write(Buffer.concat([Buffer.from(head, 'latin1'), payload]));
    return p;
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      const status = Number(head.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (m === null) {
        this.socket.destroy(new Error(`answer without Content-Length: ${head.slice(0, 200)}`));
        return;
      }
      const len = Number(m[1]);
      if (this.buf.length < end + 4 + len) return;
      const body = this.buf.subarray(end + 4, end + 4 + len).toString('utf8');
      this.buf = this.buf.subarray(end + 4 + len);
      this.queue.shift()?.resolve({ status, body });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Checkpoints so far, from GET /metrics: count and mean duration. */
export async function checkpointStats(client: HttpClient): Promise<string> {
  const a = await client.request('GET', '/metrics');
  const sum = /^vigil_checkpoint_duration_seconds_sum (\S+)$/m.exec(a.body);
  const count = /^vigil_checkpoint_duration_seconds_count (\S+)$/m.exec(a.body);
  if (sum === null || count === null) return '(no vigil_checkpoint_duration_seconds in /metrics)';
  const n = Number(count[1]);
  return `${n}, mean ${n > 0 ? ((Number(sum[1]) / n) * 1000).toFixed(2) : '-'} ms each (vigil_checkpoint_duration_seconds)`;
}
