// Shared by the dispatcher and MQTT tests: a real DurableEngine (LMDB in a temp dir) over a
// rules directory written by the test, and a bounded polling wait.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurableEngine } from '../../src/engine/durable-engine.js';
import type { ServiceOptions } from '../../src/engine/types.js';
import { testWebhookPolicy } from '../helpers/http-receiver.js';

export interface TestCore {
  core: DurableEngine;
  options: ServiceOptions;
  /** Closes the core and opens it again on the same state (a restart). */
  reopen(): Promise<DurableEngine>;
  /** Closes the core (if open) and removes the temp dir. */
  cleanup(): Promise<void>;
}

export async function openTestCore(rules: string, extra: Partial<ServiceOptions> = {}): Promise<TestCore> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-dispatch-'));
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'test.vigil'), rules);
  // Receivers listen on 127.0.0.1: allowed as in every test (see TEST_WEBHOOK_ALLOW).
  const options: ServiceOptions = { dataDir: join(dir, 'data'), rulesDir, watchRules: false, checkpointMs: 5, webhookPolicy: testWebhookPolicy(), ...extra };
  const t: TestCore = {
    core: await DurableEngine.open(options),
    options,
    async reopen() {
      await t.core.close();
      t.core = await DurableEngine.open(options);
      return t.core;
    },
    async cleanup() {
      await t.core.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** Polls `check` every 10 ms until it returns a truthy value; throws after `timeoutMs`. */
export async function until<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
