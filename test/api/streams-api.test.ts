// Streams as API objects of their own, over a real socket (fastify on 127.0.0.1:0, real LMDB in
// a temp dir): PUT /streams/:stream declares one (token-guarded like rule writes), GET shows it,
// DELETE is refused while a rule reads it; API streams survive a restart. Deleting an API rule
// never makes a stream its producers send to disappear: a stream only its text declared stays,
// as an API stream. File and API rule names never collide silently: a file rule named like an
// API rule is refused with one clear error (shown in GET /rules), the API rule stays as it was,
// also across a restart, and deleting the file leaves it at the same version.

import { rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, test } from 'vitest';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { RULE_AB, STREAM_S } from '../helpers/service-rules.js';

const TOKEN = 'stream-test-token';
const services: TestService[] = [];
afterAll(async () => {
  for (const s of services) await s.close();
  removeTempDirs();
});

const TEMPS = `stream temps {
  key sensor
  time ts
  fields {
    sensor: string
    ts: number
    c: number
  }
}`;

const HOT = `rule hot {
  from temps
  match
    h: c > 30
  alert warning "hot {sensor}"
}
`;

interface Api {
  s: TestService;
  url: string;
  req(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<{ status: number; json: any }>;
}

async function start(opts: Parameters<typeof startService>[0] = {}): Promise<Api> {
  const s = await startService({ ...opts, flags: ['--api-token', TOKEN, ...(opts.flags ?? [])] });
  services.push(s);
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  return {
    s,
    url,
    async req(method, path, body, headers = {}) {
      const h: Record<string, string> = { authorization: `Bearer ${TOKEN}`, ...headers };
      if (body !== undefined && h['content-type'] === undefined) h['content-type'] = 'text/plain';
      const res = await fetch(url + path, { method, headers: h, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      return { status: res.status, json: text === '' ? null : JSON.parse(text) };
    },
  };
}

const event = (sensor: string, ts: number, c: number) => JSON.stringify({ sensor, ts, c });

describe('streams as API objects', () => {
  test('PUT declares, GET shows, events flow, the token guards writes, and it survives a restart', async () => {
    const a = await start();
    const noToken = await fetch(`${a.url}/streams/temps`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: TEMPS });
    expect(noToken.status).toBe(401);
    expect((await a.req('GET', '/streams/temps')).status).toBe(404);

    const put = await a.req('PUT', '/streams/temps', TEMPS);
    expect(put.status).toBe(201);
    expect(put.json.created).toBe(true);
    expect(put.json.stream).toMatchObject({ name: 'temps', origin: 'api', declared: true, text: TEMPS, rules: [] });
    const again = await a.req('PUT', '/streams/temps', TEMPS);
    expect(again.status).toBe(200);
    expect(again.json.created).toBe(false);

    const ingest = await a.req('POST', '/streams/temps/events', event('s1', 1000, 20), { 'content-type': 'application/json' });
    expect(ingest.status).toBe(202);
    expect(ingest.json.accepted).toBe(1);
    // The schema of the declaration applies.
    const bad = await a.req('POST', '/streams/temps/events', JSON.stringify({ sensor: 's1', ts: 2000, c: 'warm' }), { 'content-type': 'application/json' });
    expect(bad.json.rejected).toHaveLength(1);

    await a.s.close();
    const b = await start({ dataDir: a.s.dataDir });
    const got = await b.req('GET', '/streams/temps');
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ name: 'temps', origin: 'api', text: TEMPS, accepted: 1, rejected: 1 });
    expect((await b.req('POST', '/streams/temps/events', event('s1', 3000, 21), { 'content-type': 'application/json' })).status).toBe(202);
  });

  test('a text that does not compile, declares a rule or another name: 400 positioned, nothing changed', async () => {
    const a = await start();
    const broken = await a.req('PUT', '/streams/temps', 'stream temps {\n  key sensor\n  time\n}');
    expect(broken.status).toBe(400);
    expect(broken.json.error.code).toBe('VIGIL_ERR_STREAM_INVALID');
    expect(broken.json.errors[0]).toMatchObject({ line: expect.any(Number), col: expect.any(Number), file: 'request' });
    const withRule = await a.req('PUT', '/streams/temps', `${TEMPS}\n${HOT}`);
    expect(withRule.status).toBe(400);
    expect(withRule.json.errors[0].message).toContain("exactly one stream, named 'temps', and nothing else");
    const otherName = await a.req('PUT', '/streams/temps', TEMPS.replace('stream temps', 'stream other'));
    expect(otherName.status).toBe(400);
    expect((await a.req('GET', '/streams/temps')).status).toBe(404);
    expect((await a.req('GET', '/streams/other')).status).toBe(404);
    const media = await a.req('PUT', '/streams/temps', TEMPS, { 'content-type': 'application/json' });
    expect(media.status).toBe(415);
  });

  test('DELETE is refused while a rule reads the stream; after the rule goes it is removed', async () => {
    const a = await start();
    expect((await a.req('PUT', '/streams/temps', TEMPS)).status).toBe(201);
    expect((await a.req('PUT', '/rules/hot', HOT)).status).toBe(201);
    const refused = await a.req('DELETE', '/streams/temps');
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('VIGIL_ERR_STREAM_IN_USE');
    expect(refused.json.error.message).toContain("'hot'");
    expect((await a.req('GET', '/streams/temps')).json.rules).toEqual(['hot']);

    expect((await a.req('DELETE', '/rules/hot')).status).toBe(204);
    // The rule is gone, the stream is not: producers still get their events taken.
    expect((await a.req('POST', '/streams/temps/events', event('s1', 1000, 40), { 'content-type': 'application/json' })).status).toBe(202);
    expect((await a.req('DELETE', '/streams/temps')).status).toBe(204);
    expect((await a.req('GET', '/streams/temps')).status).toBe(404);
    expect((await a.req('POST', '/streams/temps/events', event('s1', 2000, 40), { 'content-type': 'application/json' })).status).toBe(404);
    expect((await a.req('DELETE', '/streams/temps')).status).toBe(404);
  });

  test("deleting an API rule keeps the stream only its text declared, as an API stream (also after a restart)", async () => {
    const a = await start();
    expect((await a.req('PUT', '/rules/hot', `${TEMPS}\n${HOT}`)).status).toBe(201);
    expect((await a.req('GET', '/streams/temps')).json).toMatchObject({ origin: 'rule', declaredIn: ['hot'] });
    expect((await a.req('POST', '/streams/temps/events', event('s1', 1000, 40), { 'content-type': 'application/json' })).status).toBe(202);
    expect((await a.req('DELETE', '/rules/hot')).status).toBe(204);

    const kept = await a.req('GET', '/streams/temps');
    expect(kept.status).toBe(200);
    expect(kept.json).toMatchObject({ name: 'temps', origin: 'api', text: `${TEMPS}\n`, rules: [], accepted: 1 });
    expect((await a.req('POST', '/streams/temps/events', event('s1', 2000, 41), { 'content-type': 'application/json' })).status).toBe(202);

    await a.s.close();
    const b = await start({ dataDir: a.s.dataDir });
    expect((await b.req('GET', '/streams/temps')).json).toMatchObject({ origin: 'api', accepted: 2 });
    expect((await b.req('POST', '/streams/temps/events', event('s1', 3000, 42), { 'content-type': 'application/json' })).status).toBe(202);
  });

  test('a stream from a rules file is not an API stream: DELETE 409 naming the file', async () => {
    const a = await start({ rules: { 's.vigil': STREAM_S + RULE_AB } });
    const got = await a.req('GET', '/streams/s');
    expect(got.json).toMatchObject({ origin: 'file', declaredIn: [join(a.s.rulesDir, 's.vigil')] });
    expect(got.json.text).toContain('stream s {');
    const del = await a.req('DELETE', '/streams/s');
    expect(del.status).toBe(409);
    expect(del.json.error.code).toBe('VIGIL_ERR_STREAM_NOT_API');
    expect(del.json.error.message).toContain('s.vigil');
  });
});

describe('file and API rule names never collide silently', () => {
  test('a file rule named like an API rule is refused: one error, shown in GET /rules; the API rule stays, across reloads, a restart and the file going', async () => {
    const lines: { msg: string; level: number; rule?: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
        cb();
      },
    });
    const logger = pino({ level: 'info' }, sink);
    const a = await start({ rules: { 's.vigil': STREAM_S }, core: { logger } });
    const apiText = `rule clash {\n  from s\n  match\n    a: type == "a"\n  alert info "api clash {k}"\n}\n`;
    expect((await a.req('PUT', '/rules/clash', apiText)).status).toBe(201);
    const version = (await a.req('GET', '/rules/clash')).json.version as number;

    const file = join(a.s.rulesDir, 'clash.vigil');
    writeFileSync(file, `rule clash {\n  from s\n  match\n    b: type == "b"\n  alert info "file clash {k}"\n}\n`);
    for (let i = 0; i < 3; i++) a.s.core.reloadRulesDir();

    const errorsLogged = lines.filter((l) => l.level >= 50);
    expect(errorsLogged).toHaveLength(1);
    expect(errorsLogged[0]!.msg).toContain("rule 'clash' is already defined through the API");

    const list = (await a.req('GET', '/rules')).json.rules as { id: string; origin: string; status: string; version: number; file: string | null; errors: { message: string; line: number }[] }[];
    const entries = list.filter((r) => r.id === 'clash');
    expect(entries.map((r) => [r.origin, r.status])).toEqual([['api', 'running'], ['file', 'refused']]);
    expect(entries[0]!.version).toBe(version);
    expect(entries[1]!.file).toBe(file);
    expect(entries[1]!.errors[0]).toMatchObject({ line: 1 });
    // The API rule is the one running.
    const detail = (await a.req('GET', '/rules/clash')).json;
    expect(detail).toMatchObject({ origin: 'api', version, text: apiText });
    const ingest = await a.req('POST', '/streams/s/events', JSON.stringify({ type: 'a', k: 'u', ts: 1 }), { 'content-type': 'application/json' });
    expect(ingest.status).toBe(202);
    const alerts = (await a.req('GET', '/alerts')).json.alerts as { message: string }[];
    expect(alerts.map((x) => x.message)).toEqual(['api clash u']);

    // A restart with the file still there: the API rule is loaded, the file refused.
    await a.s.close();
    lines.length = 0;
    const b = await start({ dataDir: a.s.dataDir, rules: { 's.vigil': STREAM_S, 'clash.vigil': `rule clash {\n  from s\n  match\n    b: type == "b"\n  alert info "file clash {k}"\n}\n` }, core: { logger } });
    expect((await b.req('GET', '/rules/clash')).json).toMatchObject({ origin: 'api', version });
    expect(((await b.req('GET', '/rules')).json.rules as { id: string; status: string }[]).filter((r) => r.id === 'clash').map((r) => r.status)).toEqual(['running', 'refused']);
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);

    // The file goes: the API rule is as it was (same version), the refusal is gone.
    rmSync(join(b.s.rulesDir, 'clash.vigil'));
    b.s.core.reloadRulesDir();
    const after = ((await b.req('GET', '/rules')).json.rules as { id: string; status: string; version: number; origin: string }[]).filter((r) => r.id === 'clash');
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ origin: 'api', status: 'running', version });
  });
});
