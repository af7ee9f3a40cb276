// Issue 14 §1 across restarts: the golden cases of the exact semantics (greedy guards held by
// waiting partial matches, `until` under `then any`, `next not` over a stretch, throttle windows
// that look on both sides, time rendering) give, over a real LMDB in a temp dir, the alerts of an
// uninterrupted `vigil run` when the service stops and reopens at several points.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runReplay } from '../../src/cli/run.js';
import { DurableEngine } from '../../src/engine/durable-engine.js';

const golden = join(import.meta.dirname, '..', 'golden');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const cases = readdirSync(golden)
  .filter((c) => Number(c.slice(0, 3)) >= 117 && Number(c.slice(0, 3)) <= 132)
  .filter((c) => existsSync(join(golden, c, 'rules.vigil')) && !existsSync(join(golden, c, 'args.json')));

interface Line {
  stream: string | undefined;
  event: unknown;
}

function lines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const { $stream, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return { stream: $stream as string | undefined, event: rest };
    });
}

describe('exact semantics survive a restart (issue 14 §1)', () => {
  it('covers the cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases)('%s: stop and reopen at several points gives the uninterrupted alerts', async (c) => {
    const rules = readFileSync(join(golden, c, 'rules.vigil'), 'utf8');
    const events = readFileSync(join(golden, c, 'events.ndjson'), 'utf8');
    const expected = await runReplay({ rules: [{ file: 'rules.vigil', text: rules }], events });
    const expectedAlerts = expected.records.filter((r) => r.kind !== 'late').map((r) => (r as { id: string }).id);
    const items = lines(events);
    const streamName = /from\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(rules)![1]!;
    for (const split of [1, Math.floor(items.length / 2), items.length - 1]) {
      const dir = mkdtempSync(join(tmpdir(), 'vigil-semantics-'));
      dirs.push(dir);
      const rulesDir = join(dir, 'rules');
      mkdirSync(rulesDir);
      writeFileSync(join(rulesDir, 'rules.vigil'), rules);
      const options = { dataDir: join(dir, 'data'), rulesDir, watchRules: false, checkpointMs: 1 };
      let core = await DurableEngine.open(options);
      for (const it of items.slice(0, split)) await core.ingest(it.stream ?? streamName, [it.event], Date.now());
      await core.close();
      core = await DurableEngine.open(options);
      for (const it of items.slice(split)) await core.ingest(it.stream ?? streamName, [it.event], Date.now());
      core.engine.end();
      await core.commitNow();
      const held = core.alerts({ limit: 1000 }).alerts.map((a) => a.id).reverse();
      await core.close();
      expect(held, `split at ${split}`).toEqual(expectedAlerts);
    }
  });
});
