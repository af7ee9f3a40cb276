// Golden corpus runner. Every folder under test/golden/ is one case: rules.vigil, events.ndjson,
// expected.ndjson, optional args.json ({"stream": "NAME"}) and notes.md (the hand reasoning).
// The expected records were worked out by hand from the language reference; this runner
// feeds each case through the same code as `vigil run` and compares record by record, in order.
//
// `id` (a hash) and `detectedAt` (the wall clock) are stripped from actual alert records;
// every other field is compared as parsed JSON (key order does not matter).

import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runReplay } from '../src/cli/run.js';
import { parseNdjson, strip } from './helpers/records.js';

const goldenDir = join(dirname(fileURLToPath(import.meta.url)), 'golden');

interface GoldenCase {
  name: string;
  rulesFile: string;
  rulesText: string;
  events: string;
  expected: unknown[];
  stream: string | undefined;
}

type Rec = Record<string, unknown>;

function loadCases(): GoldenCase[] {
  return readdirSync(goldenDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const dir = join(goldenDir, name);
      const argsPath = join(dir, 'args.json');
      const args = existsSync(argsPath)
        ? (JSON.parse(readFileSync(argsPath, 'utf8')) as { stream?: string })
        : {};
      return {
        name,
        rulesFile: `test/golden/${name}/rules.vigil`,
        rulesText: readFileSync(join(dir, 'rules.vigil'), 'utf8'),
        events: readFileSync(join(dir, 'events.ndjson'), 'utf8'),
        expected: parseNdjson(readFileSync(join(dir, 'expected.ndjson'), 'utf8')),
        stream: args.stream,
      };
    });
}

async function run(c: GoldenCase): Promise<{ records: unknown[]; errors: string[]; exitCode: number }> {
  return runReplay({
    rules: [{ file: c.rulesFile, text: c.rulesText }],
    events: c.events,
    ...(c.stream !== undefined ? { stream: c.stream } : {}),
  });
}

function isAlert(r: unknown): r is Rec {
  const kind = (r as Rec | null)?.kind;
  return kind === 'match' || kind === 'timeout';
}

const cases = loadCases();

describe('golden corpus', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(90);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const result = await run(c);
    expect(result.exitCode).toBe(0);
    for (const r of result.records) {
      if (isAlert(r)) {
        expect(typeof r.id).toBe('string');
        expect((r.id as string).length).toBeGreaterThan(0);
        expect(typeof r.detectedAt).toBe('string');
      }
    }
    expect(result.records.map(strip)).toEqual(c.expected);
  });
});

describe('alert ids', () => {
  // Cases with several alerts of different kinds, keys and streams.
  const determinismCases = [
    'skip-none',
    'timeouts-under-then-any',
    'two-streams-union',
    'absence-several-partials',
    'sinks-do-not-change-output',
  ].map((suffix) => {
    const c = cases.find((x) => x.name.replace(/^\d+-/, '') === suffix);
    if (!c) throw new Error(`golden case *-${suffix} not found`);
    return c;
  });

  it.each(determinismCases.map((c) => [c.name, c] as const))(
    'are deterministic: %s run twice gives the same ids',
    async (_name, c) => {
      const first = await run(c);
      const second = await run(c);
      const ids = (rs: unknown[]) => rs.filter(isAlert).map((r) => r.id);
      expect(ids(first.records).length).toBeGreaterThan(0);
      expect(ids(second.records)).toEqual(ids(first.records));
    },
  );

  it.each(cases.map((c) => [c.name, c] as const))(
    'are unique within one run unless the alerts are the same: %s',
    async (_name, c) => {
      const result = await run(c);
      const byId = new Map<unknown, Rec>();
      for (const r of result.records.filter(isAlert)) {
        const seen = byId.get(r.id);
        if (seen === undefined) {
          byId.set(r.id, r);
        } else {
          // The same id is only allowed for the same kind over the same events.
          expect({ kind: r.kind, events: r.events }).toEqual({ kind: seen.kind, events: seen.events });
        }
      }
    },
  );
});
