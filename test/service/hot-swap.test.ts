// Hot swap under load (service.md §2): clients keep ingesting over a real socket while the rule
// is replaced through PUT several times. Every event is accounted for (accepted == sent), every
// event is seen by exactly one version (one alert per event; the message carries the version),
// and the swap is atomic: a batch answered before a PUT was sent is never seen by the new
// version, and a batch sent after a PUT was answered is never seen by an older one.

import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, expect, test } from 'vitest';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { STREAM_S } from '../helpers/service-rules.js';

let s: TestService | null = null;
afterEach(async () => {
  await s?.close();
  s = null;
});
afterAll(removeTempDirs);

// No time field: event time is the arrival time, so no event is late however the clients interleave.
const rule = (v: number): string => `stream hs {
  key k
}

rule every {
  from hs
  match
    e: type == "e"
  alert info "v${v} {id}"
}
`;

async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: '127.0.0.1', port: 0 });
}

test('events flow while the rule is replaced: each event seen by exactly one version', async () => {
  s = await startService({ rules: { 's.vigil': STREAM_S } });
  const url = await listen(s.app);
  const put = async (v: number): Promise<void> => {
    const res = await fetch(`${url}/rules/every`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: rule(v) });
    expect(res.status).toBe(v === 1 ? 201 : 200);
    const body = await res.json() as any;
    expect(body.rule.version).toBe(v);
    if (v > 1) expect(body.keptPartialMatches).toBe(true); // same pattern
  };
  await put(1);

  const CLIENTS = 4;
  const BATCHES = 40;
  const PER_BATCH = 10;
  const VERSIONS = 6;
  let sent = 0;
  let accepted = 0;
  // Per batch: when it was answered / sent, in a global step counter, and its event ids.
  let step = 0;
  const batches: { ids: string[]; sentAt: number; answeredAt: number }[] = [];
  const puts: { v: number; sentAt: number; answeredAt: number }[] = [];

  const client = async (c: number): Promise<void> => {
    for (let b = 0; b < BATCHES; b++) {
      const ids = Array.from({ length: PER_BATCH }, (_, i) => `c${c}b${b}i${i}`);
      const body = ids.map((id, i) => JSON.stringify({ id, type: 'e', k: `k${i % 3}`})).join('\n');
      const sentAt = ++step;
      sent += ids.length;
      const res = await fetch(`${url}/streams/hs/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
      expect(res.status).toBe(202);
      const answer = await res.json() as any;
      expect(answer.rejected).toEqual([]);
      expect(answer.late).toBe(0);
      accepted += answer.accepted;
      batches.push({ ids, sentAt, answeredAt: ++step });
    }
  };
  const swapper = async (): Promise<void> => {
    for (let v = 2; v <= VERSIONS; v++) {
      await new Promise((r) => setTimeout(r, 15));
      const sentAt = ++step;
      await put(v);
      puts.push({ v, sentAt, answeredAt: ++step });
    }
  };
  await Promise.all([...Array.from({ length: CLIENTS }, (_, c) => client(c)), swapper()]);

  expect(sent).toBe(CLIENTS * BATCHES * PER_BATCH);
  expect(accepted).toBe(sent);
  const streams = await (await fetch(`${url}/streams`)).json() as any;
  const hs = streams.streams.find((x: { name: string }) => x.name === 'hs');
  expect(hs).toMatchObject({ accepted: sent, late: 0, rejected: 0 });

  // Every alert, every page.
  const alerts: { message: string; version: number; events: { e: { id: string }[] } }[] = [];
  let cursor: string | null = null;
  do {
    const page: { alerts: typeof alerts; next: string | null } = await (await fetch(`${url}/alerts?rule=every&limit=1000${cursor ? `&cursor=${cursor}` : ''}`)).json() as any;
    alerts.push(...page.alerts);
    cursor = page.next;
  } while (cursor !== null);

  // Every event gives exactly one alert, from exactly one version.
  expect(alerts.length).toBe(sent);
  const versionOf = new Map<string, number>();
  for (const a of alerts) {
    const id = a.events.e[0]!.id;
    expect(versionOf.has(id)).toBe(false);
    expect(a.message).toBe(`v${a.version} ${id}`);
    versionOf.set(id, a.version);
  }
  const perVersion = new Map<number, number>();
  for (const v of versionOf.values()) perVersion.set(v, (perVersion.get(v) ?? 0) + 1);
  expect([...perVersion.values()].reduce((x, y) => x + y, 0)).toBe(sent);
  expect(Math.max(...perVersion.keys())).toBeLessThanOrEqual(VERSIONS);
  // The swaps happened while events flowed: more than one version saw events.
  expect(perVersion.size).toBeGreaterThan(2);

  // Atomic swap: ordering against the PUTs.
  for (const b of batches) {
    for (const id of b.ids) {
      const v = versionOf.get(id);
      expect(v).toBeDefined();
      for (const p of puts) {
        if (b.answeredAt < p.sentAt) expect(v).toBeLessThan(p.v);
        if (b.sentAt > p.answeredAt) expect(v).toBeGreaterThanOrEqual(p.v);
      }
    }
  }
}, 30_000);
