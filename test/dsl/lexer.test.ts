// The lexer (language §1): token kinds, durations against numbers, strings and escapes,
// the regex literal only after `matches`, comments, and lexical errors as data.

import { describe, expect, it } from 'vitest';
import { tokenize } from '../../src/dsl/lexer.js';

const kinds = (source: string) => tokenize(source).tokens.map((t) => `${t.type}:${t.text}`);

describe('tokens', () => {
  it('identifiers, reserved words, punctuation and operators', () => {
    expect(kinds('a_1 _b and or not in contains startswith endswith true false null then')).toEqual([
      'ident:a_1',
      'ident:_b',
      'kw:and',
      'kw:or',
      'kw:not',
      'kw:in',
      'kw:contains',
      'kw:startswith',
      'kw:endswith',
      'kw:true',
      'kw:false',
      'kw:null',
      'ident:then',
    ]);
    expect(kinds('{ } ( ) [ ] , : . ? $ + * - / % == != <= >= < >').map((k) => k.split(':')[0])).toEqual([
      ...Array<string>(11).fill('punct'),
      ...Array<string>(11).fill('op'),
    ]);
    expect(kinds('a<=b')).toEqual(['ident:a', 'op:<=', 'ident:b']);
    expect(kinds('android notable inx')).toEqual(['ident:android', 'ident:notable', 'ident:inx']);
  });

  it('numbers and durations: a unit right after the number, and not followed by a word character', () => {
    expect(kinds('12 4.5 1e6 1.5e-3 2E+3')).toEqual(['number:12', 'number:4.5', 'number:1e6', 'number:1.5e-3', 'number:2E+3']);
    expect(kinds('250ms 5s 10m 2h 1d 1.5s')).toEqual(['duration:250ms', 'duration:5s', 'duration:10m', 'duration:2h', 'duration:1d', 'duration:1.5s']);
    expect(kinds('5sec 10min 3 s')).toEqual(['number:5', 'ident:sec', 'number:10', 'ident:min', 'number:3', 'ident:s']);
    expect(kinds('-3')).toEqual(['op:-', 'number:3']);
  });

  it('strings decode their escapes; the text stays as written', () => {
    const [t] = tokenize('"a\\"b\\\\c\\nd\\te\\u{1F600}\\u{41}"').tokens;
    expect(t).toMatchObject({ type: 'string', value: 'a"b\\c\nd\te\u{1F600}A', text: '"a\\"b\\\\c\\nd\\te\\u{1F600}\\u{41}"' });
  });

  it('comments run to the end of the line', () => {
    expect(kinds('a # b c "d"\n e #')).toEqual(['ident:a', 'ident:e']);
  });

  it('the regex literal is lexed only right after matches', () => {
    expect(kinds('s matches /a\\/b c/im')).toEqual(['ident:s', 'matches:matches', 'regex:/a\\/b c/im']);
    expect(kinds('s matches\n  # the pattern\n  /x/')).toEqual(['ident:s', 'matches:matches', 'regex:/x/']);
    expect(kinds('a / b / c')).toEqual(['ident:a', 'op:/', 'ident:b', 'op:/', 'ident:c']);
    // `$.matches` is a field: what follows is lexed as usual.
    expect(kinds('$.matches / 2')).toEqual(['punct:$', 'punct:.', 'matches:matches', 'op:/', 'number:2']);
    // Anything but a regex after `matches` is an ordinary token (the grammar reports it).
    expect(kinds('s matches "x"')).toEqual(['ident:s', 'matches:matches', 'string:"x"']);
  });

  it('positions: offset, 1-based line and col, end offset', () => {
    const { tokens } = tokenize('a\n  bb "c"');
    expect(tokens.map((t) => [t.offset, t.endOffset, t.line, t.col])).toEqual([
      [0, 1, 1, 1],
      [4, 6, 2, 3],
      [7, 10, 2, 6],
    ]);
  });
});

describe('lexical errors are data with positions', () => {
  it('invalid characters; a run of them is one error', () => {
    const { tokens, errors } = tokenize('a ~ b €€ c');
    expect(tokens.map((t) => t.text)).toEqual(['a', 'b', 'c']);
    expect(errors.map((e) => [e.code, e.message, e.span.col, e.span.endOffset - e.span.offset])).toEqual([
      ['dsl/invalid-character', "invalid character '~'", 3, 1],
      ['dsl/invalid-character', "invalid characters '€€'", 7, 2],
    ]);
  });

  it('an unterminated string stops at the end of the line', () => {
    const { tokens, errors } = tokenize('x "abc\ny');
    expect(tokens.map((t) => `${t.type}:${t.text}`)).toEqual(['ident:x', 'string:"abc', 'ident:y']);
    expect(errors).toEqual([
      { code: 'dsl/unterminated-string', message: 'unterminated string: missing the closing \'"\'', span: { offset: 2, endOffset: 6, line: 1, col: 3 }, breaksTokens: true },
    ]);
  });

  it('bad escapes point at the escape', () => {
    const { tokens, errors } = tokenize('  "a\\qb\\u{110000}\\u{zz}"');
    expect(tokens).toHaveLength(1);
    expect(errors.map((e) => [e.code, e.span.col, e.span.endOffset - e.span.offset, e.message])).toEqual([
      ['dsl/bad-escape', 5, 2, "bad escape '\\q': the escapes are \\\" \\\\ \\n \\t \\u{...}"],
      ['dsl/bad-escape', 8, 10, "bad escape '\\u{110000}': write a code point as \\u{1F600}"],
      ['dsl/bad-escape', 18, 2, "bad escape '\\u': write a code point as \\u{1F600}"],
    ]);
  });

  it('an unterminated regex', () => {
    const { errors } = tokenize('s matches /abc\n');
    expect(errors.map((e) => [e.code, e.span.line, e.span.col])).toEqual([['dsl/unterminated-regex', 1, 11]]);
  });
});
