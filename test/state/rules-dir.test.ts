// Rules edited on disk are hot-loaded like a PUT (service.md §2): the file watcher swaps the
// rule in; an unchanged pattern keeps its partial matches, a changed one starts empty; a file
// that stops compiling keeps the previous version running (and shows the errors); a deleted
// file removes its rules.

import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DurableEngine } from '../../src/engine/durable-engine.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rule = (message: string, pattern = 'a: t == "a" then b: t == "b"') => `stream s {
  key k
  time ts
}
rule door {
  from s
  match ${pattern}
  within 1h
  alert info "${message}"
}
`;

describe('rules directory hot loading', () => {
  it('swaps on edit, keeps or drops partial matches, survives a broken file, removes a deleted one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vigil-rulesdir-'));
    dirs.push(root);
    const rulesDir = join(root, 'rules');
    mkdirSync(rulesDir);
    const file = join(rulesDir, 'door.vigil');
    writeFileSync(file, rule('one'));
    const core = await DurableEngine.open({ dataDir: join(root, 'data'), rulesDir, checkpointMs: 2 });
    try {
      expect(core.getRule('door')).toMatchObject({ version: 1, origin: 'file', file, status: 'running' });
      await core.ingest('s', [{ k: 'x', ts: 1000, t: 'a' }], 0);
      expect(core.getRule('door')!.counters.partialMatches).toBe(1);

      // Only the message changes: same pattern, the partial match is kept.
      writeFileSync(file, rule('two'));
      await until(() => core.getRule('door')?.version === 2, 5000, 'version 2');
      expect(core.getRule('door')!.counters.partialMatches).toBe(1);
      await core.ingest('s', [{ k: 'x', ts: 2000, t: 'b' }], 0);
      await core.commitNow();
      expect(core.alerts({ rule: 'door' }).alerts.map((a) => a.message)).toEqual(['two']);

      // A broken edit: the previous version keeps running, and the errors are shown.
      await core.ingest('s', [{ k: 'y', ts: 3000, t: 'a' }], 0);
      writeFileSync(file, rule('three', 'a: t == then b: t == "b"'));
      await until(() => core.getRule('door')?.status === 'error', 5000, 'status error');
      const broken = core.getRule('door')!;
      expect(broken.version).toBe(2);
      expect(broken.errors[0]).toMatchObject({ file, line: 7, code: 'dsl/unexpected-token' });
      await core.ingest('s', [{ k: 'y', ts: 4000, t: 'b' }], 0);
      await core.commitNow();
      expect(core.alerts({ rule: 'door', key: 'y' }).alerts.map((a) => a.message)).toEqual(['two']);

      // The pattern changes: the new version starts empty.
      await core.ingest('s', [{ k: 'z', ts: 5000, t: 'a' }], 0);
      writeFileSync(file, rule('four', 'a: t == "a" then c: t == "c"'));
      await until(() => core.getRule('door')?.version === 3, 5000, 'version 3');
      expect(core.getRule('door')).toMatchObject({ status: 'running', errors: [] });
      expect(core.getRule('door')!.counters.partialMatches).toBe(0);
      expect(core.droppedByChange.get('door')).toBe(1);

      // The file is deleted: its rule goes, and with it its state.
      unlinkSync(file);
      await until(() => core.getRule('door') === null, 5000, 'rule removed');
      expect(core.listRules()).toEqual([]);
    } finally {
      await core.close();
    }
  });
});

describe('PUT against the streams already declared', () => {
  it('a rule text that redeclares a stream with other settings is refused, positioned; an identical declaration is fine', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vigil-put-stream-'));
    dirs.push(root);
    const rulesDir = join(root, 'rules');
    mkdirSync(rulesDir);
    writeFileSync(join(rulesDir, 'door.vigil'), rule('one'));
    const core = await DurableEngine.open({ dataDir: join(root, 'data'), rulesDir, watchRules: false, checkpointMs: 2 });
    try {
      const conflicting = await core.putRule('other', 'stream s {\n  key other_key\n  time ts\n}\nrule other {\n  from s\n  match x: t == "x"\n}\n');
      expect(conflicting.ok).toBe(false);
      if (!conflicting.ok) {
        expect(conflicting.status).toBe(400);
        expect(conflicting.errors.find((e) => e.code === 'compile/stream-conflict')).toMatchObject({ file: 'request', line: 1, col: 8 });
      }
      expect(core.getRule('other')).toBeNull();
      expect(core.getRule('door')).toMatchObject({ status: 'running', version: 1 });
      const same = await core.putRule('other', 'stream s {\n  key k\n  time ts\n}\nrule other {\n  from s\n  match x: t == "x"\n}\n');
      expect(same.ok).toBe(true);
    } finally {
      await core.close();
    }
  });
});
