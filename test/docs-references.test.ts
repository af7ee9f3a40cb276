// The README and docs/*.md refer only to files that exist: every repository path they name
// (rules/…, docs/…, src/…, test/…, scripts/…, …) is there. API routes (`/rules/validate`) and
// URLs are not paths of the repository and are left out.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
/** A repository path: a top-level directory, then a path; not after '/', ':' or a word character (routes, URLs). */
const PATH = /(?<![/A-Za-z0-9_:.-])((?:rules|docs|src|test|bench|dashboards|scripts|bin|grammar)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])/g;

describe('docs refer to files that exist', () => {
  test('every repository path named in the README and docs/ exists', () => {
    const missing: string[] = [];
    // Rule-test diagnostic codes (`test/too-many-events`) read like paths: they are not.
    const codes = new Set([...readFileSync(join(ROOT, 'src/compiler/tests.ts'), 'utf8').matchAll(/'(test\/[a-z-]+)'/g)].map((m) => m[1]!));
    expect(codes.size).toBeGreaterThan(3);
    let count = 0;
    for (const doc of DOCS) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      for (const m of text.matchAll(PATH)) {
        count++;
        if (codes.has(m[1]!)) continue;
        if (!existsSync(join(ROOT, m[1]!))) missing.push(`${doc}: ${m[1]}`);
      }
    }
    expect(count).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });

  test('the first rule of docs/language.md runs as the doc says', () => {
    const text = readFileSync(join(ROOT, 'docs/language.md'), 'utf8');
    expect(text).toContain('npx vigil run rules/card-testing.vigil --events rules/examples/card-testing/events.ndjson');
    expect(text).not.toContain('rules/cards.vigil');
  });
});
