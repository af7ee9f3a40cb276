// `vigil test` as a user runs it: the real binary in a child process (needs `npm run build`).

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'vigil.js');
const dir = mkdtempSync(join(tmpdir(), 'vigil-test-cmd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function vigil(args: string[], cwd = dir) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
function file(name: string, text: string): string {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
}

const RULES = `stream transactions {
  key card_id
  time ts
  watermark 5s
  fields { card_id: string  ts: time  amount: number  merchant: string? }
}
rule card_testing {
  from transactions
  match
    small{3,}: amount < 5
    then big: amount >= 500
  within 10m
  alert high "Card {card_id}: {count(small)} small charges, then {big.amount} at {big.merchant}"
  on timeout alert low "Card {card_id}: small charges, nothing big"
}
`;

const EVENTS = `  given transactions {
    {"card_id": "c1", "amount": 1,   "ts": "2026-11-20T10:00:00Z"}
    {"card_id": "c1", "amount": 2,   "ts": "2026-11-20T10:00:01Z"}
    {"card_id": "c1", "amount": 3,   "ts": "2026-11-20T10:00:02Z"}
    {"card_id": "c1", "amount": 900, "ts": "2026-11-20T10:00:07Z", "merchant": "M"}
  }
`;

// Three small charges on c3 that never end in a big one (timeouts at +∞: skip none keeps three partial matches), and one late event.
const RECORDED = [
  { card_id: 'c3', amount: 1, ts: '2026-11-20T10:01:00Z' },
  { card_id: 'c3', amount: 1, ts: '2026-11-20T10:01:01Z' },
  { card_id: 'c3', amount: 1, ts: '2026-11-20T10:01:02Z' },
  { card_id: 'c3', amount: 1, ts: '2026-11-20T09:00:00Z' },
].map((e) => JSON.stringify(e)).join('\n');

describe('vigil test', () => {
  it('runs the issue example (inline events, a from file, every kind of expectation) and passes', () => {
    file('pass/card-testing.ndjson', RECORDED);
    file('pass/card.vigil', RULES + `
test "three small charges then a big one" {
${EVENTS}  given transactions from "card-testing.ndjson"    # events recorded in a file beside it
  expect alert card_testing key "c1" at "2026-11-20T10:00:07Z" message "Card c1: 3 small charges, then 900 at M"
  expect no alert card_testing key "c2"
  expect timeout card_testing key "c3"
  expect 4 alerts                                   # the match, and a timeout for each partial match of c3
  expect late 1
}
`);
    const r = vigil(['test', 'pass']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['ok   pass/card.vigil:17 "three small charges then a big one"', '1 passed, 0 failed', '']);
  });

  it('a broken expectation fails with its position, a caret and the nearest alerts; exit 1', () => {
    file('fail/card.vigil', RULES + `
test "passes" {
${EVENTS}  expect 1 alert
}
test "wrong message" {
${EVENTS}  expect alert card_testing key "c1" message "Card c1: 4 small charges"
  expect late 1
}
`);
    const r = vigil(['test', 'fail/card.vigil']);
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('ok   fail/card.vigil:17 "passes"');
    expect(lines[1]).toBe('FAIL fail/card.vigil:26 "wrong message"');
    expect(lines[2]).toBe(`    fail/card.vigil:33:3: error: expected an alert of rule 'card_testing' key "c1" message "Card c1: 4 small charges", none came out`);
    expect(lines[3]).toBe('        expect alert card_testing key "c1" message "Card c1: 4 small charges"');
    expect(lines[4]).toBe('        ' + '^'.repeat('expect alert card_testing key "c1" message "Card c1: 4 small charges"'.length));
    expect(lines[5]).toBe('      nearest alerts:');
    expect(lines[6]).toBe('        alert card_testing key "c1" at 2026-11-20T10:00:07.000Z message "Card c1: 3 small charges, then 900 at M"');
    expect(lines[7]).toBe(`    fail/card.vigil:34:3: error: expected 1 late event(s), got 0`);
    expect(lines).toContain('1 passed, 1 failed');
    expect(lines[lines.length - 2]).toBe('1 passed, 1 failed');
  });

  it('until: time stops there, so an absence that has not expired yet does not fire', () => {
    const hb = `stream heartbeats { key device_id  time ts }
rule silent {
  from heartbeats
  match beat: status == "alive" then not again: exists(status) for 1m
  alert warning "Device {device_id} is silent"
}
`;
    const give = `  given heartbeats { {"device_id": "d1", "status": "alive", "ts": "2026-11-20T10:00:00Z"} }\n`;
    file('until/hb.vigil', hb + `test "not yet" {\n${give}  until "2026-11-20T10:00:59Z"\n  expect no alert silent\n}\n` +
      `test "at +inf it fires" {\n${give}  expect alert silent key "d1" at "2026-11-20T10:01:00Z"\n}\n` +
      `test "wrongly expects it before the minute" {\n${give}  until "2026-11-20T10:00:30Z"\n  expect alert silent key "d1"\n}\n`);
    const r = vigil(['test', 'until/hb.vigil']);
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('ok   until/hb.vigil:7 "not yet"');
    expect(lines[1]).toBe('ok   until/hb.vigil:12 "at +inf it fires"');
    expect(lines[2]).toBe('FAIL until/hb.vigil:16 "wrongly expects it before the minute"');
    expect(lines[3]).toBe(`    until/hb.vigil:19:3: error: expected an alert of rule 'silent' key "d1", none came out`);
    expect(lines).toContain('      (nothing came out)');
    expect(lines).toContain('2 passed, 1 failed');
  });

  it('a NAME.test.vigil file named alone runs with the rules of NAME.vigil beside it', () => {
    file('beside/card.vigil', RULES);
    file('beside/card.test.vigil', `test "beside" {\n${EVENTS}  expect alert card_testing key "c1"\n}\n`);
    const r = vigil(['test', 'beside/card.test.vigil']);
    expect(r.stdout).toBe('ok   beside/card.test.vigil:1 "beside"\n1 passed, 0 failed\n');
    expect(r.code).toBe(0);
  });

  it('a test that does not compile: positioned error on stderr, exit 1, nothing run', () => {
    file('bad/card.vigil', RULES + `test "typo" {\n${EVENTS}  expect alert card_tsting\n}\n`);
    const r = vigil(['test', 'bad']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("bad/card.vigil:23:16: error: 'card_tsting' is not a rule this test runs; did you mean 'card_testing'?");
    expect(r.stderr).toContain('\n    expect alert card_tsting\n' + ' '.repeat(17) + '^'.repeat(11) + '\n');
    expect(r.stderr).toContain('vigil test: 1 error(s): no test was run');
    // vigil check sees it too.
    const c = vigil(['check', 'bad']);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain("bad/card.vigil:23:16: error: 'card_tsting' is not a rule");
  });

  it('an event a stream rejects fails the test, naming the event', () => {
    file('rej/card.vigil', RULES + `test "no time" {\n  given transactions { {"card_id": "c1", "amount": 1} }\n  expect no alerts\n}\n`);
    const r = vigil(['test', 'rej']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/rej\/card\.vigil:16:1: error: the test's events did not all go in: event:1: rejected: /);
  });

  it('defaults to ./rules, and the shipped rules/ pass', () => {
    const r = vigil(['test'], root);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = lines[lines.length - 1]!;
    expect(summary).toMatch(/^\d+ passed, 0 failed$/);
    expect(Number(summary.split(' ')[0])).toBeGreaterThanOrEqual(7);
    expect(lines.filter((l) => l.startsWith('ok   rules/'))).toHaveLength(lines.length - 1);
    expect(vigil(['test', 'rules/'], root).code).toBe(0);
  });

  it('exit 2 on a usage error', () => {
    expect(vigil(['test', '--nope']).code).toBe(2);
  });
});
