// Test helpers for the service: a real DurableEngine (real LMDB in a temp dir, rules in a temp
// rules dir) behind a real fastify instance, exercised with inject() or over a socket. No mocks.

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildServer, type ServerOptions } from '../../src/api/server.js';
import { loadConfig, type Config } from '../../src/config.js';
import { DurableEngine } from '../../src/engine/durable-engine.js';
import type { ServiceOptions } from '../../src/engine/types.js';
import { WebhookAddressPolicy } from '../../src/core/webhook-address-policy.js';
import { TEST_WEBHOOK_ALLOW } from './http-receiver.js';

export const silent = pino({ level: 'silent' });

const dirs: string[] = [];

/** A fresh temp directory, removed by `removeTempDirs`. */
export function tempDir(prefix = 'vigil-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface TestService {
  core: DurableEngine;
  app: FastifyInstance;
  config: Config;
  dataDir: string;
  rulesDir: string;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Files of the rules dir: name → text. */
  rules?: Record<string, string>;
  /** Config flags (e.g. ['--api-token', 'x', '--body-limit', '1000']). */
  flags?: string[];
  dataDir?: string;
  core?: Partial<ServiceOptions>;
  server?: ServerOptions;
}

/** Opens a core on temp dirs and builds the API over it (not listening). */
export async function startService(opts: StartOptions = {}): Promise<TestService> {
  const dataDir = opts.dataDir ?? join(tempDir(), 'data');
  const rulesDir = tempDir('vigil-rules-');
  mkdirSync(rulesDir, { recursive: true });
  for (const [name, text] of Object.entries(opts.rules ?? {})) writeFileSync(join(rulesDir, name), text);
  // Receivers listen on 127.0.0.1: allowed here, once for every test (a flag given later wins).
  const config = loadConfig(['--data-dir', dataDir, '--rules-dir', rulesDir, '--checkpoint-ms', '2', '--webhook-allow', TEST_WEBHOOK_ALLOW, ...(opts.flags ?? [])], {});
  const core = await DurableEngine.open({
    dataDir,
    rulesDir,
    checkpointMs: config.checkpointMs,
    idempotencyTtlMs: config.idempotencyTtlMs,
    envPrefix: config.envPrefix,
    webhookPolicy: new WebhookAddressPolicy(config.webhookAllow),
    work: { timeMs: config.workTimeMs, memoryMb: config.workMemoryMb, concurrency: config.workConcurrency, maxEvents: config.backtestMaxEvents, maxPartials: config.backtestMaxPartials },
    watchRules: false,
    logger: silent,
    ...opts.core,
  });
  const app = buildServer(core, config, silent, opts.server);
  await app.ready();
  let closed = false;
  return {
    core,
    app,
    config,
    dataDir,
    rulesDir,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await core.close();
    },
  };
}

/** NDJSON text of events. */
export function ndjson(events: unknown[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n') + '\n';
}

/** POST events as NDJSON (or JSON when `json`), through inject. */
export async function post(app: FastifyInstance, stream: string, events: unknown[], headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: `/streams/${stream}/events`,
    headers: { 'content-type': 'application/x-ndjson', ...headers },
    payload: ndjson(events),
  });
}

/** Every alert the service holds (all pages of GET /alerts), newest first. */
export async function allAlerts(app: FastifyInstance, query = ''): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let cursor: string | null = null;
  for (let guard = 0; guard < 10_000; guard++) {
    const q = new URLSearchParams(query);
    q.set('limit', '1000');
    if (cursor !== null) q.set('cursor', cursor);
    const res = await app.inject({ method: 'GET', url: `/alerts?${q}` });
    if (res.statusCode !== 200) throw new Error(`GET /alerts: ${res.statusCode} ${res.body}`);
    const page = res.json() as { alerts: Record<string, unknown>[]; next: string | null };
    out.push(...page.alerts);
    cursor = page.next;
    if (cursor === null) break;
  }
  return out;
}
