// Every valid snippet parses with exactly one parse and no diagnostic: an ambiguous grammar
// (nearley results.length > 1) is reported as dsl/ambiguous, so "no diagnostics" covers it.

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProgram } from '../../src/dsl/parser.js';
import { VALID_SNIPPETS } from './corpus.js';
import { show } from './helpers.js';

describe('valid snippets parse once, without diagnostics', () => {
  it.each(VALID_SNIPPETS.map((s, i) => [i, s]))('snippet %i', (_, source) => {
    const { program, diagnostics } = parseProgram(source as string, 'corpus.vigil');
    expect(diagnostics.map(show)).toEqual([]);
    expect(program.decls.length).toBeGreaterThan(0);
  });

  it('the golden corpus rules files have no ambiguous parse', () => {
    const root = join(import.meta.dirname, '..', 'golden');
    if (!existsSync(root)) return;
    for (const dir of readdirSync(root)) {
      const file = join(root, dir, 'rules.vigil');
      if (!existsSync(file)) continue;
      const { diagnostics } = parseProgram(readFileSync(file, 'utf8'), file);
      expect(diagnostics.filter((d) => d.code === 'dsl/ambiguous' || d.code === 'dsl/internal')).toEqual([]);
    }
  });

  // Parsing speed is a benchmark matter, not a timed test: here only that a long file of every
  // construct parses cleanly, as one declaration list.
  it('a 200-line file of every construct parses without diagnostics', () => {
    let source = '';
    for (let i = 0; source.split('\n').length < 200; i++) source += `${VALID_SNIPPETS[i % VALID_SNIPPETS.length]}\n`;
    const { program, diagnostics } = parseProgram(source, 'big.vigil');
    expect(diagnostics).toEqual([]);
    expect(program.decls.length).toBeGreaterThan(10);
  });
});
