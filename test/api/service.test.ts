// The other routes through inject(): streams and the late output (paging), alerts (filters,
// paging), health/ready/metrics hooks, auth on writes only, savepoints that open as a data dir,
// unknown routes, and logs that never carry the token or a request body.

import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { buildServer } from '../../src/api/server.js';
import { DurableEngine } from '../../src/engine/durable-engine.js';
import { allAlerts, post, removeTempDirs, silent, startService, tempDir, type TestService } from '../helpers/service.js';
import { apiRule, RULE_AB, STREAM_S } from '../helpers/service-rules.js';

const open: TestService[] = [];
async function start(opts: Parameters<typeof startService>[0] = {}): Promise<TestService> {
  const s = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB }, ...opts });
  open.push(s);
  return s;
}
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
afterAll(removeTempDirs);

describe('streams', () => {
  test('GET /streams: watermark, max time, counts', async () => {
    const s = await start();
    await post(s.app, 's', [{ type: 'a', k: 'u', ts: 5000 }, { type: 'a', ts: 1 }, { type: 'a', k: 'u', ts: 100 }]);
    const res = await s.app.inject('/streams');
    expect(res.statusCode).toBe(200);
    expect(res.json().streams).toEqual([
      expect.objectContaining({ name: 's', watermark: 5000, maxTime: 5000, accepted: 1, late: 1, rejected: 1, rules: ['ab'], lagMs: expect.any(Number) }),
    ]);
  });

  test('late output: newest first, paged, 404 for an unknown stream', async () => {
    const s = await start();
    await post(s.app, 's', [{ type: 'x', k: 'u', ts: 10_000 }]);
    await post(s.app, 's', [1, 2, 3, 4, 5].map((i) => ({ type: 'x', k: 'u', ts: i, i })));
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { statusCode: number; json(): { late: { event: { i: number } }[]; next: string | null } } = await s.app.inject(`/streams/s/late?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body: { late: { event: { i: number } }[]; next: string | null } = res.json();
      expect(body.late.length).toBeLessThanOrEqual(2);
      seen.push(...body.late.map((e: { event: { i: number } }) => e.event.i));
      cursor = body.next;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual([5, 4, 3, 2, 1]);
    const missing = await s.app.inject('/streams/nope/late');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('VIGIL_ERR_STREAM_NOT_FOUND');
    const badLimit = await s.app.inject('/streams/s/late?limit=0');
    expect(badLimit.statusCode).toBe(400);
    expect(badLimit.json().error.code).toBe('VIGIL_ERR_BAD_REQUEST');
  });
});

describe('alerts', () => {
  test('newest first with delivery state; filters by rule and key; paged', async () => {
    const s = await start();
    await s.app.inject({ method: 'PUT', url: '/rules/p', headers: { 'content-type': 'text/plain' }, payload: apiRule('p', 'p') });
    const events = [];
    for (let i = 0; i < 5; i++) events.push({ type: 'a', k: `u${i % 2}`, ts: i * 10 }, { type: 'b', k: `u${i % 2}`, ts: i * 10 + 1 });
    await post(s.app, 's', events);
    const all = await allAlerts(s.app);
    expect(all).toHaveLength(10); // 5 for ab, 5 for p
    expect(new Set(all.map((a) => a.id)).size).toBe(10);
    const first = (await s.app.inject('/alerts?limit=1')).json();
    expect(first.alerts).toHaveLength(1);
    expect(first.alerts[0].delivery).toEqual({ '0:log': { state: expect.any(String), attempts: expect.any(Number), lastError: null } });
    expect(first.next).not.toBeNull();
    // Newest first: times never increase down the list (per rule).
    const abTimes = (await allAlerts(s.app, 'rule=ab')).map((a) => Date.parse(a.time as string));
    expect(abTimes).toHaveLength(5);
    expect([...abTimes].sort((x, y) => y - x)).toEqual(abTimes);
    expect(await allAlerts(s.app, 'rule=ab&key=u1')).toHaveLength(2);
    expect(await allAlerts(s.app, 'since=2999-01-01T00:00:00Z')).toHaveLength(0);
    expect(await allAlerts(s.app, `since=${Date.now() - 60_000}`)).toHaveLength(10);
    const bad = await s.app.inject('/alerts?since=yesterday');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('VIGIL_ERR_BAD_REQUEST');
  });
});

describe('health, readiness, metrics', () => {
  test('/health always ok; /ready follows the core and the extra check', async () => {
    let mqtt = { ok: false, detail: 'MQTT not connected' };
    const s = await start({ server: { extraReadiness: () => mqtt } });
    expect((await s.app.inject('/health')).json()).toEqual({ status: 'ok' });
    const notReady = await s.app.inject('/ready');
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json().error.code).toBe('VIGIL_ERR_NOT_READY');
    expect(notReady.json().error.message).toContain('MQTT not connected');
    mqtt = { ok: true, detail: 'connected' };
    const ready = await s.app.inject('/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json().status).toBe('ready');
    await s.core.close();
    expect((await s.app.inject('/ready')).statusCode).toBe(503);
    expect((await s.app.inject('/health')).statusCode).toBe(200);
  });

  test('/metrics: 404 without a registry, the registry text with one', async () => {
    const without = await start();
    expect((await without.app.inject('/metrics')).statusCode).toBe(404);
    const withMetrics = await start({ server: { metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'vigil_up 1\n' }) } });
    const res = await withMetrics.app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toBe('vigil_up 1\n');
  });

  test('an unknown route: 404 in the catalogue shape', async () => {
    const s = await start();
    const res = await s.app.inject('/nope');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('VIGIL_ERR_ROUTE_NOT_FOUND');
  });
});

describe('auth', () => {
  const TOKEN = 's3cret-token';
  const text = { 'content-type': 'text/plain' };

  test('rule writes and admin need the token; reads, ingest, validate and backtest do not', async () => {
    const s = await start({ flags: ['--api-token', TOKEN] });
    const bearer = { authorization: `Bearer ${TOKEN}` };
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${TOKEN}x` }, { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }]) {
      const putRes = await s.app.inject({ method: 'PUT', url: '/rules/p', headers: { ...text, ...headers }, payload: apiRule('p', 'x') });
      expect(putRes.statusCode).toBe(401);
      expect(putRes.json().error.code).toBe('VIGIL_ERR_UNAUTHORIZED');
      expect(putRes.headers['www-authenticate']).toContain('Bearer');
      expect((await s.app.inject({ method: 'DELETE', url: '/rules/ab', headers })).statusCode).toBe(401);
      expect((await s.app.inject({ method: 'POST', url: '/admin/savepoints', headers })).statusCode).toBe(401);
    }
    expect((await s.app.inject({ method: 'PUT', url: '/rules/p', headers: { ...text, ...bearer }, payload: apiRule('p', 'x') })).statusCode).toBe(201);
    expect((await s.app.inject({ method: 'DELETE', url: '/rules/p', headers: bearer })).statusCode).toBe(204);
    expect((await s.app.inject({ method: 'POST', url: '/admin/savepoints', headers: bearer })).statusCode).toBe(201);
    // Open routes.
    expect((await s.app.inject('/rules')).statusCode).toBe(200);
    expect((await s.app.inject('/rules/ab')).statusCode).toBe(200);
    expect((await s.app.inject('/streams')).statusCode).toBe(200);
    expect((await s.app.inject('/alerts')).statusCode).toBe(200);
    expect((await post(s.app, 's', [{ type: 'a', k: 'u', ts: 1 }])).statusCode).toBe(202);
    expect((await s.app.inject({ method: 'POST', url: '/rules/validate', headers: text, payload: apiRule('v', 'x') })).statusCode).toBe(200);
    expect((await s.app.inject({ method: 'POST', url: '/rules/ab/backtest', headers: { 'content-type': 'application/x-ndjson' }, payload: '' })).statusCode).toBe(200);
  });

  test('without a token every route is open', async () => {
    const s = await start();
    expect((await s.app.inject({ method: 'PUT', url: '/rules/p', headers: text, payload: apiRule('p', 'x') })).statusCode).toBe(201);
    expect((await s.app.inject({ method: 'POST', url: '/admin/savepoints' })).statusCode).toBe(201);
  });

  test('logs never carry the token or a request body', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    const s = await start({ flags: ['--api-token', TOKEN] });
    const app = buildServer(s.core, s.config, logger);
    await app.ready();
    await app.inject({ method: 'PUT', url: '/rules/p', headers: { ...text, authorization: `Bearer ${TOKEN}` }, payload: apiRule('p', 'body-marker-1') });
    await app.inject({ method: 'PUT', url: '/rules/p', headers: { ...text, authorization: 'Bearer wrong-token-marker' }, payload: apiRule('p', 'body-marker-2') });
    await app.inject({ method: 'POST', url: '/streams/s/events', headers: { 'content-type': 'application/json' }, payload: '{"k": "body-marker-3", oops' });
    await app.inject({ method: 'POST', url: '/streams/s/events', headers: { 'content-type': 'application/json' }, payload: '{"k": "body-marker-4", "ts": 1, "type": "a"}' });
    await app.close();
    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(4);
    for (const secret of [TOKEN, 'wrong-token-marker', 'body-marker']) expect(log).not.toContain(secret);
  });
});

describe('savepoints', () => {
  test('POST /admin/savepoints: a directory that opens as a data dir with the same rules and streams', async () => {
    const s = await start();
    await s.app.inject({ method: 'PUT', url: '/rules/p', headers: { 'content-type': 'text/plain' }, payload: apiRule('p', 'p') });
    await post(s.app, 's', [{ type: 'a', k: 'u1', ts: 1000 }, { type: 'b', k: 'u1', ts: 2000 }, { type: 'a', k: 'u2', ts: 3000 }]);
    const res = await s.app.inject({ method: 'POST', url: '/admin/savepoints' });
    expect(res.statusCode).toBe(201);
    const { path } = res.json();
    expect(typeof path).toBe('string');
    const copy = join(tempDir(), 'restored');
    cpSync(path, copy, { recursive: true });
    const before = { rules: (await s.app.inject('/rules')).json().rules, streams: (await s.app.inject('/streams')).json().streams, alerts: await allAlerts(s.app) };
    // Events after the savepoint are not in it.
    await post(s.app, 's', [{ type: 'b', k: 'u2', ts: 4000 }]);

    const core = await DurableEngine.open({ dataDir: copy, rulesDir: s.rulesDir, watchRules: false, logger: silent, checkpointMs: 2 });
    const app = buildServer(core, s.config, silent);
    try {
      expect((await app.inject('/rules')).json().rules.map((r: { id: string; version: number }) => [r.id, r.version])).toEqual(before.rules.map((r: { id: string; version: number }) => [r.id, r.version]));
      const streams = (await app.inject('/streams')).json().streams;
      expect(streams.map((x: { name: string; accepted: number; watermark: number }) => [x.name, x.accepted, x.watermark])).toEqual(
        before.streams.map((x: { name: string; accepted: number; watermark: number }) => [x.name, x.accepted, x.watermark]),
      );
      expect((await allAlerts(app)).map((a) => a.id)).toEqual(before.alerts.map((a) => a.id));
      // The partial match of u2 was saved: it completes in the restored copy.
      await post(app, 's', [{ type: 'b', k: 'u2', ts: 4000 }]);
      expect((await allAlerts(app, 'key=u2')).length).toBe(2);
    } finally {
      await app.close();
      await core.close();
    }
  });
});
