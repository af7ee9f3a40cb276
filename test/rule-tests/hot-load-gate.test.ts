// Tests gate hot loads (language §11): a real service (real LMDB in a temp dir) over a
// 127.0.0.1 socket. A PUT whose tests fail is refused with 422 and the old version keeps
// running; a rules-directory edit whose tests fail keeps the file's old version.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';

const STREAM = `stream tx {
  key card
  time ts
  fields { card: string  ts: number  amount: number }
}
`;

/** A rule that alerts on amounts above `limit`, with a test that wants 900 to alert and 100 not to. */
function ruleText(limit: number, title: string, withStream = true): string {
  return `${withStream ? STREAM : ''}rule big {
  from tx
  match b: amount > ${limit}
  alert high "big {amount} on {card}"
}
test "${title}" {
  given tx {
    {"card": "c1", "ts": 1000, "amount": 100}
    {"card": "c1", "ts": 2000, "amount": 900}
  }
  expect alert big key "c1" message "big 900 on c1"
  expect no alert big message "big 100 on c1"
  expect 1 alert
}
`;
}

let svc: TestService | null = null;
afterEach(async () => {
  await svc?.close();
  svc = null;
});
afterAll(() => removeTempDirs());

async function listen(s: TestService): Promise<string> {
  return s.app.listen({ host: '127.0.0.1', port: 0 });
}

async function put(url: string, id: string, text: string) {
  const res = await fetch(`${url}/rules/${id}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: text });
  return { status: res.status, body: (await res.json()) as any };
}

async function alertsAfter(url: string, events: unknown[]): Promise<string[]> {
  const res = await fetch(`${url}/streams/tx/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: events.map((e) => JSON.stringify(e)).join('\n') });
  expect(res.status).toBe(202);
  const page = (await (await fetch(`${url}/alerts?rule=big&limit=100`)).json()) as { alerts: { message: string }[] };
  return page.alerts.map((a) => a.message).sort();
}

describe('tests gate hot loads', () => {
  it('PUT: passing tests load the rule; failing tests refuse it with 422, positioned, and the old version keeps running', async () => {
    svc = await startService();
    const url = await listen(svc);
    const ok = await put(url, 'big', ruleText(500, 'alerts above 500'));
    expect(ok.status).toBe(201);
    expect(ok.body.rule.version).toBe(1);

    // The edit lowers the limit to 50: then 100 alerts too, and the test says it must not.
    const bad = await put(url, 'big', ruleText(50, 'alerts above 500'));
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('VIGIL_ERR_RULE_TESTS_FAILED');
    expect(bad.body.error.message).toMatch(/fails its tests .*the running version, if any, is unchanged/);
    const errs = bad.body.errors as { line: number; col: number; message: string; code: string }[];
    expect(errs.map((e) => [e.code, e.line, e.col])).toEqual([
      ['test/failed', 17, 3],
      ['test/failed', 18, 3],
    ]);
    expect(errs[0]!.message).toBe(`test "alerts above 500" failed: expected no alert of rule 'big' message "big 100 on c1", but 1 came out (came out instead: alert big key "c1" at 1970-01-01T00:00:01.000Z message "big 100 on c1")`);
    expect(errs[1]!.message).toMatch(/^test "alerts above 500" failed: expected 1 alert\(s\), got 2/);

    // The old version (limit 500) still runs: 100 does not alert, 900 does.
    const rule = (await (await fetch(`${url}/rules/big`)).json()) as any;
    expect(rule.version).toBe(1);
    expect(rule.text).toContain('amount > 500');
    expect(await alertsAfter(url, [{ card: 'c9', ts: 1000, amount: 100 }, { card: 'c9', ts: 2000, amount: 900 }])).toEqual(['big 900 on c9']);

    // GET /rules (what the status page shows) says why the edit was refused.
    const list = (await (await fetch(`${url}/rules`)).json()) as any;
    const row = (list.rules ?? list).find((r: any) => r.id === 'big');
    expect(row.status).toBe('error');
    expect(row.errors.map((e: any) => e.message)).toEqual(errs.map((e) => e.message));

    // A fixed edit loads (version 2) and clears the refusal.
    const fixed = await put(url, 'big', ruleText(200, 'alerts above 200'));
    expect(fixed.status).toBe(200);
    expect(fixed.body.rule.version).toBe(2);
    expect(fixed.body.rule.status).toBe('running');
    expect(fixed.body.rule.errors).toEqual([]);
  });

  it('PUT: a new rule whose tests fail is not stored at all', async () => {
    svc = await startService();
    const url = await listen(svc);
    const bad = await put(url, 'big', ruleText(50, 'wrong from the start'));
    expect(bad.status).toBe(422);
    expect((await fetch(`${url}/rules/big`)).status).toBe(404);
  });

  it('PUT: a test over the API cannot read files', async () => {
    svc = await startService();
    const url = await listen(svc);
    const text = ruleText(500, 'x').replace('expect 1 alert', 'expect 1 alert\n  given tx from "../../etc/passwd"');
    const bad = await put(url, 'big', text);
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].message).toBe("cannot read the events file '../../etc/passwd': a test sent over the API cannot read files; give its events inline");
  });

  it('rules directory: an edit whose tests fail keeps the old version of the file, and its status shows the failing test', async () => {
    svc = await startService({ rules: { 'big.vigil': ruleText(500, 'alerts above 500') } });
    const url = await listen(svc);
    const before = (await (await fetch(`${url}/rules/big`)).json()) as any;
    expect(before.version).toBe(1);

    writeFileSync(join(svc.rulesDir, 'big.vigil'), ruleText(50, 'alerts above 500'));
    svc.core.reloadRulesDir();
    const after = (await (await fetch(`${url}/rules/big`)).json()) as any;
    expect(after.version).toBe(1);
    expect(after.text).toContain('amount > 500');
    expect(after.status).toBe('error');
    expect(after.errors.map((e: any) => [e.line, e.col])).toEqual([
      [17, 3],
      [18, 3],
    ]);
    expect(after.errors[0].file).toBe(join(svc.rulesDir, 'big.vigil'));
    expect(after.errors[0].message).toMatch(/^test "alerts above 500" failed: expected no alert of rule 'big'/);
    expect(await alertsAfter(url, [{ card: 'c9', ts: 1000, amount: 100 }, { card: 'c9', ts: 2000, amount: 900 }])).toEqual(['big 900 on c9']);

    // A new file whose tests fail is not loaded; an edit whose tests pass is.
    writeFileSync(join(svc.rulesDir, 'other.vigil'), ruleText(50, 'bad new file', false).replaceAll('big', 'other'));
    writeFileSync(join(svc.rulesDir, 'big.vigil'), ruleText(300, 'alerts above 300'));
    svc.core.reloadRulesDir();
    const list = (await (await fetch(`${url}/rules`)).json()) as any;
    const rules = list.rules ?? list;
    expect(rules.map((r: any) => r.id).sort()).toEqual(['big']);
    const big = rules.find((r: any) => r.id === 'big');
    expect([big.version, big.status]).toEqual([2, 'running']);
  });

  it('a test that runs past the time limit refuses the load', async () => {
    svc = await startService({ core: { testTimeLimitMs: 1 } });
    const url = await listen(svc);
    // Enough events that the replay checks its deadline (every 64 lines) well after 1 ms.
    const events = Array.from({ length: 5000 }, (_, i) => `    {"card": "c${i % 50}", "ts": ${1000 + i}, "amount": 1}`).join('\n');
    const text = `${STREAM}rule big {\n  from tx\n  match a: amount > 0 then b: amount > 0\n  alert high "x"\n}\ntest "slow" {\n  given tx {\n${events}\n  }\n  expect no alert big key "none"\n}\n`;
    const bad = await put(url, 'big', text);
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0].message).toMatch(/time limit/);
  });
});
