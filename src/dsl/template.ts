// Templates (language §4): the alert message, the email subject and the MQTT topic are
// strings whose decoded text has `{EXPR}` holes; `{{` and `}}` are literal braces.
// This module splits a template string into literal text and holes, tokenizes each hole
// with the rule language's lexer and hands the tokens to the expression parser it is given.
// Every position it reports points into the rules file: it keeps a decoded-index → source
// offset map while decoding escapes. It never throws and never evaluates anything.

import { diagnostic, type Diagnostic, type Span } from '../core/diagnostics.js';
import type { Expr, Template } from './ast.js';
import { decodeString, tokenize, type Token } from './lexer.js';

/**
 * Parses the tokens of one hole as an expression. `closing` is the hole's `}` (for "unexpected
 * '}'" errors). `quiet`: a lexical error in the hole was reported already, so report no syntax
 * error. Returns null when the hole did not parse.
 */
export type HoleParser = (tokens: Token[], closing: Token, quiet: boolean) => Expr | null;

/**
 * The template written as the string literal at `span` in `source` (quotes included).
 * Holes that do not parse are left out of `parts` (their errors are in `diagnostics`).
 * Empty literal runs are not kept: `"{a}{b}"` gives `[a, b]`, `""` gives `[]`.
 */
export function parseTemplate(
  source: string,
  span: Span,
  file: string,
  parseHole: HoleParser,
  diagnostics: Diagnostic[],
): Template {
  const raw = source.slice(span.offset, span.endOffset);
  const closed = /^"(?:[^"\\\n]|\\[^\n])*"$/.test(raw);
  const content = closed ? raw.slice(1, -1) : raw.slice(1);
  // Bad escapes were reported by the lexer already; here only the text and its map matter.
  const { value, map } = decodeString(content, span.offset + 1);
  // An unterminated string was reported by the lexer; its holes would only add noise.
  if (!closed) return { kind: 'template', parts: value === '' ? [] : [value], span };

  // The string literal is on one line (strings cannot hold a raw newline), so a source
  // offset gives its column directly.
  const at = (sourceOffset: number, endOffset: number): Span => ({
    offset: sourceOffset,
    endOffset: Math.max(endOffset, sourceOffset),
    line: span.line,
    col: span.col + (sourceOffset - span.offset),
  });
  const charSpan = (i: number): Span => at(map[i]!, map[i + 1] ?? map[i]! + 1);
  const error = (message: string, s: Span): void => {
    diagnostics.push(diagnostic('error', 'dsl/bad-template', message, file, s));
  };

  const parts: (string | Expr)[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal !== '') parts.push(literal);
    literal = '';
  };

  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c === '}') {
      if (value[i + 1] === '}') {
        literal += '}';
        i += 2;
      } else {
        error("stray '}' in template: write '}}' for a literal brace", charSpan(i));
        i += 1;
      }
      continue;
    }
    if (c !== '{') {
      literal += c;
      i += 1;
      continue;
    }
    if (value[i + 1] === '{') {
      literal += '{';
      i += 2;
      continue;
    }
    const close = findHoleEnd(value, i + 1);
    if (close < 0) {
      error("unclosed '{' in template: a hole ends with '}' (write '{{' for a literal brace)", charSpan(i));
      break;
    }
    flush();
    const start = i + 1;
    const text = value.slice(start, close);
    if (text.trim() === '') {
      error("empty hole '{}' in template: write an expression, or '{{' for a literal brace", at(map[i]!, map[close + 1]!));
    } else {
      const expr = parseHoleText(text, start, close);
      if (expr !== null) parts.push(expr);
    }
    i = close + 1;
  }
  flush();
  return { kind: 'template', parts, span };

  // Tokenizes the hole's decoded text and moves every token to its place in the rules file.
  function parseHoleText(text: string, start: number, close: number): Expr | null {
    const { tokens, errors } = tokenize(text);
    const move = (offset: number, endOffset: number): Span => at(map[start + offset]!, map[start + endOffset]!);
    for (const e of errors) {
      diagnostics.push(diagnostic('error', e.code, e.message, file, move(e.span.offset, e.span.endOffset)));
    }
    const moved = tokens.map((t): Token => ({ ...t, ...move(t.offset, t.endOffset) }));
    const closing: Token = { type: 'punct', text: '}', value: '}', ...charSpan(close) };
    return parseHole(moved, closing, errors.some((e) => e.breaksTokens));
  }
}

/** The index of the `}` that closes a hole whose text starts at `from`, skipping string literals; -1 if none. */
function findHoleEnd(value: string, from: number): number {
  let j = from;
  while (j < value.length) {
    const c = value[j]!;
    if (c === '}') return j;
    if (c === '"') {
      j += 1;
      while (j < value.length && value[j] !== '"') j += value[j] === '\\' ? 2 : 1;
    }
    j += 1;
  }
  return -1;
}
