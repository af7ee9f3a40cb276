// Fuzzing (deterministic, seeded): random token soup and mutations of valid rules files.
// parseProgram must never throw, and every diagnostic must carry a usable position.

import { describe, expect, it } from 'vitest';
import { prng } from '../../src/core/prng.js';
import { parseProgram } from '../../src/dsl/parser.js';
import { VALID_SNIPPETS } from './corpus.js';

const SOUP = [
  'stream', 'rule', 'from', 'match', 'within', 'skip', 'none', 'to', 'next', 'past', 'last', 'first', 'alert', 'on',
  'timeout', 'throttle', 'per', 'max', 'partials', 'webhook', 'header', 'secret', 'env', 'email', 'subject', 'mqtt',
  'qos', 'retain', 'log', 'then', 'any', 'greedy', 'consecutive', 'combinations', 'until', 'for', 'key', 'time',
  'watermark', 'idle', 'fields', 'source', 'id', 'by', 'and', 'or', 'not', 'in', 'contains', 'startswith', 'endswith',
  'matches', 'true', 'false', 'null', 'x', 'a', 'b', 'string', '{', '}', '(', ')', '[', ']', ',', ':', '.', '?', '$',
  '+', '*', '-', '/', '%', '==', '!=', '<=', '>=', '<', '>', '12', '4.5', '1e6', '5s', '250ms', '"s"', '"{a}"',
  '"{"', '"}"', '"\\q"', '"open', '/re/i', '/open', '#c\n', '\n', '~', '€', '\\', '"{f(\\"x\\")}"', '"{{}}"', '{3,}',
];

function soup(random: () => number): string {
  const n = 1 + Math.floor(random() * 60);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(SOUP[Math.floor(random() * SOUP.length)]!);
  return parts.join(random() < 0.8 ? ' ' : '');
}

function mutate(random: () => number, text: string): string {
  let s = text;
  const rounds = 1 + Math.floor(random() * 4);
  for (let r = 0; r < rounds; r++) {
    const i = Math.floor(random() * (s.length + 1));
    const len = 1 + Math.floor(random() * 12);
    switch (Math.floor(random() * 6)) {
      case 0: // delete a chunk
        s = s.slice(0, i) + s.slice(i + len);
        break;
      case 1: // insert a soup token
        s = `${s.slice(0, i)} ${SOUP[Math.floor(random() * SOUP.length)]} ${s.slice(i)}`;
        break;
      case 2: // duplicate a chunk
        s = s.slice(0, i) + s.slice(i, i + len) + s.slice(i);
        break;
      case 3: {
        // swap two chunks
        const j = Math.floor(random() * (s.length + 1));
        const [p, q] = i < j ? [i, j] : [j, i];
        if (q - p > len) s = s.slice(0, p) + s.slice(q, q + len) + s.slice(p + len, q) + s.slice(p, p + len) + s.slice(q + len);
        break;
      }
      case 4: // truncate
        s = s.slice(0, i);
        break;
      default: // a single random character
        s = s.slice(0, i) + String.fromCharCode(Math.floor(random() * 128)) + s.slice(i);
    }
  }
  return s;
}

describe('fuzz', () => {
  it('never throws and positions every diagnostic, over 3000 inputs', () => {
    const random = prng(20261120);
    const started = performance.now();
    let withErrors = 0;
    for (let n = 0; n < 3000; n++) {
      const source = n % 3 === 0 ? soup(random) : mutate(random, VALID_SNIPPETS[Math.floor(random() * VALID_SNIPPETS.length)]!);
      let result: ReturnType<typeof parseProgram>;
      try {
        result = parseProgram(source, 'fuzz.vigil');
      } catch (e) {
        throw new Error(`parseProgram threw on input #${n} ${JSON.stringify(source)}: ${String(e)}`);
      }
      if (result.diagnostics.length > 0) withErrors++;
      for (const d of result.diagnostics) {
        if (d.line < 1 || d.col < 1 || d.offset < 0 || d.offset > source.length || d.endOffset < d.offset || d.code === 'dsl/internal' || d.code === 'dsl/ambiguous') {
          throw new Error(`bad diagnostic on input #${n} ${JSON.stringify(source)}: ${JSON.stringify(d)}`);
        }
        // line and col agree with the offset
        const before = source.slice(0, d.offset).split('\n');
        if (before.length !== d.line || before[before.length - 1]!.length + 1 !== d.col) {
          throw new Error(`position mismatch on input #${n} ${JSON.stringify(source)}: ${JSON.stringify(d)}`);
        }
      }
    }
    expect(withErrors).toBeGreaterThan(1500);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
