// Every store bounded by bytes and age (issue 15 case 8), on a real core (LMDB in a temp dir)
// and the real API over a 127.0.0.1 socket: expired idempotency keys are deleted by a sweep with
// bounded work; the late side output is bounded by bytes as well as count, and its route pages
// by bytes (big entries never make it answer 500); old savepoints are pruned.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';

const RULE = `stream s {
  key k
  time ts
}
rule one {
  from s
  match a: type == "a"
}
`;

let services: TestService[] = [];
afterEach(async () => {
  for (const s of services) await s.close().catch(() => {});
  services = [];
});
afterAll(() => removeTempDirs());

async function service(core: Parameters<typeof startService>[0]['core'] = {}): Promise<TestService> {
  const s = await startService({ rules: { 'one.vigil': RULE }, core });
  services.push(s);
  return s;
}

describe('idempotency keys expire and are deleted', () => {
  it('a sweep deletes expired keys, at most a batch per sweep; live keys stay and still deduplicate', async () => {
    let clock = 1_700_000_000_000;
    const s = await service({ now: () => clock, idempotencyTtlMs: 1000, idempotencySweepBatch: 500 });
    const core = s.core;
    const N = 3000;
    for (let i = 0; i < N; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => core.ingest('s', [{ k: `u${i + j}`, ts: i + j, type: 'b' }], clock, { idempotencyKey: `key-${i + j}` })));
    }
    clock += 5000;
    const live = Array.from({ length: 10 }, (_, i) => `live-${i}`);
    for (const key of live) await core.ingest('s', [{ k: key, ts: 10_000, type: 'b' }], clock, { idempotencyKey: key });
    await core.commitNow();
    expect(core.store.dbs.idem.getCount()).toBe(N + live.length);

    clock += 500; // the first N expired, the live ones not
    let sweeps = 0;
    let deleted = 0;
    for (let guard = 0; guard < 50; guard++) {
      const n = core.sweepIdempotencyKeys(clock);
      expect(n).toBeLessThanOrEqual(500);
      deleted += n;
      sweeps++;
      await core.commitNow();
      if (core.store.dbs.idem.getCount() === live.length) break;
    }
    expect(core.store.dbs.idem.getCount()).toBe(live.length);
    expect(deleted).toBeGreaterThanOrEqual(N - 1); // the 1 s ticker may have swept some too
    expect(core.pruned.idempotency).toBe(N);
    expect(sweeps).toBeGreaterThanOrEqual(Math.floor(N / 500));
    // A live key still deduplicates: the repeat is answered, not applied.
    const accepted = core.streams().find((x) => x.name === 's')!.accepted;
    const again = await core.ingest('s', [{ k: 'x', ts: 10_001, type: 'b' }], clock, { idempotencyKey: 'live-3' });
    expect(again.accepted).toBe(1);
    expect(core.streams().find((x) => x.name === 's')!.accepted).toBe(accepted);
    // An expired (deleted) key is a new request.
    await core.ingest('s', [{ k: 'y', ts: 10_002, type: 'b' }], clock, { idempotencyKey: 'key-7' });
    expect(core.streams().find((x) => x.name === 's')!.accepted).toBe(accepted + 1);
  }, 60_000);
});

describe('late side output: bounded by bytes, paged by bytes', () => {
  it('keeps at most lateMaxBytesPerStream bytes per stream, and the route answers big entries page by page', async () => {
    const s = await service({ lateMaxBytesPerStream: 1_000_000, pageMaxBytes: 500_000 });
    const address = await s.app.listen({ host: '127.0.0.1', port: 0 });
    const post = (body: unknown) => fetch(`${address}/streams/s/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post({ k: 'x', ts: 1_000_000, type: 'b' })).status).toBe(202);
    const big = 'z'.repeat(200_000);
    for (let i = 0; i < 10; i++) {
      const res = await post({ k: 'x', ts: i, type: 'b', pad: big });
      expect(res.status).toBe(202);
      expect((await res.json()).late).toBe(1);
    }
    await s.core.commitNow();
    // 10 late events of ~200 KB were counted; only the newest 4 fit in 1,000,000 bytes.
    expect(s.core.streams().find((x) => x.name === 's')!.late).toBe(10);
    expect(s.core.store.dbs.late.getCount()).toBe(4);
    expect(s.core.pruned.late).toBe(6);

    const seen: number[] = [];
    let url = `${address}/streams/s/late?limit=100`;
    for (let page = 0; page < 10; page++) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { late: { time: number; event: { pad: string } }[]; next: string | null };
      expect(body.late.length).toBeGreaterThan(0);
      expect(body.late.length).toBeLessThanOrEqual(2); // 500,000 bytes a page
      for (const e of body.late) {
        expect(e.event.pad).toHaveLength(200_000);
        seen.push(e.time);
      }
      if (body.next === null) break;
      url = `${address}/streams/s/late?limit=100&cursor=${body.next}`;
    }
    expect(seen).toEqual([9, 8, 7, 6]);

    // The bound holds across a restart (the kept bytes are read back).
    const dataDir = s.dataDir;
    await s.close();
    const s2 = await startService({ rules: { 'one.vigil': RULE }, dataDir, core: { lateMaxBytesPerStream: 1_000_000 } });
    services.push(s2);
    await s2.core.ingest('s', [{ k: 'x', ts: 20, type: 'b', pad: big }], Date.now());
    expect(s2.core.store.dbs.late.getCount()).toBe(4);
    expect(s2.core.late('s', { limit: 10 }).late.map((e) => e.time)).toEqual([20, 9, 8, 7]);
  }, 60_000);
});

describe('savepoints', () => {
  it('keeps the newest savepointsKeep savepoints', async () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const s = await service({ savepointsKeep: 2, now: () => (clock += 1000) });
    const paths: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await s.app.inject({ method: 'POST', url: '/admin/savepoints' });
      expect(res.statusCode).toBe(201);
      paths.push(res.json().path);
    }
    const dir = join(s.dataDir, 'savepoints');
    expect(readdirSync(dir).sort()).toEqual(paths.slice(2).map((p) => p.split('/').at(-1)).sort());
    expect(existsSync(paths[0]!)).toBe(false);
    expect(existsSync(join(paths[3]!, 'data.mdb'))).toBe(true);
    expect(s.core.pruned.savepoints).toBe(2);
  });
});
