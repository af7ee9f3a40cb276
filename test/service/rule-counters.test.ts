// Rule counters survive restarts as stream counters do: events, matches, timeouts, throttled,
// dropped partial matches are written with the commit (real LMDB in a temp dir) and read back
// at open. A rule whose text changed while the service was down is a new version: its counters
// start from zero, as a swap while running does.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { post, removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { RULE_AB, STREAM_S, apiRule } from '../helpers/service-rules.js';

const open: TestService[] = [];
afterAll(async () => {
  for (const s of open) await s.close();
  removeTempDirs();
});

/** A rule with a short `within`, an `on timeout` alert and a throttle. */
const RULE_T = `rule t {
  from s
  match
    a: type == "a"
    then c: type == "c"
  within 1m
  alert info "t {k}"
  on timeout alert warning "t timed out {k}"
  throttle 1 per 1h
}
`;

async function counters(s: TestService, id: string): Promise<Record<string, number>> {
  const res = await s.app.inject({ method: 'GET', url: `/rules/${id}` });
  expect(res.statusCode).toBe(200);
  return res.json().counters as Record<string, number>;
}

describe('rule counters survive a restart', () => {
  test('file and API rules: events, matches, timeouts, throttled, as before the restart', async () => {
    const rules = { 's.vigil': STREAM_S + RULE_AB + RULE_T };
    const first = await startService({ rules });
    const put = await first.app.inject({ method: 'PUT', url: '/rules/api_ab', headers: { 'content-type': 'text/plain' }, payload: apiRule('api_ab', 'api') });
    expect(put.statusCode).toBe(201);
    const events = [
      { type: 'a', k: 'u1', ts: 1000 },
      { type: 'b', k: 'u1', ts: 2000 },
      { type: 'a', k: 'u2', ts: 3000 },
      { type: 'b', k: 'u2', ts: 4000 },
      { type: 'c', k: 'u2', ts: 5000 },
      { type: 'a', k: 'u3', ts: 6000 },
      { type: 'c', k: 'u3', ts: 7000 },
      // u3 again: its second alert within the hour is throttled.
      { type: 'a', k: 'u3', ts: 8000 },
      { type: 'c', k: 'u3', ts: 9000 },
      // Far ahead: the watermark passes every `within 1m` of t.
      { type: 'x', k: 'u9', ts: 10 * 60_000 },
    ];
    expect((await post(first.app, 's', events)).statusCode).toBe(202);
    const before = { ab: await counters(first, 'ab'), t: await counters(first, 't'), api_ab: await counters(first, 'api_ab') };
    // The events did count: a restart that lost them would show zeros.
    expect(before.ab).toMatchObject({ events: 10, matches: 2 });
    expect(before.api_ab).toMatchObject({ events: 10, matches: 2 });
    expect(before.t.events).toBe(10);
    expect(before.t.matches).toBeGreaterThanOrEqual(1);
    expect(before.t.throttled).toBeGreaterThanOrEqual(1);
    expect(before.t.timeouts).toBeGreaterThanOrEqual(1);
    await first.close();

    const second = await startService({ dataDir: first.dataDir, rules });
    open.push(second);
    for (const id of ['ab', 't', 'api_ab'] as const) {
      const after = await counters(second, id);
      for (const k of ['events', 'matches', 'timeouts', 'throttled', 'droppedPartials']) expect({ id, k, v: after[k] }).toEqual({ id, k, v: before[id][k] });
    }
    // And they go on counting from there, and survive one more restart.
    expect((await post(second.app, 's', [{ type: 'a', k: 'u5', ts: 11 * 60_000 }, { type: 'b', k: 'u5', ts: 11 * 60_000 + 1 }])).statusCode).toBe(202);
    expect(await counters(second, 'ab')).toMatchObject({ events: 12, matches: 3 });
    await second.close();
    const third = await startService({ dataDir: first.dataDir, rules });
    open.push(third);
    expect(await counters(third, 'ab')).toMatchObject({ events: 12, matches: 3 });
  });

  test('a rule changed while the service was down starts from zero (a new version); a removed rule takes its counters with it', async () => {
    const first = await startService({ rules: { 's.vigil': STREAM_S + RULE_AB } });
    expect((await post(first.app, 's', [{ type: 'a', k: 'u', ts: 1 }, { type: 'b', k: 'u', ts: 2 }])).statusCode).toBe(202);
    expect(await counters(first, 'ab')).toMatchObject({ events: 2, matches: 1 });
    await first.close();

    // Same data dir, other rules dir content: ab's alert message changed.
    const changed = await startService({ dataDir: first.dataDir, rules: { 's.vigil': STREAM_S + RULE_AB.replace('"ab {k}"', '"ab2 {k}"') } });
    const detail = (await changed.app.inject({ method: 'GET', url: '/rules/ab' })).json();
    expect(detail.version).toBe(2);
    expect(detail.counters).toMatchObject({ events: 0, matches: 0 });
    expect((await post(changed.app, 's', [{ type: 'a', k: 'v', ts: 3 }])).statusCode).toBe(202);
    writeFileSync(join(changed.rulesDir, 's.vigil'), STREAM_S);
    changed.core.reloadRulesDir();
    await changed.core.commitNow();
    await changed.close();

    const back = await startService({ dataDir: first.dataDir, rules: { 's.vigil': STREAM_S + RULE_AB } });
    open.push(back);
    expect(await counters(back, 'ab')).toMatchObject({ events: 0, matches: 0 });
  });
});
