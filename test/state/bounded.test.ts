// Bounded state (service.md §4): keys with no live partial match take no space, `within` and the
// watermark prune, the late side output and the outbox keep a bounded number of entries.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { DurableEngine } from '../../src/engine/durable-engine.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
async function open(extra: Partial<Parameters<typeof DurableEngine.open>[0]> = {}): Promise<DurableEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bounded-'));
  dirs.push(dir);
  return DurableEngine.open({ dataDir: dir, rulesDir: null, checkpointMs: 1, ...extra });
}
function countEntries(core: DurableEngine, db: 'keys' | 'buffer' | 'outbox' | 'late'): number {
  let n = 0;
  for (const _ of core.store.range(db)) n++;
  return n;
}

const RULE = `stream s {
  key k
  time ts
}
rule short {
  from s
  match a: type == "a" then b: type == "b"
  within 1s
  skip none
}
`;

describe('bounded state', () => {
  it('streams 40,000 short-lived keys: live keys and stored key states stay small', async () => {
    const core = await open();
    expect((await core.putRule('short', RULE)).ok).toBe(true);
    let ts = 0;
    const sizes: number[] = [];
    for (let round = 0; round < 4; round++) {
      const batch: object[] = [];
      for (let i = 0; i < 10_000; i++) {
        const k = `k${round}-${i}`;
        ts += 10;
        batch.push({ k, ts, type: 'a' });
        // Half the keys finish their match at once, the other half are left to expire (within 1s).
        if (i % 2 === 0) batch.push({ k, ts: ts + 1, type: 'b' });
      }
      const answer = await core.ingest('s', batch, 0);
      expect(answer.rejected).toEqual([]);
      await core.commitNow();
      sizes.push(countEntries(core, 'keys'));
    }
    const rr = core.engine.rules.get('short')!;
    // Only keys started within the last second of event time can still be alive: 1s / 10ms = 100.
    expect(rr.keys.size).toBeLessThanOrEqual(101);
    for (const n of sizes) expect(n).toBeLessThanOrEqual(101);
    expect(rr.counters.matches).toBe(20_000);
    expect(rr.counters.timeoutsDropped).toBeGreaterThan(19_800);
    await core.close();
  });

  it('keeps the newest N late events per stream and the newest alerts of the outbox', async () => {
    const core = await open({ lateKeepPerStream: 50, outboxKeep: 30 });
    expect((await core.putRule('one', 'stream s {\n  key k\n  time ts\n}\nrule one {\n  from s\n  match a: type == "a"\n}\n')).ok).toBe(true);
    await core.ingest('s', [{ k: 'x', ts: 1_000_000, type: 'b' }], 0);
    const late = Array.from({ length: 120 }, (_, i) => ({ k: 'x', ts: i, type: 'b' }));
    expect((await core.ingest('s', late, 0)).late).toBe(120);
    const hits = Array.from({ length: 80 }, (_, i) => ({ k: `k${i}`, ts: 2_000_000 + i, type: 'a' }));
    expect((await core.ingest('s', hits, 0)).accepted).toBe(80);
    await core.commitNow();
    expect(countEntries(core, 'late')).toBe(50);
    expect(core.late('s', { limit: 1 }).late[0]!.time).toBe(119); // the newest kept
    // Log alerts are delivered only by a dispatcher, so all 80 are undelivered. The commit after
    // theirs bounds them: undelivered alerts may fill at most half of the outbox (15): the oldest
    // 65 are marked failed (backlog_full), and the outbox keeps its newest 30. (This used to keep
    // all 80: undelivered alerts were never pruned, so a dead sink grew the outbox forever.)
    expect(countEntries(core, 'outbox')).toBe(30);
    const kept = core.alerts({ limit: 100 }).alerts;
    expect(kept[0]!.key).toBe('k79');
    expect(kept.filter((a) => a.delivery['0:log']!.state === 'pending')).toHaveLength(15);
    const given = kept.filter((a) => a.delivery['0:log']!.state === 'failed');
    expect(given).toHaveLength(15);
    expect(given[0]!.delivery['0:log']!.lastError).toMatch(/undelivered alerts over half the outbox/);
    expect(core.givenUp.get('log backlog_full')).toBe(65);
    for (const e of core.unfinishedDeliveries()) {
      for (const name of Object.keys(e.delivery)) core.updateDelivery(e.seq, name, { sink: 'log', state: 'delivered', attempts: 1, lastError: null, nextAttemptAt: null, deliveredAt: 1 });
    }
    await core.commitNow();
    expect(countEntries(core, 'outbox')).toBe(30);
    expect(core.outboxBacklog()).toEqual({});
    expect(core.alerts({ limit: 100 }).alerts[0]!.key).toBe('k79');
    await core.close();
  });

  it('logs a burst of late events once, not once per event', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const core = await open({ logger });
    expect((await core.putRule('one', 'stream s {\n  key k\n  time ts\n}\nrule one {\n  from s\n  match a: type == "a"\n}\n')).ok).toBe(true);
    await core.ingest('s', [{ k: 'x', ts: 1000, type: 'b' }], 0);
    await core.ingest('s', Array.from({ length: 200 }, (_, i) => ({ k: 'x', ts: i, type: 'b' })), 0);
    await new Promise((r) => setTimeout(r, 50));
    const late = lines.map((l) => JSON.parse(l)).filter((l) => /late events/.test(l.msg));
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ stream: 's', lateEvents: 200, oldestLateTime: 0, watermark: 1000 });
    await core.close();
  });
});

describe('long keys', () => {
  it('two keys longer than an LMDB key that share their first 1,500 characters keep separate state', async () => {
    const core = await open();
    expect((await core.putRule('ab', 'stream s {\n  key k\n  time ts\n}\nrule ab {\n  from s\n  match a: t == "a" then b: t == "b"\n  within 1h\n}\n')).ok).toBe(true);
    const common = 'x'.repeat(3000);
    const k1 = `${common}-one`;
    const k2 = `${common}-two`;
    await core.ingest('s', [{ k: k1, ts: 1000, t: 'a' }, { k: k2, ts: 1001, t: 'a' }], 0);
    await core.close();
    const again = await DurableEngine.open({ dataDir: core.options.dataDir, rulesDir: null, checkpointMs: 1 });
    expect(again.engine.rules.get('ab')!.partialMatches()).toBe(2);
    await again.ingest('s', [{ k: k2, ts: 2000, t: 'b' }], 0);
    await again.commitNow();
    expect(again.alerts().alerts.map((a) => a.key)).toEqual([k2]);
    await again.close();
  });
});
