// The durable engine over a real LMDB in a temp dir: stopping and reopening at any point of a
// recorded stream must give exactly the alerts of an uninterrupted `vigil run` (same ids, no
// duplicates), because partial matches, buffered events, timers, throttle windows and
// watermarks are restored from the checkpoint.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runReplay } from '../../src/cli/run.js';
import { DurableEngine } from '../../src/engine/durable-engine.js';

const golden = join(import.meta.dirname, '..', 'golden');
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vigil-state-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Line {
  stream: string | undefined;
  event: unknown;
  watermark?: number;
}

function lines(text: string): Line[] {
  const out: Line[] = [];
  for (const l of text.split('\n')) {
    if (l.trim() === '') continue;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(l);
    } catch {
      continue;
    }
    if (typeof v.$watermark === 'number') out.push({ stream: undefined, event: null, watermark: v.$watermark });
    else {
      const { $stream, ...rest } = v;
      out.push({ stream: $stream as string | undefined, event: $stream === undefined ? v : rest });
    }
  }
  return out;
}

async function feed(core: DurableEngine, items: Line[], defaultStream: string): Promise<void> {
  for (const it of items) {
    if (it.watermark !== undefined) core.engine.advanceWatermark(it.watermark);
    else await core.ingest(it.stream ?? defaultStream, [it.event], 0);
  }
}

/** Cases whose output does not depend on the wall clock and that read one named stream or route with $stream. */
const cases = readdirSync(golden)
  .filter((c) => existsSync(join(golden, c, 'rules.vigil')))
  .filter((c) => !existsSync(join(golden, c, 'args.json')))
  .filter((c) => /within|for |throttle|skip|then any|\+|\*|\{/.test(readFileSync(join(golden, c, 'rules.vigil'), 'utf8')))
  .slice(0, 40);

describe('DurableEngine restart', () => {
  it.each(cases)('%s: stop and reopen at several points gives the uninterrupted alerts', async (c) => {
    const rules = readFileSync(join(golden, c, 'rules.vigil'), 'utf8');
    const events = readFileSync(join(golden, c, 'events.ndjson'), 'utf8');
    const expected = await runReplay({ rules: [{ file: 'rules.vigil', text: rules }], events });
    const expectedAlerts = expected.records.filter((r) => r.kind !== 'late').map((r) => (r as { id: string }).id);
    const items = lines(events);
    const streamName = /from\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(rules)![1]!;
    for (const split of [1, Math.floor(items.length / 2), items.length - 1]) {
      const dir = tempDir();
      const rulesDir = join(dir, 'rules');
      mkdirSync(rulesDir);
      writeFileSync(join(rulesDir, 'rules.vigil'), rules);
      const options = { dataDir: join(dir, 'data'), rulesDir, watchRules: false, checkpointMs: 1 };
      let core = await DurableEngine.open(options);
      await feed(core, items.slice(0, split), streamName);
      await core.close();
      core = await DurableEngine.open(options);
      await feed(core, items.slice(split), streamName);
      core.engine.end();
      await core.commitNow();
      const held = core.alerts({ limit: 1000 }).alerts.map((a) => a.id).reverse();
      await core.close();
      expect(held, `split at ${split}`).toEqual(expectedAlerts);
    }
  });
});

describe('DurableEngine queries', () => {
  it('pages alerts with cursors, filters by key (objects by their JSON), rejects a bad cursor', async () => {
    const dir = tempDir();
    const core = await DurableEngine.open({ dataDir: join(dir, 'data'), rulesDir: null, checkpointMs: 1 });
    const put = await core.putRule('r', 'stream s {\n  key k\n  time ts\n}\nrule r {\n  from s\n  match a: x == 1\n}\n');
    expect(put.ok).toBe(true);
    const events = [];
    for (let i = 0; i < 7; i++) events.push({ k: i % 2 === 0 ? 'even' : { n: 1 }, ts: 1000 + i, x: 1 });
    expect(await core.ingest('s', events, 0)).toEqual({ accepted: 7, late: 0, rejected: [] });
    const first = core.alerts({ limit: 3 });
    expect(first.alerts).toHaveLength(3);
    expect(first.alerts[0]!.time).toBe('1970-01-01T00:00:01.006Z'); // newest first
    const second = core.alerts({ limit: 3, cursor: first.next! });
    const third = core.alerts({ limit: 3, cursor: second.next! });
    expect([...first.alerts, ...second.alerts, ...third.alerts].map((a) => a.time)).toEqual(
      [6, 5, 4, 3, 2, 1, 0].map((i) => new Date(1000 + i).toISOString()),
    );
    expect(third.next).toBeNull();
    expect(core.alerts({ key: 'even' }).alerts).toHaveLength(4);
    expect(core.alerts({ key: '{"n":1}' }).alerts).toHaveLength(3);
    expect(() => core.alerts({ cursor: 'abc' })).toThrow(/not a cursor/);
    expect(() => core.late('s', { cursor: '-1' })).toThrow(/not a cursor/);
    await core.close();
  });
});

describe('DurableEngine idempotency keys', () => {
  it('a key longer than an LMDB key is applied once and answered again (stored under its hash)', async () => {
    const dir = tempDir();
    const core = await DurableEngine.open({ dataDir: join(dir, 'data'), rulesDir: null, checkpointMs: 1 });
    expect((await core.putRule('one', 'stream s {\n  key k\n  time ts\n}\nrule one {\n  from s\n  match a: t == "a"\n}\n')).ok).toBe(true);
    const key = 'k'.repeat(3000);
    const first = await core.ingest('s', [{ k: 'x', ts: 1, t: 'a' }], 0, { idempotencyKey: key });
    const again = await core.ingest('s', [{ k: 'x', ts: 2, t: 'a' }], 0, { idempotencyKey: key });
    expect(again).toEqual(first);
    expect(core.streams()[0]!.accepted).toBe(1);
    expect(core.isReady()).toBe(true);
    await core.close();
  });
});

describe('DurableEngine and deeply nested events', () => {
  it('an event nested too deep to store is rejected with its reason; the service stays up', async () => {
    const dir = tempDir();
    const core = await DurableEngine.open({ dataDir: join(dir, 'data'), rulesDir: null, checkpointMs: 1 });
    expect((await core.putRule('ab', 'stream s {\n  key k\n  time ts\n}\nrule ab {\n  from s\n  match a: t == "a" then b: t == "b"\n  within 1h\n}\n')).ok).toBe(true);
    const nested = (depth: number, t: string, ts: number) => JSON.parse(`{"k":"d","ts":${ts},"t":"${t}","deep":${'{"x":'.repeat(depth)}1${'}'.repeat(depth)}}`);
    const answer = await core.ingest('s', [nested(3000, 'a', 1000), nested(10, 'a', 1001), nested(3000, 'x', 1002)], 0);
    // The first would be held by a partial match: rejected. The third no rule can use: taken.
    expect(answer).toEqual({ accepted: 2, late: 0, rejected: [{ index: 0, error: 'an event may nest objects and lists at most 64 levels deep' }] });
    expect(core.isReady()).toBe(true);
    await core.ingest('s', [{ k: 'd', ts: 2000, t: 'b' }], 0);
    await core.commitNow();
    expect(core.alerts().alerts).toHaveLength(1);
    await core.close();
  });
});
