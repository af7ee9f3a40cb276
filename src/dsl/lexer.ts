// The lexer of the rule language (language §1): a moo lexer plus `tokenize`, which turns a
// whole text into an array of significant tokens and a list of lexical errors as data.
// It never throws and never drops a position: every token carries offset, line and col from
// moo. It knows nothing of declarations or clauses (that is the parser's job).

import moo from 'moo';
import type { Span } from '../core/diagnostics.js';

/** Words that are always keywords; every other word is an identifier (language §1). */
export const RESERVED_WORDS = [
  'and',
  'or',
  'not',
  'in',
  'contains',
  'startswith',
  'endswith',
  'matches',
  'true',
  'false',
  'null',
] as const;

const WORD_END = '(?![A-Za-z0-9_])';

// Rules shared by the main state and the state right after `matches`. `matches` pushes the
// `regex` state so that `/re/flags` is lexed there only: everywhere else `/` is division.
const mainRules: moo.Rules = {
  ws: { match: /[ \t\r\n\f\v]+/, lineBreaks: true },
  comment: /#[^\n]*/,
  duration: new RegExp(`\\d+(?:\\.\\d+)?(?:ms|s|m|h|d)${WORD_END}`),
  number: /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/,
  string: /"(?:[^"\\\n]|\\[^\n])*"/,
  // A string that reaches the end of the line (or of the text) without its closing quote.
  unterminatedString: /"(?:[^"\\\n]|\\[^\n])*\\?/,
  matches: { match: new RegExp(`matches${WORD_END}`), push: 'regex' },
  ident: {
    match: /[A-Za-z_][A-Za-z0-9_]*/,
    type: moo.keywords({ kw: RESERVED_WORDS.filter((w) => w !== 'matches') }),
  },
  op: ['==', '!=', '<=', '>=', '<', '>', '+', '-', '*', '/', '%'],
  punct: ['{', '}', '(', ')', '[', ']', ',', ':', '.', '?', '$'],
  invalid: { match: /[^]/, lineBreaks: true },
};

// After `matches`: whitespace, comments, then the regex. Any other token is lexed as in the
// main state and pops back to it, so the grammar (not the lexer) reports the missing regex.
const regexRules: moo.Rules = {
  ws: { match: /[ \t\r\n\f\v]+/, lineBreaks: true },
  comment: /#[^\n]*/,
  regex: { match: /\/(?:[^/\\\n]|\\[^\n])*\/[A-Za-z]*/, pop: 1 },
  unterminatedRegex: { match: /\/(?:[^/\\\n]|\\[^\n])*\\?/, pop: 1 },
};
for (const [name, rule] of Object.entries(mainRules)) {
  if (name === 'ws' || name === 'comment') continue;
  if (name === 'matches') {
    regexRules[name] = { match: new RegExp(`matches${WORD_END}`), pop: 1 };
  } else if (Array.isArray(rule)) {
    regexRules[name] = { match: rule as string[], pop: 1 };
  } else if (rule instanceof RegExp) {
    regexRules[name] = { match: rule, pop: 1 };
  } else {
    regexRules[name] = { ...(rule as moo.Rule), pop: 1 };
  }
}

/** The moo lexer. The grammar names it with `@lexer`; `tokenize` is what feeds the parser. */
export const lexer = moo.states({ main: mainRules, regex: regexRules });

export type TokenType =
  | 'ident'
  | 'kw'
  | 'matches'
  | 'number'
  | 'duration'
  | 'string'
  | 'regex'
  | 'op'
  | 'punct'
  // Synthetic first tokens that select the grammar's entry rule (see parser.ts).
  | 'entryExpr'
  | 'entryStreamClause'
  | 'entryRuleClause'
  | 'entryStreamHead'
  | 'entryRuleHead'
  | 'entryTestHead'
  | 'entryTestClause';

export interface Token {
  type: TokenType;
  /** Source text of the token (nearley matches grammar literals against this). */
  text: string;
  /** For strings the decoded value; otherwise the text. */
  value: string;
  offset: number;
  endOffset: number;
  line: number;
  col: number;
}

export interface LexError {
  code: string;
  message: string;
  span: Span;
  /** The error changed the token stream (a token was dropped or cut short). */
  breaksTokens: boolean;
}

export function tokenSpan(t: Token): Span {
  return { offset: t.offset, endOffset: t.endOffset, line: t.line, col: t.col };
}

export interface DecodedString {
  value: string;
  /** map[i] = source offset of the raw text that produced value[i]; map[value.length] = end. */
  map: number[];
  errors: { offset: number; length: number; message: string }[];
}

/**
 * Decodes the content of a string literal (without its quotes) that starts at `base` in the
 * source. Escapes: \" \\ \n \t \u{HEX}. A bad escape is reported and kept as written.
 */
export function decodeString(content: string, base: number): DecodedString {
  let value = '';
  const map: number[] = [];
  const errors: DecodedString['errors'] = [];
  let i = 0;
  const push = (s: string, at: number): void => {
    value += s;
    for (let k = 0; k < s.length; k++) map.push(at);
  };
  while (i < content.length) {
    const c = content[i]!;
    if (c !== '\\') {
      push(c, base + i);
      i++;
      continue;
    }
    const e = content[i + 1];
    if (e === undefined) {
      // A lone backslash at the end of an unterminated string: already reported as such.
      i++;
      continue;
    }
    const simple = e === '"' ? '"' : e === '\\' ? '\\' : e === 'n' ? '\n' : e === 't' ? '\t' : null;
    if (simple !== null) {
      push(simple, base + i);
      i += 2;
      continue;
    }
    if (e === 'u') {
      const m = /^\{([0-9A-Fa-f]{1,6})\}/.exec(content.slice(i + 2, i + 12));
      const code = m ? parseInt(m[1]!, 16) : NaN;
      if (m && code <= 0x10ffff) {
        push(String.fromCodePoint(code), base + i);
        i += 2 + m[0].length;
        continue;
      }
      const len = m ? 2 + m[0].length : 2;
      errors.push({
        offset: base + i,
        length: len,
        message: `bad escape '${content.slice(i, i + len)}': write a code point as \\u{1F600}`,
      });
      push(content.slice(i, i + len), base + i);
      i += len;
      continue;
    }
    errors.push({
      offset: base + i,
      length: 2,
      message: `bad escape '\\${e}': the escapes are \\" \\\\ \\n \\t \\u{...}`,
    });
    push(e, base + i);
    i += 2;
  }
  map.push(base + content.length);
  return { value, map, errors };
}

/** Line and column (1-based) of every offset on the line of `anchor`, for single-line text. */
function spanOnLine(anchor: { offset: number; line: number; col: number }, offset: number, length: number): Span {
  return { offset, endOffset: offset + length, line: anchor.line, col: anchor.col + (offset - anchor.offset) };
}

export interface TokenizeResult {
  tokens: Token[];
  errors: LexError[];
}

/**
 * All significant tokens of `source` (whitespace and comments dropped) and the lexical
 * errors: invalid characters (a run of them is one error), unterminated strings and
 * regexes, bad escapes. Never throws.
 */
export function tokenize(source: string): TokenizeResult {
  const tokens: Token[] = [];
  const errors: LexError[] = [];
  // A clone per call: tokenize is re-entrant (template holes are tokenized on their own).
  const lx = (lexer as moo.Lexer & { clone(): moo.Lexer }).clone().reset(source);
  let lastInvalid: LexError | null = null;
  for (;;) {
    const t = lx.next();
    if (t === undefined) break;
    const type = t.type ?? 'invalid';
    const endOffset = t.offset + t.text.length;
    if (type === 'invalid') {
      if (lastInvalid !== null && lastInvalid.span.endOffset === t.offset) {
        lastInvalid.span.endOffset = endOffset;
        lastInvalid.message = `invalid characters '${source.slice(lastInvalid.span.offset, endOffset)}'`;
      } else {
        lastInvalid = {
          code: 'dsl/invalid-character',
          message: `invalid character '${t.text}'`,
          span: { offset: t.offset, endOffset, line: t.line, col: t.col },
          breaksTokens: true,
        };
        errors.push(lastInvalid);
      }
      continue;
    }
    lastInvalid = null;
    if (type === 'ws' || type === 'comment') continue;
    const prev = tokens[tokens.length - 1];
    const base = { text: t.text, value: t.text, offset: t.offset, endOffset, line: t.line, col: t.col };
    switch (type) {
      case 'string':
      case 'unterminatedString': {
        const closed = type === 'string';
        if (!closed) {
          errors.push({
            code: 'dsl/unterminated-string',
            message: 'unterminated string: missing the closing \'"\'',
            span: { offset: t.offset, endOffset, line: t.line, col: t.col },
            breaksTokens: true,
          });
        }
        const content = closed ? t.text.slice(1, -1) : t.text.slice(1);
        const decoded = decodeString(content, t.offset + 1);
        for (const e of decoded.errors) {
          errors.push({ code: 'dsl/bad-escape', message: e.message, span: spanOnLine(base, e.offset, e.length), breaksTokens: false });
        }
        tokens.push({ ...base, type: 'string', value: decoded.value });
        break;
      }
      case 'regex':
      case 'unterminatedRegex':
        if (type === 'unterminatedRegex') {
          errors.push({
            code: 'dsl/unterminated-regex',
            message: "unterminated regular expression: missing the closing '/'",
            span: { offset: t.offset, endOffset, line: t.line, col: t.col },
            breaksTokens: true,
          });
        }
        tokens.push({ ...base, type: 'regex' });
        break;
      case 'matches':
        // After `.` every word is a field name: `$.matches` is not the operator.
        if (prev !== undefined && prev.text === '.' && prev.type === 'punct') lx.popState();
        tokens.push({ ...base, type: 'matches' });
        break;
      default:
        tokens.push({ ...base, type: type as TokenType });
    }
  }
  return { tokens, errors };
}
