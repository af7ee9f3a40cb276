// Rules through inject(): list/read, PUT (create, update, compile errors positioned with the
// old version still running, 409 for file rules), partial matches kept when only the message
// changes and dropped (and counted) when the pattern changes, validate, DELETE, backtest.

import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { allAlerts, post, removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { apiRule, RULE_AB, STREAM_S } from '../helpers/service-rules.js';

let s: TestService;
beforeEach(async () => {
  s = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB } });
});
afterEach(async () => {
  await s.close();
});
afterAll(removeTempDirs);

const put = (id: string, text: string, type = 'text/plain') =>
  s.app.inject({ method: 'PUT', url: `/rules/${id}`, headers: { 'content-type': type }, payload: text });
const messages = async (rule: string) => (await allAlerts(s.app, `rule=${rule}`)).map((a) => a.message).sort();

describe('read', () => {
  test('GET /rules lists file rules with origin, version, counters', async () => {
    const res = await s.app.inject('/rules');
    expect(res.statusCode).toBe(200);
    const [rule] = res.json().rules;
    expect(rule).toMatchObject({ id: 'ab', version: 1, origin: 'file', status: 'running', streams: ['s'] });
    expect(rule.counters).toMatchObject({ events: 0, matches: 0 });
  });

  test('GET /rules/:id gives the text and the compiled summary; 404 otherwise', async () => {
    const res = await s.app.inject('/rules/ab');
    expect(res.statusCode).toBe(200);
    const rule = res.json();
    expect(rule.text).toContain('rule ab');
    expect(rule.summary.steps.map((x: { name: string }) => x.name)).toEqual(expect.arrayContaining(['a', 'b']));
    const missing = await s.app.inject('/rules/nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toEqual({ code: 'VIGIL_ERR_RULE_NOT_FOUND', message: "no rule 'nope'" });
  });
});

describe('PUT', () => {
  test('creates (201), then updates (200) with a new version', async () => {
    const created = await put('p', apiRule('p', 'v1'));
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ created: true, rule: { id: 'p', version: 1, origin: 'api' }, droppedPartialMatches: 0 });
    const updated = await put('p', apiRule('p', 'v2'));
    expect(updated.statusCode).toBe(200);
    expect(updated.json()).toMatchObject({ created: false, rule: { id: 'p', version: 2 } });
    expect((await s.app.inject('/rules/p')).json().text).toContain('v2');
  });

  test('a rule text with its own stream declaration', async () => {
    const text = 'stream t {\n  key id\n  time at\n}\n' + 'rule onT {\n  from t\n  match\n    x: v > 10\n  alert high "big {v}"\n}\n';
    const res = await put('onT', text);
    expect(res.statusCode).toBe(201);
    const ingest = await post(s.app, 't', [{ id: 'z', at: 1, v: 11 }]);
    expect(ingest.json().accepted).toBe(1);
    expect(await messages('onT')).toEqual(['big 11']);
  });

  test('a compile error: 400 with every error positioned; the old version keeps running', async () => {
    await put('p', apiRule('p', 'v1'));
    const bad = `rule p {
  from s
  match
    a: type ==
    then b: type ==== "b"
  alert info "{zz(}"
}
`;
    const res = await put('p', bad);
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error.code).toBe('VIGIL_ERR_RULE_INVALID');
    expect(body.errors.length).toBeGreaterThanOrEqual(2);
    for (const e of body.errors) {
      expect(e).toMatchObject({ line: expect.any(Number), col: expect.any(Number), message: expect.any(String), code: expect.any(String) });
      expect(e.line).toBeGreaterThanOrEqual(4);
      expect(e.rendered).toMatch(/\^/);
    }
    expect(body.errors.map((e: { line: number }) => e.line)).toEqual(expect.arrayContaining([5, 6]));
    // Still version 1, still matching.
    expect((await s.app.inject('/rules/p')).json().version).toBe(1);
    await post(s.app, 's', [{ type: 'a', k: 'u', ts: 1 }, { type: 'b', k: 'u', ts: 2 }]);
    expect(await messages('p')).toEqual(['v1 u']);
  });

  test('a text that names another rule, or a stream declared differently, is an error', async () => {
    const wrongName = await put('q', apiRule('other', 'x'));
    expect(wrongName.statusCode).toBe(400);
    expect(wrongName.json().errors[0]).toMatchObject({ line: expect.any(Number), col: expect.any(Number) });
    const clash = await put('q', 'stream s {\n  key other\n  time ts\n}\n' + apiRule('q', 'x'));
    expect(clash.statusCode).toBe(400);
    expect(clash.json().errors.length).toBeGreaterThan(0);
  });

  test('a file rule cannot be replaced through the API: 409', async () => {
    const res = await put('ab', apiRule('ab', 'x'));
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('VIGIL_ERR_RULE_FROM_FILE');
  });

  test('only text/plain: 415 otherwise', async () => {
    const res = await put('p', JSON.stringify({ text: apiRule('p', 'v1') }), 'application/json');
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  test('changing only the message keeps partial matches: the alert completes after the swap', async () => {
    await put('p', apiRule('p', 'v1'));
    await post(s.app, 's', [{ type: 'a', k: 'u1', ts: 1000, id: 'before' }]);
    const swap = await put('p', apiRule('p', 'v2'));
    expect(swap.statusCode).toBe(200);
    expect(swap.json()).toMatchObject({ keptPartialMatches: true, droppedPartialMatches: 0 });
    await post(s.app, 's', [{ type: 'b', k: 'u1', ts: 2000 }]);
    const alerts = await allAlerts(s.app, 'rule=p');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ message: 'v2 u1', version: 2 });
    expect((alerts[0]!.events as { a: { id: string }[] }).a[0]!.id).toBe('before');
  });

  test('changing the pattern drops partial matches and counts them', async () => {
    await put('p', apiRule('p', 'v1'));
    await post(s.app, 's', [{ type: 'a', k: 'u1', ts: 1000 }, { type: 'a', k: 'u2', ts: 1001 }]);
    const swap = await put('p', apiRule('p', 'v2', 'c'));
    expect(swap.statusCode).toBe(200);
    expect(swap.json()).toMatchObject({ keptPartialMatches: false, droppedPartialMatches: 2 });
    await post(s.app, 's', [{ type: 'c', k: 'u1', ts: 2000 }, { type: 'b', k: 'u2', ts: 2001 }]);
    expect(await messages('p')).toEqual([]);
    // New partial matches work with the new pattern.
    await post(s.app, 's', [{ type: 'a', k: 'u1', ts: 3000 }, { type: 'c', k: 'u1', ts: 3001 }]);
    expect(await messages('p')).toEqual(['v2 u1']);
  });
});

describe('validate', () => {
  test('ok with warnings, or errors positioned; never stores anything', async () => {
    const good = await s.app.inject({ method: 'POST', url: '/rules/validate', headers: { 'content-type': 'text/plain' }, payload: apiRule('v', 'x') });
    expect(good.statusCode).toBe(200);
    expect(good.json()).toMatchObject({ ok: true, errors: [] });
    const bad = await s.app.inject({
      method: 'POST',
      url: '/rules/validate',
      headers: { 'content-type': 'text/plain' },
      payload: 'rule v {\n  from s\n  match\n    a: typ == "a" and\n  alert info "x"\n}\n',
    });
    expect(bad.statusCode).toBe(200);
    expect(bad.json().ok).toBe(false);
    expect(bad.json().errors[0]).toMatchObject({ line: 5, col: 3, code: 'dsl/unexpected-token' });
    expect((await s.app.inject('/rules')).json().rules.map((r: { id: string }) => r.id)).toEqual(['ab']);
  });
});

describe('DELETE', () => {
  test('204, then 404; its state is gone', async () => {
    await put('p', apiRule('p', 'v1'));
    await post(s.app, 's', [{ type: 'a', k: 'u1', ts: 1000 }]);
    const del = await s.app.inject({ method: 'DELETE', url: '/rules/p' });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');
    expect((await s.app.inject('/rules/p')).statusCode).toBe(404);
    const again = await s.app.inject({ method: 'DELETE', url: '/rules/p' });
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('VIGIL_ERR_RULE_NOT_FOUND');
    // Re-created: starts empty (the old partial match does not complete).
    await put('p', apiRule('p', 'v1'));
    await post(s.app, 's', [{ type: 'b', k: 'u1', ts: 2000 }]);
    expect(await messages('p')).toEqual([]);
  });

  test('a file rule: 409', async () => {
    const res = await s.app.inject({ method: 'DELETE', url: '/rules/ab' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('VIGIL_ERR_RULE_FROM_FILE');
  });
});

describe('backtest', () => {
  test('the stored rule over NDJSON: records, nothing delivered, live state untouched', async () => {
    const res = await s.app.inject({
      method: 'POST',
      url: '/rules/ab/backtest',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: '{"type":"a","k":"u","ts":1}\n{"type":"b","k":"u","ts":2}\nnot json\n',
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.records.map((r: { message: string }) => r.message)).toEqual(['ab u']);
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]).toMatch(/:3:/);
    expect(await allAlerts(s.app)).toEqual([]);
    const st = (await s.app.inject('/streams')).json().streams[0];
    expect(st.accepted).toBe(0);
  });

  test('a given text with events as an array; any id', async () => {
    const res = await s.app.inject({
      method: 'POST',
      url: '/rules/_/backtest',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ text: 'rule t {\n  from s\n  match\n    a: type == "a"\n  alert info "got {k}"\n}\n', events: [{ type: 'a', k: 'u', ts: 1 }, { type: 'a', ts: 2 }] }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().records.map((r: { message: string }) => r.message)).toEqual(['got u']);
    expect(res.json().errors[0]).toMatch(/key/);
    expect((await s.app.inject('/rules/t')).statusCode).toBe(404);
  });

  test('a text with an error: diagnostics positioned', async () => {
    const res = await s.app.inject({
      method: 'POST',
      url: '/rules/_/backtest',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ text: 'rule t {\n  from s\n  match\n    a: type ==\n  alert info "x"\n}\n', events: '' }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().records).toEqual([]);
    expect(res.json().diagnostics[0]).toMatchObject({ severity: 'error', line: 5, col: 3 });
  });

  test('bad requests: unknown stored rule 404, bad JSON body 400, wrong shape 400, wrong media type 415', async () => {
    const missing = await s.app.inject({ method: 'POST', url: '/rules/nope/backtest', headers: { 'content-type': 'application/x-ndjson' }, payload: '' });
    expect(missing.statusCode).toBe(404);
    const badJson = await s.app.inject({ method: 'POST', url: '/rules/_/backtest', headers: { 'content-type': 'application/json' }, payload: '{"text": ' });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().error).toMatchObject({ code: 'VIGIL_ERR_BAD_JSON', line: 1, column: 10 });
    const shape = await s.app.inject({ method: 'POST', url: '/rules/_/backtest', headers: { 'content-type': 'application/json' }, payload: '{"text": "x", "events": 5}' });
    expect(shape.statusCode).toBe(400);
    expect(shape.json().error.code).toBe('VIGIL_ERR_BAD_REQUEST');
    const media = await s.app.inject({ method: 'POST', url: '/rules/ab/backtest', headers: { 'content-type': 'text/plain' }, payload: '' });
    expect(media.statusCode).toBe(415);
  });
});
