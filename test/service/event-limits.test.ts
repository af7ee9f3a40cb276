// Events checked at the door, over a real socket and real LMDB (issue 15, cases 6 and 7):
// - an event far ahead of the wall clock is rejected with its reason and counted, so it cannot
//   move the watermark: no pending absence fires falsely, later events are not late, across a
//   restart;
// - a stream that disappears (its rule and declaration removed) loses its stored record, so one
//   declared again under the same name starts fresh, across a restart;
// - keys and events holding lone surrogates keep separate partial matches across restarts and
//   each completes its own match (U+FFFD itself is a third key);
// - an event over the maximum event size is rejected with its reason while the good events
//   around it in the same request are taken (NDJSON, JSON array, one object).

import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { runReplay } from '../../src/cli/run.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMetrics } from '../../src/metrics/registry.js';
import { startServe } from '../helpers/service-process.js';
import { LmdbStore, type StoredStream } from '../../src/state/lmdb-store.js';
import { removeTempDirs, startService, tempDir, type StartOptions, type TestService } from '../helpers/service.js';

let s: TestService | null = null;
afterEach(async () => {
  await s?.close();
  s = null;
});
afterAll(removeTempDirs);

/** Starts a service with /metrics, listening on 127.0.0.1; gives its base URL. */
async function start(opts: StartOptions): Promise<{ t: TestService; url: string }> {
  let engine: import('../../src/runtime/engine.js').Engine | null = null;
  const t = await startService({
    ...opts,
    server: {
      metrics: async () => {
        const m = createMetrics({ engine: engine! });
        return { contentType: m.registry.contentType, body: await m.metrics() };
      },
    },
  });
  engine = t.core.engine;
  s = t;
  const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  return { t, url };
}

async function restart(dataDir: string, opts: StartOptions): Promise<{ t: TestService; url: string }> {
  await s?.close();
  s = null;
  return start({ ...opts, dataDir });
}

type Answer = { accepted: number; late: number; rejected: { index: number; error: string; line?: number }[] };

async function send(url: string, stream: string, body: string, type = 'application/x-ndjson'): Promise<Answer> {
  const res = await fetch(`${url}/streams/${stream}/events`, { method: 'POST', headers: { 'content-type': type }, body });
  expect(res.status).toBe(202);
  return (await res.json()) as Answer;
}

const lines = (events: unknown[]): string => events.map((e) => JSON.stringify(e)).join('\n') + '\n';

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

type StreamRow = { name: string; watermark: number | null; maxTime: number | null; accepted: number; late: number; rejected: number; tooLarge: number; tooFarAhead: number; maxEventBytes: number; maxLeadMs: number | null };

async function stream(url: string, name: string): Promise<StreamRow | undefined> {
  const { streams } = await getJson<{ streams: StreamRow[] }>(`${url}/streams`);
  return streams.find((x) => x.name === name);
}

async function alerts(url: string): Promise<{ rule: string; key: unknown; message: string; events: Record<string, Record<string, unknown>[]> }[]> {
  return (await getJson<{ alerts: never[] }>(`${url}/alerts?limit=1000`)).alerts;
}

async function metric(url: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const DOORS = `stream doors {
  key door_id
  time ts
  fields {
    door_id: string
    ts: time
    state: string
  }
}

rule door_left_open {
  from doors
  match
    opened: state == "open"
    then not closed: state == "closed" for 5m
  skip none
  alert warning "door {door_id} open"
}
`;

describe('time from senders is checked', () => {
  test('a far-future event is rejected with its reason: no false absence alert, later events not late, across a restart', async () => {
    const dataDir = tempDir();
    const opts: StartOptions = { rules: { 'doors.vigil': DOORS } };
    let { url } = await start({ ...opts, dataDir: `${dataDir}/data` });
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    // d1 opens and closes; d2 opens (its absence is pending, due at now + 4m20s).
    expect(await send(url, 'doors', lines([
      { door_id: 'd1', ts: iso(now - 60_000), state: 'open' },
      { door_id: 'd1', ts: iso(now - 50_000), state: 'closed' },
      { door_id: 'd2', ts: iso(now - 40_000), state: 'open' },
    ]))).toEqual({ accepted: 3, late: 0, rejected: [] });

    // The poison: year 9999, between two good events of the same request.
    const answer = await send(url, 'doors', lines([
      { door_id: 'd3', ts: iso(now - 35_000), state: 'open' },
      { door_id: 'evil', ts: '9999-12-31T23:59:59Z', state: 'open' },
      { door_id: 'd3', ts: iso(now - 30_000), state: 'closed' },
    ]));
    expect(answer.accepted).toBe(2);
    expect(answer.late).toBe(0);
    expect(answer.rejected).toHaveLength(1);
    expect(answer.rejected[0]).toMatchObject({ index: 1, line: 2 });
    const reason = answer.rejected[0]!.error;
    expect(reason).toContain('9999-12-31T23:59:59.000Z');
    expect(reason).toContain('maximum lead of 1h');
    expect(reason).toContain('VIGIL_MAX_LEAD_MS');

    // One a little over the limit (1h + 1 min ahead) is rejected too; one within it is taken.
    const edge = await send(url, 'doors', lines([{ door_id: 'd4', ts: iso(Date.now() + 3_660_000), state: 'closed' }]));
    expect(edge.rejected).toHaveLength(1);
    let st = (await stream(url, 'doors'))!;
    expect(st.watermark).toBeLessThanOrEqual(now);
    expect(st).toMatchObject({ tooFarAhead: 2, rejected: 2, maxLeadMs: 3_600_000 });
    expect(await metric(url, 'vigil_events_over_limit_total{stream="doors",reason="too_far_ahead"}')).toBe(2);
    expect(await alerts(url)).toEqual([]);

    // Restart: the watermark is still where the good events put it; later events are in time.
    ({ url } = await restart(`${dataDir}/data`, opts));
    st = (await stream(url, 'doors'))!;
    expect(st.watermark).toBe(now - 30_000);
    expect(st.tooFarAhead).toBe(2);
    expect(await send(url, 'doors', lines([{ door_id: 'd5', ts: iso(now - 20_000), state: 'open' }, { door_id: 'd5', ts: iso(now - 10_000), state: 'closed' }]))).toEqual({ accepted: 2, late: 0, rejected: [] });
    expect(await alerts(url)).toEqual([]);

    // Time moves on for real (10 min ahead, within the lead): only d2's absence fires.
    expect(await send(url, 'doors', lines([{ door_id: 'd6', ts: iso(Date.now() + 600_000), state: 'closed' }]))).toEqual({ accepted: 1, late: 0, rejected: [] });
    const raised = await alerts(url);
    expect(raised.map((a) => a.key)).toEqual(['d2']);
    expect(raised[0]!.message).toBe('door d2 open');
  });

  test('a stream poisoned before the check existed is brought back to the wall clock at the next start', async () => {
    const dataDir = `${tempDir()}/data`;
    const opts: StartOptions = { rules: { 'doors.vigil': DOORS } };
    const { t } = await start({ ...opts, dataDir });
    await t.core.close();
    s = null;
    // What an earlier release stored after the year-9999 event.
    const store = LmdbStore.open(dataDir);
    const year9999 = Date.parse('9999-12-31T23:59:59Z');
    store.commit([{ db: 'streams', key: 'doors', value: { v: 1, maxTime: year9999, watermark: year9999, lastArrival: Date.now(), accepted: 1, late: 0, rejected: 0 } satisfies StoredStream }]);
    await store.close();
    const { url } = await restart(dataDir, opts);
    const st = (await stream(url, 'doors'))!;
    expect(st.watermark).toBeLessThanOrEqual(Date.now());
    expect(st.accepted).toBe(1);
    expect(await send(url, 'doors', lines([{ door_id: 'd', ts: new Date().toISOString(), state: 'open' }]))).toEqual({ accepted: 1, late: 0, rejected: [] });
  });

  test('the lead is configurable; a stream without a time field is not checked', async () => {
    const { url } = await start({
      rules: { 'p.vigil': 'stream p {\n  key k\n}\nrule rp { from p match x: n < 0 alert info "x" }\n' + DOORS },
      core: { maxLeadMs: 1000 },
    });
    const ahead = new Date(Date.now() + 120_000).toISOString();
    const a = await send(url, 'doors', lines([{ door_id: 'd', ts: ahead, state: 'open' }]));
    expect(a.rejected[0]!.error).toContain('maximum lead of 1s (VIGIL_MAX_LEAD_MS)');
    // Processing time: a field called ts means nothing there.
    expect(await send(url, 'p', lines([{ k: 'a', n: 1, ts: ahead }]))).toEqual({ accepted: 1, late: 0, rejected: [] });
    expect((await stream(url, 'p'))!.maxLeadMs).toBeNull();
  });
});

test("vigil run checks neither limit: recorded events replay whatever their time, 'max lead' and 'max size' included", async () => {
  const rules = `stream r {
  key k
  time ts
  max lead 1m
  max size 100
}
rule rr { from r match a: type == "a" then b: type == "b" within 1m alert info "ab {k}" }
`;
  const events = [{ k: 'x', type: 'a', ts: '9999-12-31T23:59:58Z', pad: 'p'.repeat(200) }, { k: 'x', type: 'b', ts: '9999-12-31T23:59:59Z' }];
  const result = await runReplay({ rules: [{ file: 'r.vigil', text: rules }], events: events.map((e) => JSON.stringify(e)).join('\n') });
  expect(result.errors).toEqual([]);
  expect(result.records.map((r) => (r as { message?: string }).message)).toEqual(['ab x']);
});

describe('a removed stream starts fresh when declared again', () => {
  const ruleText = (stream: string) => `stream ${stream} {
  key k
  time ts
}

rule r1 {
  from ${stream}
  match
    a: type == "a"
    then b: type == "b"
  within 1h
  alert info "ab {k}"
}
`;

  test('rule and declaration removed through the API, then declared again, across a restart', async () => {
    const dataDir = `${tempDir()}/data`;
    let { t, url } = await start({ dataDir });
    const put = async (u: string) => {
      const res = await fetch(`${u}/rules/r1`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: ruleText('gone') });
      expect(res.status).toBeLessThan(300);
    };
    await put(url);
    expect(await send(url, 'gone', lines([{ k: 'x', type: 'a', ts: 500_000 }, { k: 'x', type: 'z', ts: 400_000 }]))).toMatchObject({ accepted: 1, late: 1 });
    expect((await stream(url, 'gone'))!.watermark).toBe(500_000);
    expect((await getJson<{ late: unknown[] }>(`${url}/streams/gone/late`)).late).toHaveLength(1);
    expect(t.core.store.get<StoredStream>('streams', 'gone')).toMatchObject({ watermark: 500_000 });
    expect([...t.core.store.range('late', { start: ['gone'], end: ['gone\u0000'] })]).toHaveLength(1);

    expect((await fetch(`${url}/rules/r1`, { method: 'DELETE' })).status).toBeLessThan(300);
    // Deleting the API rule keeps the stream its text declared, as an API stream (producers go
    // on sending: decision 38); deleting that stream removes it with its record.
    expect(await stream(url, 'gone')).toBeDefined();
    expect((await fetch(`${url}/streams/gone`, { method: 'DELETE' })).status).toBeLessThan(300);
    expect(await stream(url, 'gone')).toBeUndefined();
    await t.core.commitNow();
    expect(t.core.store.get('streams', 'gone')).toBeUndefined();
    expect([...t.core.store.range('late', { start: ['gone'], end: ['gone\u0000'] })]).toHaveLength(0);

    ({ t, url } = await restart(dataDir, {}));
    expect(t.core.store.get('streams', 'gone')).toBeUndefined();
    await put(url);
    const st = (await stream(url, 'gone'))!;
    expect(st).toMatchObject({ watermark: null, maxTime: null, accepted: 0, late: 0, rejected: 0 });
    expect((await getJson<{ late: unknown[] }>(`${url}/streams/gone/late`)).late).toHaveLength(0);
    // An event older than the old watermark is in time now.
    expect(await send(url, 'gone', lines([{ k: 'y', type: 'a', ts: 1000 }]))).toEqual({ accepted: 1, late: 0, rejected: [] });
  });

  test('a rules file removed while the service is down: its stream record is deleted at the next start', async () => {
    const dataDir = `${tempDir()}/data`;
    let { t, url } = await start({ dataDir, rules: { 'f.vigil': ruleText('filed') } });
    expect(await send(url, 'filed', lines([{ k: 'x', type: 'a', ts: 900_000 }, { k: 'x', type: 'a', ts: 800_000 }]))).toMatchObject({ accepted: 1, late: 1 });
    await t.core.commitNow();
    expect(t.core.store.get<StoredStream>('streams', 'filed')).toMatchObject({ watermark: 900_000 });
    const lateOf = (x: TestService) => [...x.core.store.range('late', { start: ['filed'], end: ['filed\u0000'] })];
    expect(lateOf(t)).toHaveLength(1);
    ({ t, url } = await restart(dataDir, { rules: {} }));
    expect(await stream(url, 'filed')).toBeUndefined();
    expect(t.core.store.get('streams', 'filed')).toBeUndefined();
    expect(lateOf(t)).toHaveLength(0);
    ({ t, url } = await restart(dataDir, { rules: { 'f.vigil': ruleText('filed') } }));
    expect((await stream(url, 'filed'))!.watermark).toBeNull();
    expect(await send(url, 'filed', lines([{ k: 'x', type: 'a', ts: 1000 }]))).toEqual({ accepted: 1, late: 0, rejected: [] });
  });
});

describe('keys stored losslessly', () => {
  // watermark 1s: events wait in the rule's buffer until the watermark passes them, so both
  // the buffer and the key states are stored holding lone surrogates.
  const RULES = `stream s {
  key k
  time ts
  watermark 1s
}

rule ab {
  from s
  match
    a: type == "a"
    then b: type == "b"
  within 1h
  alert info "ab {k} {a.tag}"
}
`;
  const KEYS = ['\ud800', '\udbff', '\ufffd', '\udc00x', 'ok'];

  test('lone-surrogate keys (and U+FFFD itself) keep separate partial matches across restarts and each completes its own match', async () => {
    const dataDir = `${tempDir()}/data`;
    const opts: StartOptions = { rules: { 's.vigil': RULES } };
    let { t, url } = await start({ ...opts, dataDir });
    // JSON.stringify writes a lone surrogate as a \udXXX escape: the body is plain ASCII.
    const body = lines(KEYS.map((k, i) => ({ k, type: 'a', ts: 1000 + i, tag: `t${k}` })));
    expect(body).toContain('\\ud800');
    expect(await send(url, 's', body)).toEqual({ accepted: KEYS.length, late: 0, rejected: [] });
    // Released into key states by the watermark; the b events stay in the buffer.
    expect(await send(url, 's', lines([{ k: 'other', type: 'z', ts: 5000 }]))).toMatchObject({ accepted: 1 });
    expect(await send(url, 's', lines(KEYS.map((k, i) => ({ k, type: 'b', ts: 6000 + i }))))).toMatchObject({ accepted: KEYS.length });
    // A late event holding a lone surrogate, for the late side output.
    expect(await send(url, 's', lines([{ k: '\udfff', type: 'a', ts: 10, tag: '\ud801' }]))).toMatchObject({ late: 1 });
    expect((await getJson<{ counters: { keys: number } }>(`${url}/rules/ab`)).counters.keys).toBe(KEYS.length);

    ({ t, url } = await restart(dataDir, opts));
    expect((await getJson<{ counters: { keys: number; partialMatches: number } }>(`${url}/rules/ab`)).counters).toMatchObject({ keys: KEYS.length, partialMatches: KEYS.length });
    expect(t.core.engine.rules.get('ab')!.keys.has('\ud800')).toBe(true);
    // Release the buffered b events: every key completes its own match.
    expect(await send(url, 's', lines([{ k: 'other', type: 'z', ts: 60_000 }]))).toMatchObject({ accepted: 1 });
    const check = async (u: string) => {
      const raised = await alerts(u);
      expect(raised.map((a) => a.key).sort()).toEqual([...KEYS].sort());
      for (const a of raised) {
        const k = a.key as string;
        expect(a.message).toBe(`ab ${k} t${k}`);
        expect(a.events.a![0]).toMatchObject({ k, tag: `t${k}` });
        expect(a.events.b![0]).toMatchObject({ k, type: 'b' });
      }
      const late = (await getJson<{ late: { event: { k: string; tag: string } }[] }>(`${u}/streams/s/late`)).late;
      expect(late.map((l) => l.event)).toEqual([{ k: '\udfff', type: 'a', ts: 10, tag: '\ud801' }]);
      const one = await getJson<{ alerts: { key: string }[] }>(`${u}/alerts?key=${encodeURIComponent('\ufffd')}`);
      expect(one.alerts.map((a) => a.key)).toEqual(['\ufffd']);
    };
    await check(url);
    // The outbox keeps them as they were too.
    ({ url } = await restart(dataDir, opts));
    await check(url);
  });
});

describe('maximum event size', () => {
  const RULES = `stream s {
  key k
  time ts
}

rule ab {
  from s
  match
    a: type == "a"
    then b: type == "b"
  within 1h
  alert info "ab {k}"
}
`;
  const LIMIT = 1000;
  /** An event of exactly `bytes` bytes as JSON text (pad made of `ch`, 1 or 2 UTF-8 bytes). */
  const sized = (k: string, type: string, ts: number, bytes: number, ch = 'x'): Record<string, unknown> => {
    const base = JSON.stringify({ k, type, ts, pad: '' });
    const per = Buffer.byteLength(ch);
    const n = (bytes - base.length) / per;
    expect(Number.isInteger(n)).toBe(true);
    return { k, type, ts, pad: ch.repeat(n) };
  };

  test('an oversized event is rejected with its reason; the good events around it in the same request are taken', async () => {
    const { url } = await start({ rules: { 's.vigil': RULES }, core: { maxEventBytes: LIMIT } });
    // NDJSON: good, too large by one byte, exactly at the limit.
    const nd = await send(url, 's', lines([sized('k1', 'a', 1000, 200), sized('k1', 'a', 1001, LIMIT + 1), sized('k2', 'a', 1002, LIMIT)]));
    expect(nd.accepted).toBe(2);
    expect(nd.rejected).toEqual([{ index: 1, line: 2, error: `the event is ${LIMIT + 1} bytes, over the maximum event size of ${LIMIT} bytes (VIGIL_MAX_EVENT_BYTES)` }]);
    // A JSON array; the pad in two-byte characters: bytes are counted, not characters.
    const arr = await send(url, 's', JSON.stringify([sized('k1', 'b', 2000, 100), sized('k3', 'a', 2001, 1200, 'é'), { k: 'k2', type: 'b', ts: 2002, s: '[],{"' }]), 'application/json');
    expect(arr.accepted).toBe(2);
    expect(arr.rejected.map((r) => [r.index, r.error.slice(0, 27)])).toEqual([[1, 'the event is 1200 bytes, ov']]);
    // One object alone.
    const one = await send(url, 's', JSON.stringify(sized('k4', 'a', 3000, 5000)), 'application/json');
    expect(one).toMatchObject({ accepted: 0, rejected: [{ index: 0 }] });
    // Nothing of the rejected ones reached the rule: k1 and k2 matched, k3 and k4 hold nothing.
    const raised = await alerts(url);
    expect(raised.map((a) => a.key).sort()).toEqual(['k1', 'k2']);
    expect((await getJson<{ counters: { keys: number } }>(`${url}/rules/ab`)).counters.keys).toBe(0);
    expect(await stream(url, 's')).toMatchObject({ accepted: 4, rejected: 3, tooLarge: 3, maxEventBytes: LIMIT });
    expect(await metric(url, 'vigil_events_over_limit_total{stream="s",reason="too_large"}')).toBe(3);
    expect(await metric(url, 'vigil_events_rejected_total{stream="s"}')).toBe(3);
  });

  test("a stream's own 'max size' and 'max lead' clauses win over the service settings", async () => {
    const own = `stream small {
  key k
  time ts
  max size 300
  max lead 1m
}
rule rs { from small match x: type == "x" alert info "x" }
`;
    const { url } = await start({ rules: { 's.vigil': RULES, 'small.vigil': own }, core: { maxEventBytes: LIMIT } });
    const a = await send(url, 'small', lines([sized('k', 'a', 1000, 300), sized('k', 'a', 1001, 301), { k: 'k', type: 'a', ts: new Date(Date.now() + 120_000).toISOString() }]));
    expect(a.accepted).toBe(1);
    expect(a.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(a.rejected[0]!.error).toBe("the event is 301 bytes, over the maximum event size of 300 bytes (the stream's 'max size' clause)");
    expect(a.rejected[1]!.error).toContain("more than the maximum lead of 1m (the stream's 'max lead' clause)");
    // The other stream keeps the service's limits.
    expect(await send(url, 's', lines([sized('k', 'a', 1000, 301)]))).toMatchObject({ accepted: 1 });
    expect(await stream(url, 'small')).toMatchObject({ maxEventBytes: 300, maxLeadMs: 60_000, tooLarge: 1, tooFarAhead: 1 });
    expect(await stream(url, 's')).toMatchObject({ maxEventBytes: LIMIT, maxLeadMs: 3_600_000 });
  });

  test('the default is 1 MiB; a body over VIGIL_BODY_LIMIT is still 413 as a whole', async () => {
    const { url } = await start({ rules: { 's.vigil': RULES }, flags: ['--body-limit', String(4 * 1024 * 1024)] });
    const MiB = 1024 * 1024;
    const a = await send(url, 's', lines([sized('k1', 'a', 1000, MiB), sized('k1', 'b', 1001, MiB + 1), sized('k1', 'b', 1002, 300)]));
    expect(a.accepted).toBe(2);
    expect(a.rejected.map((r) => r.index)).toEqual([1]);
    expect(a.rejected[0]!.error).toContain(`over the maximum event size of ${MiB} bytes`);
    const res = await fetch(`${url}/streams/s/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: 'x'.repeat(5 * MiB) });
    expect(res.status).toBe(413);
  });
});

test('vigil serve takes both limits from VIGIL_* variables and flags, and names them in its answers and metrics', async () => {
  const root = tempDir();
  const rules = join(root, 'rules');
  mkdirSync(rules);
  writeFileSync(join(rules, 'doors.vigil'), DOORS);
  const p = await startServe(['--port', '0', '--data-dir', join(root, 'data'), '--rules-dir', rules, '--max-lead-ms', '60000'], { VIGIL_MAX_EVENT_BYTES: '400' });
  try {
    const ts = new Date().toISOString();
    const a = await send(p.url, 'doors', lines([
      { door_id: 'd', ts, state: 'open' },
      { door_id: 'd', ts, state: 'closed', pad: 'x'.repeat(400) },
      { door_id: 'd', ts: new Date(Date.now() + 120_000).toISOString(), state: 'closed' },
    ]));
    expect(a.accepted).toBe(1);
    expect(a.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(a.rejected[0]!.error).toMatch(/over the maximum event size of 400 bytes \(VIGIL_MAX_EVENT_BYTES\)$/);
    expect(a.rejected[1]!.error).toContain('maximum lead of 1m (VIGIL_MAX_LEAD_MS)');
    expect(await metric(p.url, 'vigil_events_over_limit_total{stream="doors",reason="too_large"}')).toBe(1);
    expect(await metric(p.url, 'vigil_events_over_limit_total{stream="doors",reason="too_far_ahead"}')).toBe(1);
  } finally {
    p.child.kill('SIGTERM');
    await p.exited;
  }
});
