// The size of each event as it was sent (UTF-8 bytes of its JSON text), for the per-stream
// maximum event size. Measured on the text the events were parsed from, never by serializing
// them again, and only when the text as a whole is over the limit (then no event in it can be
// larger than the limit, and nothing is measured): the common case costs one length check.

/** UTF-8 bytes of a string. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Bytes of each top-level element of `text`, a valid JSON array (it has been parsed already),
 * without whitespace around the elements. One pass over the text; strings are skipped with
 * their escapes, so brackets and commas inside them do not count.
 */
export function arrayElementBytes(text: string): number[] {
  const out: number[] = [];
  const n = text.length;
  let i = text.indexOf('[');
  if (i < 0) return out;
  i++;
  let depth = 0;
  let start = -1;
  const close = (end: number): void => {
    let e = end;
    while (e > start && isSpace(text.charCodeAt(e - 1))) e--;
    out.push(utf8Bytes(text.slice(start, e)));
    start = -1;
  };
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skip to its closing quote.
      if (start < 0) start = i;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
      continue;
    }
    if (isSpace(c)) continue;
    if (depth === 0 && (c === 0x2c || c === 0x5d)) {
      // ',' or the closing ']' of the array.
      if (start >= 0) close(i);
      if (c === 0x5d) break;
      continue;
    }
    if (start < 0) start = i;
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return out;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Sizes of the events parsed from `text` when some may be over `maxBytes`, else null (the
 * whole text is within the limit, so each event is). `kind` says how the text held them.
 */
export function eventSizes(text: string, kind: 'object' | 'array' | 'lines', maxBytes: number): number[] | null {
  // A UTF-16 unit is at most 3 UTF-8 bytes: most bodies are decided without measuring.
  if (text.length * 3 <= maxBytes || utf8Bytes(text) <= maxBytes) return null;
  if (kind === 'object') return [utf8Bytes(text.trim())];
  if (kind === 'array') return arrayElementBytes(text);
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    out.push(utf8Bytes(line.endsWith('\r') ? line.slice(0, -1) : line));
  }
  return out;
}
