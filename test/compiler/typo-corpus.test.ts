// The typo corpus (test/compiler/typo-corpus/): realistic rules, each with one mistake an author
// makes, and the diagnostic it must give (code, severity, line:col, message), stated in the
// file's header. The positions there were worked out from the text (generate.py finds the
// mistaken token), not from the compiler's output. Each case gives exactly that one diagnostic;
// a warning case still loads (no error), so `vigil check --strict` is what fails it (test/cli).

import { describe, expect, it } from 'vitest';
import { compileSources } from '../../src/compiler/rule.js';
import { dir, typoCases } from './typo-corpus/cases.js';

const cases = typoCases();

describe('typo corpus', () => {
  it('has at least 30 cases, warnings and errors both', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(cases.filter((c) => c.severity === 'warning').length).toBeGreaterThanOrEqual(10);
    expect(cases.filter((c) => c.severity === 'error').length).toBeGreaterThanOrEqual(10);
  });

  it.each(cases.map((c) => [c.file.slice(dir.length + 1), c] as const))('%s gives its diagnostic', (_name, c) => {
    const program = compileSources([{ file: c.file, text: c.text }]);
    expect(program.diagnostics.map(({ severity, code, line, col }) => ({ severity, code, line, col }))).toEqual([
      { severity: c.severity, code: c.code, line: c.line, col: c.col },
    ]);
    expect(program.diagnostics[0]!.message).toContain(c.message);
    // A warning leaves the rule loaded; an error refuses it.
    expect(program.rules.length).toBe(c.severity === 'warning' ? 1 : 0);
  });
});
