// Everyday rough edges of the API: a body of a type no route takes (curl -d sends
// application/x-www-form-urlencoded) gets a 415 naming the type sent and the ones accepted, over a
// real socket; GET /rules/:id `summary.steps` lists every step, negated and absence steps too;
// file rules loaded at start log one "rule loaded" line each, as PUT and hot-loaded rules do.

import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, describe, expect, test } from 'vitest';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { RULE_AB, STREAM_S } from '../helpers/service-rules.js';

const services: TestService[] = [];
afterAll(async () => {
  for (const s of services) await s.close();
  removeTempDirs();
});

async function listen(s: TestService): Promise<string> {
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
}

const RULE_GAPS = `rule gaps {
  from s
  match
    a: type == "a"
    then not x: type == "x"
    then b: type == "b"
    then not y: type == "y" for 5m
  within 1h
  alert info "gaps {k}"
}
`;

describe('415 names the type sent and the accepted ones', () => {
  test('ingest with curl -d (form-urlencoded), over a socket', async () => {
    const s = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB } });
    services.push(s);
    const url = await listen(s);
    const res = await fetch(`${url}/streams/s/events`, { method: 'POST', body: new URLSearchParams({ '{"type":"a","k":"u","ts":1}': '' }) });
    expect(res.status).toBe(415);
    const body = (await res.json()) as { error: { code: string; message: string; contentType: string; accepted: string[] } };
    expect(body.error.code).toBe('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE');
    expect(body.error.message).toBe("unsupported Content-Type 'application/x-www-form-urlencoded'; use application/json (an object or an array) or application/x-ndjson");
    expect(body.error.contentType).toBe('application/x-www-form-urlencoded');
    expect(body.error.accepted).toEqual(['application/json', 'application/x-ndjson']);
    // Nothing was taken.
    const streams = (await (await fetch(`${url}/streams`)).json()) as { streams: { name: string; accepted: number }[] };
    expect(streams.streams.find((x) => x.name === 's')!.accepted).toBe(0);

    // A rule PUT with curl -d: the rule text is wanted as text/plain.
    const put = await fetch(`${url}/rules/r1`, { method: 'PUT', body: new URLSearchParams({ rule: 'x' }) });
    expect(put.status).toBe(415);
    expect(((await put.json()) as { error: { message: string } }).error.message).toBe(
      "unsupported Content-Type 'application/x-www-form-urlencoded'; use text/plain (the rule text)",
    );
    // No Content-Type at all.
    const none = await fetch(`${url}/streams/s/events`, { method: 'POST', body: new Uint8Array([123, 125]) });
    expect(none.status).toBe(415);
    expect(((await none.json()) as { error: { message: string } }).error.message).toMatch(/^no Content-Type; use application\/json/);
  });
});

describe('summary.steps lists every step', () => {
  test('negated and absence steps are in the summary, in pattern order', async () => {
    const s = await startService({ rules: { 's.vigil': STREAM_S + RULE_GAPS } });
    services.push(s);
    const res = await s.app.inject({ method: 'GET', url: '/rules/gaps' });
    expect(res.statusCode).toBe(200);
    const steps = res.json().summary.steps as Record<string, unknown>[];
    expect(steps.map((x) => x.name)).toEqual(['a', 'x', 'b', 'y']);
    expect(steps[0]).toMatchObject({ name: 'a', negated: false, min: 1 });
    expect(steps[1]).toEqual({ name: 'x', negated: true, kind: 'negation', forMs: null });
    expect(steps[2]).toMatchObject({ name: 'b', negated: false });
    expect(steps[3]).toEqual({ name: 'y', negated: true, kind: 'absence', forMs: 300_000 });
  });
});

describe('one "rule loaded" log line per rule load', () => {
  test('file rules loaded at start, and again after a restart', async () => {
    const lines: { msg: string; rule?: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
        cb();
      },
    });
    const logger = pino({ level: 'info' }, sink);
    const s = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB + RULE_GAPS }, core: { logger } });
    const loaded = () => lines.filter((l) => l.msg === 'rule loaded').map((l) => l.rule).sort();
    expect(loaded()).toEqual(['ab', 'gaps']);
    await s.close();
    lines.length = 0;
    const again = await startService({ dataDir: s.dataDir, rules: { 's.vigil': STREAM_S + RULE_AB + RULE_GAPS }, core: { logger } });
    services.push(again);
    expect(loaded()).toEqual(['ab', 'gaps']);
  });
});
