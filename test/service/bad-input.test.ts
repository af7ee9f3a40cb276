// Bad input over a real socket: malformed JSON (JSON and NDJSON), wrong types against the
// schema, missing key or time, non-objects, oversized bodies, unknown streams, wrong media
// types, bad query values, invalid rule text. Each gets a clear error in the catalogue shape and
// nothing else is lost: the good events sent around them give exactly the alerts an
// uninterrupted replay of the good events gives, and the counts match.

import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, expect, test } from 'vitest';
import { runReplay } from '../../src/cli/run.js';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { RULE_AB, STREAM_S } from '../helpers/service-rules.js';

let s: TestService | null = null;
afterEach(async () => {
  await s?.close();
  s = null;
});
afterAll(removeTempDirs);

async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: '127.0.0.1', port: 0 });
}

test('every bad request gets a clear error and loses nothing else', async () => {
  s = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB }, flags: ['--body-limit', '2048'] });
  const url = await listen(s.app);
  const good: Record<string, unknown>[] = [];
  let ts = 1000;
  let n = 0;
  const nextGood = (): Record<string, unknown> => ({ id: `g${n++}`, type: n % 2 === 1 ? 'a' : 'b', k: `u${Math.floor(n / 4) % 3}`, ts: (ts += 10) });
  const sendGood = async (): Promise<void> => {
    const batch = [nextGood(), nextGood(), nextGood()];
    good.push(...batch);
    const res = await fetch(`${url}/streams/s/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: batch.map((e) => JSON.stringify(e)).join('\n') });
    expect(res.status).toBe(202);
    expect(await res.json() as any).toEqual({ accepted: 3, late: 0, rejected: [] });
  };
  const expectError = async (res: Response, status: number, code: string): Promise<Record<string, unknown>> => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = (await res.json() as any) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(10);
    return body as unknown as Record<string, unknown>;
  };
  const ingest = (body: string, type = 'application/json', stream = 's'): Promise<Response> =>
    fetch(`${url}/streams/${stream}/events`, { method: 'POST', headers: { 'content-type': type }, body });

  let perEventRejections = 0;
  await sendGood();
  // Malformed JSON, both kinds.
  const badJson = await expectError(await ingest('[{"id": "x", "type": "a", "k": "u0", "ts": 1}, {"id": }]'), 400, 'VIGIL_ERR_BAD_JSON');
  expect(badJson.error).toMatchObject({ line: 1, column: 55 });
  await sendGood();
  const badNd = await expectError(await ingest('{"id":"x","type":"a","k":"u0","ts":1}\n{"id":"y"\n', 'application/x-ndjson'), 400, 'VIGIL_ERR_BAD_JSON');
  expect(badNd.error).toMatchObject({ line: 2 });
  await sendGood();
  // Per-event rejections next to good events in one body: the good ones are taken.
  {
    const mixedGood = [nextGood(), nextGood()];
    good.push(...mixedGood);
    const res = await ingest(JSON.stringify([{ id: 'bad1', type: 1, k: 'u0', ts: ts + 1 }, mixedGood[0], { id: 'bad2', type: 'a', ts: ts + 2 }, { id: 'bad3', type: 'a', k: 'u0' }, 'nope', mixedGood[1]]));
    expect(res.status).toBe(202);
    const answer = await res.json() as any;
    expect(answer.accepted).toBe(2);
    expect(answer.rejected.map((r: { index: number }) => r.index)).toEqual([0, 2, 3, 4]);
    for (const r of answer.rejected) expect(r.error.length).toBeGreaterThan(5);
    perEventRejections += 4;
  }
  await sendGood();
  // Oversized bodies, JSON and NDJSON.
  const big = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ id: `big${i}`, type: 'a', k: 'u0', ts: ts + 1 })));
  const tooLarge = await expectError(await ingest(big), 413, 'VIGIL_ERR_BODY_TOO_LARGE');
  expect(tooLarge.error).toMatchObject({ limit: 2048 });
  await expectError(await ingest(big.slice(1, -1).replace(/},{/g, '}\n{'), 'application/x-ndjson'), 413, 'VIGIL_ERR_BODY_TOO_LARGE');
  await sendGood();
  // Unknown stream, wrong media type, missing media type.
  await expectError(await ingest('{"id": "x"}', 'application/json', 'nosuch'), 404, 'VIGIL_ERR_STREAM_NOT_FOUND');
  await expectError(await ingest('{"id": "x"}', 'text/csv'), 415, 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE');
  await expectError(await fetch(`${url}/streams/s/events`, { method: 'POST', body: new Uint8Array([123, 125]) }), 415, 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE');
  await sendGood();
  // Invalid rule text: 400 with positions, nothing stored.
  const badRule = await expectError(
    await fetch(`${url}/rules/nr`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'rule nr {\n  from s\n  match\n    a: type == "a" and and\n  alert info "x"\n}\n' }),
    400,
    'VIGIL_ERR_RULE_INVALID',
  );
  expect((badRule.errors as { line: number }[])[0]!.line).toBe(4);
  expect((await fetch(`${url}/rules/nr`)).status).toBe(404);
  await sendGood();
  // Bad query values.
  await expectError(await fetch(`${url}/alerts?limit=0`), 400, 'VIGIL_ERR_BAD_REQUEST');
  await expectError(await fetch(`${url}/alerts?limit=lots`), 400, 'VIGIL_ERR_BAD_REQUEST');
  await expectError(await fetch(`${url}/alerts?since=tomorrow`), 400, 'VIGIL_ERR_BAD_REQUEST');
  await expectError(await fetch(`${url}/streams/s/late?limit=100000`), 400, 'VIGIL_ERR_BAD_REQUEST');
  await expectError(await fetch(`${url}/nowhere`), 404, 'VIGIL_ERR_ROUTE_NOT_FOUND');
  await sendGood();

  // Nothing lost: counts and alerts as a replay of the good events alone.
  const streams = await (await fetch(`${url}/streams`)).json() as any;
  expect(streams.streams[0]).toMatchObject({ name: 's', accepted: good.length, late: 0, rejected: perEventRejections });
  const alerts = (await (await fetch(`${url}/alerts?limit=1000`)).json() as any).alerts as { message: string; time: string; key: string }[];
  const replay = await runReplay({ rules: [{ file: 's.vigil', text: STREAM_S + RULE_AB }], events: good.map((e) => JSON.stringify(e)).join('\n') });
  const expected = replay.records.filter((r): r is Extract<typeof r, { message: string }> => 'message' in r);
  expect(expected.length).toBeGreaterThan(3);
  const show = (a: { message: string; time: string; key: unknown }) => `${a.time} ${String(a.key)} ${a.message}`;
  expect(alerts.map(show).sort()).toEqual(expected.map(show).sort());
});
