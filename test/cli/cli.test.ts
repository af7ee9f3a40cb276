// The `vigil` command as a user runs it (service.md §1): the real binary in a child process.
// Needs `npm run build` (npm test runs it first).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { typoCases } from '../compiler/typo-corpus/cases.js';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'vigil.js');
const dir = mkdtempSync(join(tmpdir(), 'vigil-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function vigil(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8', cwd: dir, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const RULES = `stream tx {
  key card
  time ts
}
rule big_after_small "Card testing" {
  from tx
  match small{2,}: amount < 5 then big: amount > 500
  within 10m
  alert high "Card {card}: {count(small)} small, then {big.amount}"
}
`;

describe('vigil check', () => {
  it('exits 0 on good rules and says what it checked', () => {
    const r = vigil(['check', file('good.vigil', RULES)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 rule(s)');
  });

  it('prints three positioned errors (line, caret) for a rule with three mistakes, and exits 1', () => {
    const p = file('bad.vigil', 'stream s {\n  key k\n}\nrule r {\n  from s\n  match not a: x == 1 then b: nope(x) then b: y == 2\n  within 1m\n}\n');
    const r = vigil(['check', p]);
    expect(r.code).toBe(1);
    const heads = r.stderr.split('\n').filter((l) => /^\S+:\d+:\d+: error: /.test(l));
    expect(heads).toHaveLength(3);
    expect(heads[0]).toMatch(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:6:9: error: `));
    expect(r.stderr).toContain('  match not a: x == 1 then b: nope(x) then b: y == 2\n          ^');
  });

  it('checks the example rules shipped in rules/', () => {
    const r = spawnSync(process.execPath, [bin, 'check', 'rules'], { cwd: root, encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/error:/);
    expect(r.status).toBe(0);
  });

  it('exits 1 when a file cannot be read', () => {
    const r = vigil(['check', join(dir, 'missing.vigil')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot read');
  });
});

describe('vigil check: the rule count and --strict', () => {
  it('counts every rule of the files, those with errors too', () => {
    const five = file(
      'five.vigil',
      'stream s {\n  key k\n  time ts\n}\n' +
        ['r1', 'r2', 'r3', 'r4', 'r5'].map((n, i) => `rule ${n} {\n  from s\n  match a: ${i % 2 === 1 ? 'nope(x)' : 'x == 1'}\n  within 1m\n}\n`).join(''),
    );
    const r = vigil(['check', five]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('1 file(s): 5 rule(s) (2 with errors), 1 stream(s), 2 error(s), 0 warning(s)');
  });

  const warningCases = typoCases().filter((c) => c.severity === 'warning');
  it('the typo corpus has warning cases', () => expect(warningCases.length).toBeGreaterThanOrEqual(10));

  it.each(warningCases.map((c) => [c.file.split('/').pop()!, c] as const))('%s: `vigil check` passes, `vigil check --strict` fails, with the warning positioned', (_name, c) => {
    const plain = vigil(['check', c.file]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('1 file(s): 1 rule(s)');
    expect(plain.stdout).toContain('0 error(s), 1 warning(s)');
    const r = vigil(['check', '--strict', c.file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${c.file}:${c.line}:${c.col}: warning: ${c.message}`);
    expect(r.stderr).toContain('0 error(s), 1 warning(s) (--strict: warnings fail the check)');
  });

  it('--strict passes clean rules, and the shipped examples are clean', () => {
    expect(vigil(['check', '--strict', file('good-strict.vigil', RULES)]).code).toBe(0);
    const r = spawnSync(process.execPath, [bin, 'check', '--strict', 'rules'], { cwd: root, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('vigil run: the summary on stderr and --until', () => {
  const ordered = ['{"card":"c1","ts":1000,"amount":1}', '{"card":"c1","ts":2000,"amount":2}', '{"card":"c1","ts":3000,"amount":900}'];

  it('counts read, accepted, late and rejected per stream; stdout keeps only the records', () => {
    const lines = [...ordered, '{"card":"c1","ts":500,"amount":3}', '{"card":"c1"}', 'nope', '{"$watermark": 100}', '{"$stream":"audit","x":1}'].join('\n');
    const r = vigil(['run', file('sum.vigil', RULES), '--events', '-'], lines);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l).kind)).toEqual(['match', 'late']);
    expect(r.stderr).toContain('vigil run: 8 line(s) read, 1 watermark marker(s), 1 rejected before reaching a stream\n');
    expect(r.stderr).toContain("vigil run: stream 'tx': 5 read, 3 accepted, 1 late, 1 rejected\n");
    // A stream no rule reads: every event of it is rejected, and counted.
    expect(r.stderr).toContain("vigil run: stream 'audit': 1 read, 0 accepted, 0 late, 1 rejected\n");
    // One late event in four is not "a large share" of a short input: no hint.
    expect(r.stderr).not.toContain('hint');
  });

  it('hints that the input is not in time order when a large share is late', () => {
    const shuffled = ['{"card":"c1","ts":9000,"amount":1}', ...ordered].join('\n');
    const r = vigil(['run', file('late.vigil', RULES), '--events', '-'], shuffled);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l).kind)).toEqual(['late', 'late', 'late']);
    expect(r.stderr).toContain("vigil run: stream 'tx': 4 read, 1 accepted, 3 late, 0 rejected\n");
    expect(r.stderr).toContain("vigil run: hint: 75% of the events of stream 'tx' were late: the input is not in time order for its watermark (0 ms)");
  });

  it('--until stops time there: an absence that has not expired yet does not fire; without it, it does', () => {
    const rules = file('absence.vigil', 'stream s {\n  key k\n  time ts\n}\nrule quiet {\n  from s\n  match a: x == 1 then not b: x == 2 for 1m\n}\n');
    const events = '{"k":"u","ts":"2026-11-20T10:00:00Z","x":1}\n';
    const atEnd = vigil(['run', rules, '--events', '-'], events);
    expect(atEnd.stdout.trim().split('\n').map((l) => JSON.parse(l).time)).toEqual(['2026-11-20T10:01:00.000Z']);
    const early = vigil(['run', rules, '--events', '-', '--until', '2026-11-20T10:00:59.999Z'], events);
    expect(early.code).toBe(0);
    expect(early.stdout).toBe('');
    const late = vigil(['run', rules, '--events', '-', '--until', String(Date.parse('2026-11-20T10:01:00Z'))], events);
    expect(late.stdout.trim().split('\n').map((l) => JSON.parse(l).time)).toEqual(['2026-11-20T10:01:00.000Z']);
    const bad = vigil(['run', rules, '--events', '-', '--until', 'tomorrow'], events);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--until 'tomorrow' is not a time");
  });
});

describe('vigil run', () => {
  const events = [
    '{"card":"c1","ts":1000,"amount":1}',
    '{"card":"c1","ts":2000,"amount":2}',
    '{"card":"c1","ts":3000,"amount":900}',
    '{"card":"c1","ts":500,"amount":900}',
    '{"card":"c2","ts":4000,"amount":"x"',
    '{"card":"c2","amount":3}',
  ].join('\n');

  it('prints alert and late records on stdout only; problems on stderr with line numbers', () => {
    const r = vigil(['run', file('r.vigil', RULES), '--events', file('e.ndjson', events)]);
    expect(r.code).toBe(0);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(out.map((x) => x.kind)).toEqual(['match', 'late']);
    expect(out[0]).toMatchObject({ rule: 'big_after_small', version: 1, key: 'c1', severity: 'high', message: 'Card c1: 2 small, then 900', time: '1970-01-01T00:00:03.000Z' });
    expect(out[0].id).toMatch(/^[0-9a-f]{32}$/);
    expect(out[1]).toEqual({ kind: 'late', stream: 'tx', event: { card: 'c1', ts: 500, amount: 900 } });
    expect(r.stderr).toMatch(/e\.ndjson:5: invalid JSON/);
    expect(r.stderr).toMatch(/e\.ndjson:6: rejected: missing time field 'ts'/);
  });

  it('reads events from standard input with --events -', () => {
    const r = vigil(['run', file('r2.vigil', RULES), '--events', '-'], events);
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('same input twice gives the same ids', () => {
    const a = vigil(['run', file('r3.vigil', RULES), '--events', '-'], events);
    const b = vigil(['run', file('r3.vigil', RULES), '--events', '-'], events);
    const ids = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l).id);
    expect(ids(a.stdout)).toEqual(ids(b.stdout));
  });

  it('--stream names the stream when the rules read several; an unknown one is an error', () => {
    const two = RULES + 'rule other {\n  from audit\n  match a: x == 1\n}\n';
    const p = file('two.vigil', two);
    const noStream = vigil(['run', p, '--events', '-'], '{"card":"c1","ts":1,"amount":1}\n');
    expect(noStream.stderr).toMatch(/-?:?1: rejected: cannot tell the stream/);
    const withStream = vigil(['run', p, '--events', '-', '--stream', 'audit'], '{"x":1}\n');
    expect(withStream.code).toBe(0);
    expect(JSON.parse(withStream.stdout)).toMatchObject({ rule: 'other', key: null });
    const unknown = vigil(['run', p, '--events', '-', '--stream', 'nope'], '{"x":1}\n');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("unknown stream 'nope'");
  });

  it('a rules error exits 1 before reading events, with positions', () => {
    const r = vigil(['run', file('broken.vigil', 'rule r {\n  from s\n  match a: x ==\n}\n'), '--events', '-'], '{}\n');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/broken\.vigil:\d+:\d+: error:/);
  });

  it('usage errors exit 2', () => {
    expect(vigil(['run']).code).toBe(2);
    expect(vigil(['frobnicate']).code).toBe(2);
  });
});

describe('vigil run --deliver', () => {
  it('sends each alert through its sinks (a real webhook receiver) and still prints the records', async () => {
    const { spawn } = await import('node:child_process');
    const { startHttpReceiver, TEST_WEBHOOK_ALLOW } = await import('../helpers/http-receiver.js');
    const receiver = await startHttpReceiver(() => ({ status: 200 }));
    try {
      const rules = RULES.replace('within 10m', `within 10m\n  alert high "Card {card}" to webhook "${receiver.url}/hook"`).replace(/\n  alert high "Card \{card\}: [^\n]*/, '');
      const p = file('deliver.vigil', rules);
      const child = spawn(process.execPath, [bin, 'run', p, '--events', '-', '--deliver'], { cwd: dir, env: { ...process.env, VIGIL_LOG_LEVEL: 'silent', VIGIL_WEBHOOK_ALLOW: TEST_WEBHOOK_ALLOW } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.stdin.end('{"card":"c1","ts":1000,"amount":1}\n{"card":"c1","ts":2000,"amount":2}\n{"card":"c1","ts":3000,"amount":900}\n');
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(stderr).not.toMatch(/failed/);
      expect(code).toBe(0);
      const record = JSON.parse(stdout.trim());
      expect(record.message).toBe('Card c1');
      expect(receiver.requests).toHaveLength(1);
      expect(receiver.requests[0]!.headers['idempotency-key']).toBe(record.id);
      expect(JSON.parse(receiver.requests[0]!.body).id).toBe(record.id);
    } finally {
      await receiver.close();
    }
  });

  it('refuses an internal target unless VIGIL_WEBHOOK_ALLOW lists it: a compile error, exit 1, nothing sent', async () => {
    const { spawn } = await import('node:child_process');
    const { startHttpReceiver } = await import('../helpers/http-receiver.js');
    const receiver = await startHttpReceiver(() => ({ status: 200 }));
    try {
      const rules = RULES.replace('within 10m', `within 10m\n  alert high "Card {card}" to webhook "${receiver.url}/hook"`).replace(/\n  alert high "Card \{card\}: [^\n]*/, '');
      const p = file('refused.vigil', rules);
      const env = { ...process.env, VIGIL_LOG_LEVEL: 'silent' };
      delete env.VIGIL_WEBHOOK_ALLOW;
      const child = spawn(process.execPath, [bin, 'run', p, '--events', '-', '--deliver'], { cwd: dir, env });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      child.stdout.resume();
      child.stdin.end('{"card":"c1","ts":1000,"amount":1}\n{"card":"c1","ts":2000,"amount":2}\n{"card":"c1","ts":3000,"amount":900}\n');
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(1);
      expect(stderr).toContain('webhook target refused');
      expect(stderr).toContain('127.0.0.1 is a loopback address');
      expect(receiver.requests).toHaveLength(0);
    } finally {
      await receiver.close();
    }
  });
});
