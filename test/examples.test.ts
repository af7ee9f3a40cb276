// The example rules in rules/: every rules/<name>.vigil runs over its recorded
// rules/examples/<name>/events.ndjson through `runReplay` (the code of `vigil run`) and must give
// rules/examples/<name>/expected.ndjson (worked out by hand; `id` and `detectedAt` stripped, as in
// the golden corpus). All rule files also compile together without errors or warnings — the
// service loads every file of rules/ at start.

import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runReplay } from '../src/cli/run.js';
import { parseNdjson, strip } from './helpers/records.js';
import { compileSources } from '../src/compiler/rule.js';
import { renderDiagnostic } from '../src/core/diagnostics.js';

const rulesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'rules');

type Rec = Record<string, unknown>;

const ruleFiles = readdirSync(rulesDir)
  .filter((f) => f.endsWith('.vigil'))
  .sort();
const names = ruleFiles.map((f) => f.slice(0, -'.vigil'.length));

describe('example rules', () => {
  it('has rule files, each with a recorded example', () => {
    expect(ruleFiles.length).toBeGreaterThanOrEqual(7);
    for (const n of names) {
      expect(existsSync(join(rulesDir, 'examples', n, 'events.ndjson')), `${n}/events.ndjson`).toBe(true);
      expect(existsSync(join(rulesDir, 'examples', n, 'expected.ndjson')), `${n}/expected.ndjson`).toBe(true);
    }
  });

  it('compile together with no errors and no warnings (as the service loads them)', () => {
    const program = compileSources(ruleFiles.map((f) => ({ file: `rules/${f}`, text: readFileSync(join(rulesDir, f), 'utf8') })));
    const shown = program.diagnostics.map((d) => renderDiagnostic(d, program.sources.get(d.file)));
    expect(shown).toEqual([]);
    expect(program.rules.length).toBeGreaterThanOrEqual(ruleFiles.length);
  });

  it('declare at least one MQTT source for every stream they read, and only log sinks', () => {
    const program = compileSources(ruleFiles.map((f) => ({ file: `rules/${f}`, text: readFileSync(join(rulesDir, f), 'utf8') })));
    for (const r of program.rules) {
      for (const s of r.streams) expect(program.streams.get(s)?.sources.length, `${r.name} reads ${s}`).toBeGreaterThan(0);
      const sinks = [...r.alert.sinks, ...(r.onTimeout?.sinks ?? [])];
      for (const sink of sinks) expect(sink.kind, r.name).toBe('log');
    }
  });

  it.each(names)('%s: the recorded events give the expected alerts', async (n) => {
    const dir = join(rulesDir, 'examples', n);
    const events = readFileSync(join(dir, 'events.ndjson'), 'utf8');
    const lines = events.split('\n').filter((l) => l.trim() !== '').length;
    expect(lines).toBeGreaterThanOrEqual(10);
    expect(lines).toBeLessThanOrEqual(30);
    const result = await runReplay({
      rules: [{ file: `rules/${n}.vigil`, text: readFileSync(join(rulesDir, `${n}.vigil`), 'utf8') }],
      events,
      eventsName: `rules/examples/${n}/events.ndjson`,
    });
    expect(result.errors).toEqual([]);
    expect(result.exitCode).toBe(0);
    const expected = parseNdjson(readFileSync(join(dir, 'expected.ndjson'), 'utf8'));
    expect(expected.length).toBeGreaterThan(0);
    expect(result.records.map(strip)).toEqual(expected);
  });
});
