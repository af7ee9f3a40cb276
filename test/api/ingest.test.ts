// POST /streams/:stream/events through inject(): object, array and NDJSON bodies, per-event
// rejections with the rest taken, malformed JSON with line and column, body limit, media types,
// unknown stream, Idempotency-Key repeats (sequential and concurrent) applied once.

import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { post, removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { RULE_AB, STREAM_S } from '../helpers/service-rules.js';

let s: TestService;
beforeEach(async () => {
  s = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB }, flags: ['--body-limit', '4096'] });
});
afterEach(async () => {
  await s.close();
});
afterAll(removeTempDirs);

async function streamCounts(name = 's') {
  const res = await s.app.inject('/streams');
  expect(res.statusCode).toBe(200);
  return (res.json().streams as { name: string; accepted: number; late: number; rejected: number }[]).find((x) => x.name === name)!;
}

function raw(payload: string, type = 'application/json', headers: Record<string, string> = {}) {
  return s.app.inject({ method: 'POST', url: '/streams/s/events', headers: { 'content-type': type, ...headers }, payload });
}

describe('bodies', () => {
  test('one JSON object', async () => {
    const res = await raw(JSON.stringify({ type: 'a', k: 'u1', ts: 1000 }));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 1, late: 0, rejected: [] });
  });

  test('a JSON array, with a charset parameter', async () => {
    const res = await raw(JSON.stringify([{ type: 'a', k: 'u1', ts: 1000 }, { type: 'b', k: 'u1', ts: 2000 }]), 'application/json; charset=utf-8');
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 2, late: 0, rejected: [] });
    const alerts = (await s.app.inject('/alerts')).json().alerts;
    expect(alerts.map((a: { message: string }) => a.message)).toEqual(['ab u1']);
  });

  test('NDJSON with blank lines and CRLF', async () => {
    const res = await raw('{"type":"a","k":"u1","ts":1}\r\n\r\n  \n{"type":"b","k":"u1","ts":2}\n', 'application/x-ndjson');
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 2, late: 0, rejected: [] });
  });

  test('an empty NDJSON body takes nothing', async () => {
    const res = await raw('', 'application/x-ndjson');
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 0, late: 0, rejected: [] });
  });

  test('bad events are rejected one by one with their index; the rest are taken', async () => {
    const res = await post(s.app, 's', [
      { type: 'a', k: 'u1', ts: 1000 }, // 0 ok
      { type: 7, k: 'u1', ts: 1001 }, // 1 schema type mismatch
      { type: 'a', ts: 1002 }, // 2 missing key
      { type: 'a', k: 'u1' }, // 3 missing time
      42, // 4 not an object
      { type: 'a', k: 'u2', ts: 'yesterday' }, // 5 bad time
      { type: 'b', k: 'u1', ts: 1005 }, // 6 ok
    ]);
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.accepted).toBe(2);
    expect(body.late).toBe(0);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3, 4, 5]);
    // NDJSON rejections also carry the line.
    expect(body.rejected.map((r: { line: number }) => r.line)).toEqual([2, 3, 4, 5, 6]);
    const errors = body.rejected.map((r: { error: string }) => r.error);
    expect(errors[0]).toMatch(/type/);
    expect(errors[1]).toMatch(/key/);
    expect(errors[2]).toMatch(/time/);
    expect(errors[3]).toMatch(/object/);
    expect(errors[4]).toMatch(/time/);
    expect(await streamCounts()).toMatchObject({ accepted: 2, rejected: 5 });
    // The good ones were applied: a then b for u1.
    const alerts = (await s.app.inject('/alerts')).json().alerts;
    expect(alerts).toHaveLength(1);
  });

  test('a non-object inside a JSON array is rejected with its index', async () => {
    const res = await raw(JSON.stringify([{ type: 'a', k: 'u1', ts: 1 }, 'text', null, [1], { type: 'a', k: 'u2', ts: 2 }]));
    expect(res.statusCode).toBe(202);
    expect(res.json().accepted).toBe(2);
    expect(res.json().rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3]);
  });

  test('late events are counted and kept on the late side output', async () => {
    await post(s.app, 's', [{ type: 'x', k: 'u1', ts: 10_000 }]);
    const res = await post(s.app, 's', [{ type: 'x', k: 'u1', ts: 5_000, id: 'old' }]);
    expect(res.json()).toEqual({ accepted: 0, late: 1, rejected: [] });
    const late = await s.app.inject('/streams/s/late');
    expect(late.statusCode).toBe(200);
    expect(late.json().late.map((e: { event: { id: string } }) => e.event.id)).toEqual(['old']);
  });
});

describe('malformed JSON: 400 with line and column, nothing taken', () => {
  test('JSON: position from the scanner', async () => {
    const res = await raw('[\n  {"type": "a", "k": "u1", "ts": 1},\n  {"type": , "k": "u1"}\n]');
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error.code).toBe('VIGIL_ERR_BAD_JSON');
    expect(body.error.line).toBe(3);
    expect(body.error.column).toBe(12);
    expect(body.error.message).toMatch(/line 3, column 12/);
    expect(await streamCounts()).toMatchObject({ accepted: 0, rejected: 0 });
  });

  test('JSON: truncated body', async () => {
    const res = await raw('{"type": "a", "k": "u1"');
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'VIGIL_ERR_BAD_JSON', line: 1, column: 24 });
  });

  test('JSON: trailing garbage and an empty body', async () => {
    const res = await raw('{"a": 1} {"b": 2}');
    expect(res.json().error).toMatchObject({ code: 'VIGIL_ERR_BAD_JSON', line: 1, column: 10 });
    const empty = await raw('');
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.code).toBe('VIGIL_ERR_BAD_JSON');
  });

  test('the error message never echoes the body', async () => {
    const res = await raw('{"secret": "hunter2", oops}');
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain('hunter2');
  });

  test('NDJSON: the line number of the bad line, nothing of the batch taken', async () => {
    const res = await raw('{"type":"a","k":"u1","ts":1}\n\n{"type":"a","k":"u1","ts":2}\n{"type":"a",,"k":"u1","ts":3}\n', 'application/x-ndjson');
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'VIGIL_ERR_BAD_JSON', line: 4, column: 13 });
    expect(await streamCounts()).toMatchObject({ accepted: 0 });
  });

  test('a JSON scalar body is a bad request', async () => {
    const res = await raw('42');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VIGIL_ERR_BAD_REQUEST');
  });
});

describe('limits, media types, streams', () => {
  test('a body over the limit: 413, nothing taken, the next request works', async () => {
    const big = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ type: 'a', k: 'u1', ts: i })));
    expect(big.length).toBeGreaterThan(4096);
    const res = await raw(big);
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toMatchObject({ code: 'VIGIL_ERR_BODY_TOO_LARGE', limit: 4096 });
    const ok = await post(s.app, 's', [{ type: 'a', k: 'u1', ts: 1 }]);
    expect(ok.statusCode).toBe(202);
    expect(await streamCounts()).toMatchObject({ accepted: 1 });
  });

  test('unsupported media types: 415', async () => {
    const res = await raw('{"type":"a","k":"u1","ts":1}', 'text/plain');
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE');
    const xml = await raw('<a/>', 'application/xml');
    expect(xml.statusCode).toBe(415);
    expect(xml.json().error.code).toBe('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  test('unknown stream: 404', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/streams/nope/events', headers: { 'content-type': 'application/json' }, payload: '{"a":1}' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('VIGIL_ERR_STREAM_NOT_FOUND');
  });
});

describe('Idempotency-Key', () => {
  test('a repeat gets the first answer and is applied once', async () => {
    const events = [{ type: 'a', k: 'u1', ts: 1 }, { type: 7, k: 'u1', ts: 2 }, { type: 'b', k: 'u1', ts: 3 }];
    const first = await post(s.app, 's', events, { 'idempotency-key': 'batch-1' });
    const again = await post(s.app, 's', events, { 'idempotency-key': 'batch-1' });
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual(first.json());
    expect(await streamCounts()).toMatchObject({ accepted: 2, rejected: 1 });
    expect((await s.app.inject('/alerts')).json().alerts).toHaveLength(1);
    // Another key is another batch.
    await post(s.app, 's', [{ type: 'x', k: 'u1', ts: 4 }], { 'idempotency-key': 'batch-2' });
    expect(await streamCounts()).toMatchObject({ accepted: 3 });
  });

  test('concurrent repeats are applied once', async () => {
    const events = [{ type: 'a', k: 'u9', ts: 1 }, { type: 'b', k: 'u9', ts: 2 }];
    const answers = await Promise.all(Array.from({ length: 5 }, () => post(s.app, 's', events, { 'idempotency-key': 'same' })));
    for (const a of answers) expect(a.json()).toEqual({ accepted: 2, late: 0, rejected: [] });
    expect(await streamCounts()).toMatchObject({ accepted: 2 });
  });

  test('the key survives a restart', async () => {
    const events = [{ type: 'a', k: 'u1', ts: 1 }];
    const first = await post(s.app, 's', events, { 'idempotency-key': 'k-restart' });
    await s.close();
    s = await startService({ dataDir: s.dataDir, rules: { 's.vigil': STREAM_S + RULE_AB } });
    const again = await post(s.app, 's', events, { 'idempotency-key': 'k-restart' });
    expect(again.json()).toEqual(first.json());
    expect(await streamCounts()).toMatchObject({ accepted: 1 });
  });

  test('an over-long key is a bad request', async () => {
    const res = await post(s.app, 's', [{ type: 'a', k: 'u1', ts: 1 }], { 'idempotency-key': 'x'.repeat(300) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VIGIL_ERR_BAD_REQUEST');
  });
});
