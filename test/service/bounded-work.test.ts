// Bounded work per request (issue 15), over a real socket against a real service (LMDB in a
// temp dir): validate and backtest run in work threads with time, memory, event and
// partial-match limits. The hostile runs of the issue (scaled down, still past the limits) each
// get a clear error while /health answers within 1 s (polled concurrently) and good events
// POSTed around them are all accepted; the process memory stays bounded. Rule texts that ask
// for unbounded work are compile errors with positions. Validate answers what PUT answers; a
// backtest text replaces the loaded rule of the same name.

import { afterAll, afterEach, expect, test } from 'vitest';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { apiRule, RULE_AB, STREAM_S } from '../helpers/service-rules.js';

let s: TestService | null = null;
afterEach(async () => {
  await s?.close();
  s = null;
});
afterAll(removeTempDirs);

const JSONH = { 'content-type': 'application/json' };
const TEXTH = { 'content-type': 'text/plain' };

/** Polls /health every 50 ms until stopped; keeps the slowest answer (ms) and any failure. */
function pollHealth(url: string): { stop: () => Promise<{ slowestMs: number; polls: number; failures: number }> } {
  let running = true;
  let slowestMs = 0;
  let polls = 0;
  let failures = 0;
  const loop = (async () => {
    const deadline = Date.now() + 120_000;
    while (running && Date.now() < deadline) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
        if (res.status !== 200) failures++;
        await res.text();
      } catch {
        failures++;
      }
      slowestMs = Math.max(slowestMs, performance.now() - t0);
      polls++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { slowestMs, polls, failures };
    },
  };
}

function backtest(url: string, text: string, events: unknown[] | string, id = '_'): Promise<Response> {
  return fetch(`${url}/rules/${id}/backtest`, { method: 'POST', headers: JSONH, body: JSON.stringify({ text, events }) });
}

async function expectWorkLimit(res: Response, limits: string[]): Promise<string> {
  const body = (await res.json()) as { error: { code: string; message: string; limit: string } };
  expect(res.status, JSON.stringify(body)).toBe(422);
  expect(body.error.code).toBe('VIGIL_ERR_WORK_LIMIT');
  expect(limits).toContain(body.error.limit);
  expect(body.error.message).toContain(`past its ${body.error.limit} limit`);
  if (process.env.VIGIL_TEST_REPORT) console.log(`limit: ${body.error.limit}: ${body.error.message}`);
  return body.error.limit;
}

const BOOM = (count: string, maxPartials: string) => `rule boom {
  from s
  match
    a: n >= 0
    then any b{1,${count}}: n >= 0 combinations
    then c: n < 0
  skip none
  max partials ${maxPartials}
}
`;

const REGEX = (re: string) => `rule re {
  from s
  match
    a: x matches /${re}$/
}
`;

test('hostile validate and backtest runs stop at their limits; /health and ingest are served meanwhile; memory stays bounded', async () => {
  const outcomes: string[] = [];
  s = await startService({
    rules: { 's.vigil': STREAM_S + RULE_AB },
    core: { onWork: (kind, outcome) => outcomes.push(`${kind} ${outcome}`) },
    flags: ['--work-time-ms', '1500', '--work-memory-mb', '96', '--backtest-max-partials', '20000', '--backtest-max-events', '5000'],
  });
  const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
  let sent = 0;
  let ts = 1000;
  const sendGood = async (): Promise<void> => {
    const batch = [0, 1, 2].map(() => ({ k: `u${sent % 5}`, type: sent++ % 2 === 0 ? 'a' : 'b', ts: (ts += 10) }));
    const res = await fetch(`${url}/streams/s/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: batch.map((e) => JSON.stringify(e)).join('\n') });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 3, late: 0, rejected: [] });
  };
  // Warm up (first connection, first answers), so the poll measures the attacks, not start-up.
  await sendGood();
  expect((await fetch(`${url}/health`)).status).toBe(200);
  const rssStart = process.memoryUsage().rss;
  let rssMax = rssStart;
  const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 100);
  const health = pollHealth(url);
  try {
    await sendGood();

    // Case 1 as sent: unbounded asks are compile errors, positioned.
    const oneKey = Array.from({ length: 60 }, (_, i) => ({ k: 'c1', type: 'x', ts: 1000 + i, n: 1 }));
    const asSent = await backtest(url, BOOM('100000', '100000000'), oneKey);
    expect(asSent.status).toBe(200);
    const codes = ((await asSent.json()) as { diagnostics: { code: string; line: number; col: number }[] }).diagnostics;
    expect(codes).toEqual(expect.arrayContaining([
      expect.objectContaining({ code: 'compile/quantifier-too-large', line: 5, col: 15 }),
      expect.objectContaining({ code: 'compile/max-partials-too-high', line: 8, col: 16 }),
    ]));
    await sendGood();

    // Case 1 within the compile bounds: partial matches double per event; the run is stopped.
    const [boom] = await Promise.all([backtest(url, BOOM('10000', '1000000'), oneKey), sendGood()]);
    expect(await expectWorkLimit(boom, ['partial matches', 'memory', 'time'])).toBe('partial matches');
    await sendGood();

    // Case 2, regex: a program past the bound is a compile error, positioned; just under it,
    // the 10 events of 100 KB are matched in time (RE2 stays linear and small).
    const big = await backtest(url, REGEX('(a|b){1,1000}'), []);
    expect(((await big.json()) as { diagnostics: { code: string }[] }).diagnostics.find((d) => d.code === 'compile/regex-too-large')).toMatchObject({ code: 'compile/regex-too-large', line: 4, col: 18 });
    const subject = 'ab'.repeat(50_000) + 'c';
    const longEvents = Array.from({ length: 10 }, (_, i) => ({ k: 'c1', type: 'x', ts: 1000 + i, x: subject }));
    const [underBound] = await Promise.all([backtest(url, REGEX('(a|b){1,240}'), longEvents), sendGood(), sendGood()]);
    expect(underBound.status).toBe(200);
    expect(((await underBound.json()) as { records: unknown[]; errors: unknown[] })).toMatchObject({ records: [], errors: [] });
    await sendGood();

    // A backtest that keeps working (partial matches capped per key, never done): the time limit stops it.
    const manyEvents = Array.from({ length: 2000 }, (_, i) => ({ k: 'c1', type: 'x', ts: 1000 + i, n: 1 }));
    const SLOW = BOOM('10000', '15000');
    const [slow] = await Promise.all([backtest(url, SLOW, manyEvents), sendGood(), sendGood()]);
    await expectWorkLimit(slow, ['time', 'memory']);
    await sendGood();

    // Case 2, validate: hundreds of rules of 1,000-term sums (a scaled 990 x 1,990).
    const sum = Array.from({ length: 1000 }, (_, i) => `n${i}`).join(' + ');
    const many = Array.from({ length: 200 }, (_, i) => `rule r${i} {\n  from s\n  match\n    a: ${sum} > 0\n}\n`).join('');
    const [heavy] = await Promise.all([
      fetch(`${url}/rules/validate`, { method: 'POST', headers: TEXTH, body: many }),
      sendGood(),
      sendGood(),
    ]);
    await expectWorkLimit(heavy, ['time', 'memory']);
    await sendGood();

    // Too many events for one backtest.
    const tooMany = await backtest(url, apiRule('t', 'x'), Array.from({ length: 5001 }, (_, i) => ({ k: 'u', type: 'a', ts: i })));
    await expectWorkLimit(tooMany, ['events']);

    // Beyond the concurrency bound (2): refused at once, 503 with Retry-After.
    const runs = await Promise.all([0, 1, 2].map(() => backtest(url, SLOW, manyEvents)));
    const statuses = runs.map((r) => r.status).sort();
    expect(statuses).toEqual([422, 422, 503]);
    const busy = runs.find((r) => r.status === 503)!;
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await busy.json()) as { error: { code: string } }).error.code).toBe('VIGIL_ERR_WORK_BUSY');
    await sendGood();

    // After all that, normal work is answered.
    const ok = await backtest(url, apiRule('t', 'got'), [{ k: 'u', type: 'a', ts: 1 }, { k: 'u', type: 'b', ts: 2 }]);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { records: { message: string }[] }).records.map((r) => r.message)).toEqual(['got u']);
  } finally {
    clearInterval(rssTimer);
    const h = await health.stop();
    if (process.env.VIGIL_TEST_REPORT) console.log(JSON.stringify({ health: h, rssGrowthMb: Math.round((rssMax - rssStart) / 1048576) }));
    expect(h.failures).toBe(0);
    expect(h.polls).toBeGreaterThan(10);
    expect(h.slowestMs).toBeLessThan(1000);
  }
  // Every run was reported with how it ended (vigil_work_runs_total).
  expect(outcomes).toEqual(expect.arrayContaining(['backtest partial_matches', 'backtest time', 'backtest events', 'backtest busy', 'backtest ok']));
  expect(outcomes.some((o) => o === 'validate time' || o === 'validate memory')).toBe(true);
  // Every good event was taken.
  const streams = (await (await fetch(`${url}/streams`)).json()) as { streams: { name: string; accepted: number }[] };
  expect(streams.streams.find((x) => x.name === 's')!.accepted).toBe(sent);
  // Two work threads of 96 MiB heap at most, and their overhead: far from the GBs of the issue.
  expect(rssMax - rssStart).toBeLessThan(700 * 1024 * 1024);
}, 120_000);

test('validate answers exactly what PUT answers, for the same texts', async () => {
  s = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB } });
  const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
  const two = apiRule('p', 'x') + apiRule('q', 'y');
  const cases: { id: string; text: string }[] = [
    { id: 'p', text: apiRule('p', 'one rule') },
    { id: 'p', text: two },
    { id: 'p', text: apiRule('other', 'wrong name') },
    { id: 'p', text: 'rule p {\n  from s\n  match\n    a: type == "a" and and\n}\n' },
    { id: 'p', text: apiRule('p', 'x').replace('a: type == "a"', 'a{1,20000}: type == "a"') },
    { id: 'p', text: STREAM_S.replace('key k', 'key other') + apiRule('p', 'stream conflict') },
    { id: 'ab', text: apiRule('ab', 'a file rule') },
    { id: 'p', text: 'stream only { key k }\n' },
    { id: 'p', text: '' },
  ];
  for (const c of cases) {
    const v = await fetch(`${url}/rules/validate?id=${c.id}`, { method: 'POST', headers: TEXTH, body: c.text });
    expect(v.status).toBe(200);
    const validated = (await v.json()) as { ok: boolean; errors: Record<string, unknown>[]; warnings: Record<string, unknown>[] };
    const p = await fetch(`${url}/rules/${c.id}`, { method: 'PUT', headers: TEXTH, body: c.text });
    const put = (await p.json()) as { errors?: Record<string, unknown>[]; warnings?: Record<string, unknown>[] };
    expect(validated.ok, `${c.text}\n${JSON.stringify(validated)} vs ${p.status}`).toBe(p.status < 300);
    expect(validated.errors, c.text).toEqual(put.errors ?? []);
    if (p.status < 300) {
      expect(validated.warnings).toEqual(put.warnings);
      expect((await fetch(`${url}/rules/${c.id}`, { method: 'DELETE' })).status).toBe(204);
    } else {
      expect(validated.errors.length).toBeGreaterThan(0);
    }
  }
  // Without ?id: checked as the PUT under the name of its one rule; a two-rule text is refused.
  const noId = await fetch(`${url}/rules/validate`, { method: 'POST', headers: TEXTH, body: apiRule('p', 'x') });
  expect(await noId.json()).toMatchObject({ ok: true, id: 'p', errors: [] });
  const noIdTwo = (await (await fetch(`${url}/rules/validate`, { method: 'POST', headers: TEXTH, body: two })).json()) as { ok: boolean; id: string | null; errors: { message: string }[] };
  expect(noIdTwo).toMatchObject({ ok: false, id: null });
  expect(noIdTwo.errors[0]!.message).toMatch(/exactly one rule.*'p', 'q'/);
  // The replaced API rule: validating an edit of it is fine (it replaces it, as PUT does).
  expect((await fetch(`${url}/rules/p`, { method: 'PUT', headers: TEXTH, body: apiRule('p', 'v1') })).status).toBe(201);
  expect(await (await fetch(`${url}/rules/validate`, { method: 'POST', headers: TEXTH, body: apiRule('p', 'v2') })).json()).toMatchObject({ ok: true, id: 'p' });
}, 60_000);

test('a backtest of an edited loaded rule runs the edit in its place (file rule and API rule)', async () => {
  s = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB + apiRule('other', 'other') } });
  const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
  const events = [{ k: 'u', type: 'a', ts: 1 }, { k: 'u', type: 'c', ts: 2 }, { k: 'u', type: 'b', ts: 3 }];
  // The loaded file rule `ab`, edited: a then c, another message.
  const edited = RULE_AB.replace('type == "b"', 'type == "c"').replace('"ab {k}"', '"edited {k}"');
  const res = await backtest(url, edited, events, 'ab');
  expect(res.status).toBe(200);
  const body = (await res.json()) as { records: { rule: string; message: string }[]; diagnostics: unknown[] };
  expect(body.diagnostics).toEqual([]);
  expect(body.records.map((r) => `${r.rule} ${r.message}`)).toEqual(['ab edited u']);
  // The whole file pasted with the edit (its stream too) works the same and runs only its rules.
  const whole = await backtest(url, STREAM_S + edited, events, 'ab');
  expect(((await whole.json()) as { records: { message: string }[] }).records.map((r) => r.message)).toEqual(['edited u']);
  // The loaded version is untouched: a backtest of the stored rule runs the file's text.
  const stored = await fetch(`${url}/rules/ab/backtest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: events.map((e) => JSON.stringify(e)).join('\n') });
  expect(((await stored.json()) as { records: { message: string }[] }).records.map((r) => r.message)).toEqual(['ab u']);
  expect(((await (await fetch(`${url}/rules/ab`)).json()) as { text: string }).text).toContain('"ab {k}"');
  // An API rule, edited.
  expect((await fetch(`${url}/rules/p`, { method: 'PUT', headers: TEXTH, body: apiRule('p', 'v1') })).status).toBe(201);
  const api = await backtest(url, apiRule('p', 'v2', 'c'), events, 'p');
  expect(((await api.json()) as { records: { message: string }[] }).records.map((r) => r.message)).toEqual(['v2 u']);
  // A text that declares a rule of another loaded name still conflicts with nothing: it replaces that one.
  const renamed = await backtest(url, apiRule('other', 'new other', 'c'), events, 'other');
  expect(((await renamed.json()) as { records: { message: string }[] }).records.map((r) => r.message)).toEqual(['new other u']);
}, 60_000);

test('a run past its heap limit is stopped with a clear error; the next run is served', async () => {
  s = await startService({
    rules: { 's.vigil': STREAM_S + RULE_AB },
    flags: ['--work-memory-mb', '40', '--work-time-ms', '60000', '--backtest-max-partials', '100000000'],
  });
  const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
  const oneKey = Array.from({ length: 60 }, (_, i) => ({ k: 'c1', type: 'x', ts: 1000 + i, n: 1, pad: 'p'.repeat(100) }));
  const boom = await backtest(url, BOOM('10000', '1000000'), oneKey);
  expect(await expectWorkLimit(boom, ['memory'])).toBe('memory');
  const res = await fetch(`${url}/health`);
  expect(res.status).toBe(200);
  const ok = await backtest(url, apiRule('t', 'got'), [{ k: 'u', type: 'a', ts: 1 }, { k: 'u', type: 'b', ts: 2 }]);
  expect(((await ok.json()) as { records: { message: string }[] }).records.map((r) => r.message)).toEqual(['got u']);
}, 90_000);
