// The sizes of events as sent (src/core/event-size.ts), measured on the body text: UTF-8 bytes
// of each NDJSON line or top-level array element, and nothing measured when the body as a whole
// is within the limit.

import { describe, expect, it } from 'vitest';
import { arrayElementBytes, eventSizes } from '../../src/core/event-size.js';

describe('event sizes', () => {
  it('array elements: strings with brackets, commas, quotes and escapes inside; nesting; whitespace; multi-byte text', () => {
    const elements = [{ a: '[],{}"\\' }, [1, [2, { b: ']' }]], 'x,y', 12.5e3, null, { é: 'ü😀' }, { q: '\\"],' }];
    const texts = elements.map((e) => JSON.stringify(e));
    expect(arrayElementBytes(JSON.stringify(elements))).toEqual(texts.map((t) => Buffer.byteLength(t)));
    const spaced = `\uFEFF [ ${texts.join(' ,\n\t ')} \r\n] `;
    expect(arrayElementBytes(spaced)).toEqual(texts.map((t) => Buffer.byteLength(t)));
    expect(arrayElementBytes('[]')).toEqual([]);
    expect(arrayElementBytes('[ ]')).toEqual([]);
  });

  it('measures only bodies over the limit; NDJSON lines skip blanks like the parser does', () => {
    const body = '{"a":1}\n\n{"b":"' + 'é'.repeat(10) + '"}\r\n';
    expect(eventSizes(body, 'lines', 1000)).toBeNull();
    expect(eventSizes(body, 'lines', 10)).toEqual([7, 28]);
    expect(eventSizes(' {"a":"ü"} ', 'object', 5)).toEqual([10]);
    expect(eventSizes('[{"a":1},{"b":22}]', 'array', 18)).toBeNull();
    expect(eventSizes('[{"a":1},{"b":22}]', 'array', 16)).toEqual([7, 8]);
  });
});
