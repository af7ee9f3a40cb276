// Operators of language §7 with normal values, null, and mixed types (decisions 1–4).
import { describe, expect, it } from 'vitest';
import { check, value } from './helpers.js';

const row = {
  n: 10,
  m: 3,
  z: 0,
  s: 'abc',
  t: 'abd',
  b: true,
  f: false,
  nul: null,
  list: [1, 'x', [2], { k: 1 }, null],
  obj: { k: 1, l: [1, 2] },
  obj2: { l: [1, 2], k: 1 },
};

describe('comparisons', () => {
  it.each([
    ['n == 10', true],
    ['n == 11', false],
    ['n != 11', true],
    ['n != 10', false],
    ['n < 11', true],
    ['n < 10', false],
    ['n <= 10', true],
    ['n > 9', true],
    ['n > 10', false],
    ['n >= 10', true],
    ['10 < n', false],
    ['9 < n', true],
    ['n > m', true],
    ['m > n', false],
    ['s == "abc"', true],
    ['s != "abc"', false],
    ['s < t', true],
    ['s < "abc"', false],
    ['s <= "abc"', true],
    ['t > s', true],
    ['t >= "abd"', true],
    ['b == true', true],
    ['b != true', false],
    ['b != false', true],
    ['f == false', true],
    ['obj == obj2', true],
    ['obj == list', false],
    ['obj != obj2', false],
    ['list == [1, "x", [2], $.obj, null]', false],
    ['[1, [2, 3]] == [1, [2, 3]]', true],
    ['[1, [2, 3]] != [1, [2, 4]]', true],
    ['$.obj.l == [1, 2]', true],
    ['$.obj.l != [1, 2]', false],
  ])('%s → %s', (src, want) => {
    expect(check(src, row)).toBe(want);
  });

  it.each([
    // null on either side: always false, `!=` included
    'nul == null',
    'nul != null',
    'missing == 1',
    'missing != 1',
    'missing < 1',
    'missing >= 1',
    'nul == nul',
    'nul != nul',
    'missing == missing',
    // mixed types: always false
    'n == "10"',
    'n != "10"',
    's != 1',
    'n < "11"',
    's > 1',
    'b == 1',
    'b != 1',
    'b < true',
    'f < true',
    'obj == list',
    'obj != list',
    'list != "x"',
    'obj < obj2',
    'list > list',
    '$.list[0] != "1"',
  ])('%s → false', (src) => {
    expect(check(src, row)).toBe(false);
  });

  it('null on one side of a comparison of two fields is false', () => {
    expect(check('n != missing', row)).toBe(false);
    expect(check('missing != n', row)).toBe(false);
    expect(check('n < missing', row)).toBe(false);
  });
});

describe('logic', () => {
  it.each([
    ['b and b', true],
    ['b and f', false],
    ['f or b', true],
    ['f or f', false],
    ['not f', true],
    ['not b', false],
    // only exactly true counts
    ['n and b', false],
    ['n or f', false],
    ['s or n', false],
    ['not n', true],
    ['not s', true],
    ['not missing', true],
    ['missing or b', true],
    ['missing and b', false],
    ['not (n > 5)', false],
    ['not not b', true],
    ['true', true],
    ['false', false],
    ['null', false],
    ['1', false],
    ['b', true],
    ['n', false],
  ])('%s → %s', (src, want) => {
    expect(check(src, row)).toBe(want);
  });

  it('and/or give booleans as values', () => {
    expect(value('n > 1 and m > 1', row)).toBe(true);
    expect(value('n or b', row)).toBe(true);
    expect(value('n and b', row)).toBe(false);
  });
});

describe('precedence (loosest first: or, and, not, comparison, + -, * / %, unary -)', () => {
  it.each([
    ['f and f or b', true], // (f and f) or b
    ['b or b and f', true], // b or (b and f)
    ['not f and f', false], // (not f) and f
    ['not n > 50', true], // not (n > 50)
    ['n + m * 2 == 16', true],
    ['(n + m) * 2 == 26', true],
    ['n - m - 2 == 5', true],
    ['n / 5 / 2 == 1', true],
    ['-n + 12 == 2', true],
    ['n % 4 * 2 == 4', true],
    ['n > 5 and m < 5 or f', true],
    ['n + 1 in [11, 12]', true],
  ])('%s → %s', (src, want) => {
    expect(check(src, row)).toBe(want);
  });
});

describe('arithmetic', () => {
  it.each<[string, unknown]>([
    ['n + m', 13],
    ['n - m', 7],
    ['n * m', 30],
    ['n / 4', 2.5],
    ['n % m', 1],
    ['-n % m', -1],
    ['-n', -10],
    ['- -n', 10],
    ['s + t', 'abcabd'],
    ['s + "!"', 'abc!'],
    ['1.5s + 250ms', 1750],
    ['2h / 1m', 120],
    // null and mixed → null
    ['n + missing', null],
    ['missing + n', null],
    ['n + "1"', null],
    ['s + 1', null],
    ['s - "a"', null],
    ['b + b', null],
    ['list + list', null],
    ['n / 0', null],
    ['n % 0', null],
    ['n / z', null],
    ['0 / 0', null],
    ['-s', null],
    ['-missing', null],
    ['1e308 * 10', null],
  ])('%s → %j', (src, want) => {
    expect(value(src, row)).toEqual(want);
  });
});

describe('in, not in, contains, startswith, endswith', () => {
  it.each([
    ['n in [1, 10]', true],
    ['n in [1, 2]', false],
    ['s in ["abc", "x"]', true],
    ['"10" in [10]', false],
    ['n in ["10"]', false],
    ['b in [true]', true],
    ['[2] in list', true],
    ['$.obj in [$.list, $.obj2]', true],
    ['1 in list', true],
    ['"x" in list', true],
    ['nul in list', false], // null is never a member
    ['missing in [null]', false],
    ['"b" in s', true],
    ['"bc" in s', true],
    ['"x" in s', false],
    ['n in s', false],
    ['s in n', false],
    ['s in obj', false],
    ['"k" in obj', false],
    ['n in missing', false],
    ['n not in [1, 2]', true],
    ['n not in [10]', false],
    ['"x" not in s', true],
    // not in is false when null or the types do not fit, like every comparison (language §7)
    ['n not in s', false],
    ['missing not in [1]', false],
    ['nul not in ["EUR"]', false],
    ['n not in ["EUR"]', false],
    ['s not in ["EUR", "USD"]', true],
    ['s not in ["EUR", 5]', false], // s != 5 is false: mixed types
    ['s not in ["EUR", null]', false], // s != null is false
    ['n not in []', true],
    ['missing not in []', false],
    ['[3] not in [[2], [4]]', true],
    ['[2] not in [[2], [4]]', false],
    ['[3] not in list', false], // list holds null and values of other types
    ['obj not in [$.list]', false], // an object is not compared with a list
    ['s not in n', false],
    ['"abc" not in s', false],
    ['n not in obj.l', true], // a list that is not a constant
    ['1 not in obj.l', false],
    ['n not in missing', false],
    ['list contains "x"', true],
    ['list contains 7', false],
    ['s contains "bc"', true],
    ['s contains "zz"', false],
    ['n contains 1', false],
    ['s contains n', false],
    ['s startswith "ab"', true],
    ['s startswith "b"', false],
    ['s endswith "bc"', true],
    ['s endswith "ab"', false],
    ['s startswith n', false],
    ['n startswith "1"', false],
    ['missing endswith ""', false],
    ['s startswith t', false],
    ['s startswith $.s', true],
  ])('%s → %s', (src, want) => {
    expect(check(src, row)).toBe(want);
  });

  it('a literal list is membership by deep equality for lists/objects', () => {
    expect(check('$.obj.l in [[1, 2], 3]', row)).toBe(true);
    expect(check('$.obj.l in [[1, 3], 3]', row)).toBe(false);
  });

  it('a dynamic list works as well as a literal one', () => {
    expect(check('n in [m, n]', row)).toBe(true);
    expect(check('n in [m, m]', row)).toBe(false);
  });
});

describe('names, members and indexes', () => {
  const data = {
    from: 'x',
    'x-id': 7,
    meta: { ts: 5, tags: ['a', 'b'], deep: { k: [{ v: 1 }] } },
    list: [1, 2, 3],
  };
  it.each<[string, unknown]>([
    ['$.from', 'x'],
    ['$["x-id"]', 7],
    ['meta.ts', 5],
    ['meta["ts"]', 5],
    ['meta.tags[0]', 'a'],
    ['meta.tags[-1]', 'b'],
    ['meta.tags[2]', null],
    ['meta.tags[-3]', null],
    ['meta.tags[0.5]', null],
    ['meta.tags["0"]', null],
    ['meta.deep.k[0].v', 1],
    ['meta.nope.x', null],
    ['list.length', null],
    ['from.length', null],
    ['meta.ts.x', null],
    ['list[1 + 1]', 3],
    ['meta[$.from]', null],
    ['$', data],
    ['[1, 2][1]', 2],
    ['"abc"[0]', null],
  ])('%s → %j', (src, want) => {
    expect(value(src, data)).toEqual(want);
  });

  it('never reads inherited properties', () => {
    for (const n of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      expect(value(n, {})).toBeNull();
      expect(value(`$.${n}`, {})).toBeNull();
      expect(value(`meta.${n}`, { meta: {} })).toBeNull();
      expect(value(`meta.${n}.x`, { meta: {} })).toBeNull();
      expect(value(`$["${n}"]`, {})).toBeNull();
    }
    expect(value('constructor', { constructor: 3 })).toBe(3);
    expect(value('$["__proto__"]', JSON.parse('{"__proto__": 4}'))).toBe(4);
  });

  it('matches', () => {
    expect(check('s matches /^a.c$/', { s: 'abc' })).toBe(true);
    expect(check('s matches /b/', { s: 'abc' })).toBe(true); // a search, not anchored
    expect(check('s matches /^B/i', { s: 'bcd' })).toBe(true);
    expect(check('s matches /^B/', { s: 'bcd' })).toBe(false);
    expect(check('s matches /^x$/m', { s: 'a\nx\nb' })).toBe(true);
    expect(check('s matches /a.b/s', { s: 'a\nb' })).toBe(true);
    expect(check('s matches /a.b/', { s: 'a\nb' })).toBe(false);
    expect(check('s matches /^.$/u', { s: '😀' })).toBe(true);
    expect(check('n matches /1/', { n: 1 })).toBe(false);
    expect(check('missing matches /.*/', {})).toBe(false);
    expect(check('list matches /1/', { list: ['1'] })).toBe(false);
    expect(check('not (s matches /z/)', { s: 'abc' })).toBe(true);
    expect(check('meta.s matches /c$/', { meta: { s: 'abc' } })).toBe(true);
  });
});
