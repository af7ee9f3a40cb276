// Strings with lone surrogates, kept lossless in storage. A JSON string may hold a lone
// surrogate ("\ud800" is valid JSON), but UTF-8 cannot encode one: LMDB's msgpack writes it as
// U+FFFD, so a key or an event holding one would change across a restart (two keys would
// merge). What is stored holding one is stored as JSON text instead (JSON.stringify escapes a
// lone surrogate as six ASCII characters), behind a marker that no stored value starts with.
//
// Finding them costs nothing in the common case: a body can hold a lone surrogate only through
// a `\uD8xx`…`\uDFxx` escape (UTF-8 text decodes to well-formed strings), so the door looks for
// that escape in the text, and walks the parsed events only when it is there. The events that
// hold one are remembered (by identity, in a WeakSet) for the codec.

/** Starts a value stored as its JSON text. A stored string that starts with it is stored as JSON too, so none is mistaken. */
export const JSON_FORM_MARKER = '\u0000json:';

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** A `\uD800`–`\uDFFF` escape in JSON text (a pair of them is fine, but is found too: then the events are walked). */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

const holding = new WeakSet<object>();

/** Can the JSON text hold a lone surrogate? False for nearly every body (one native scan). */
export function mayHoldLoneSurrogate(jsonText: string): boolean {
  return SURROGATE_ESCAPE.test(jsonText);
}

/** Does a value hold a lone surrogate in a string or a property name, at any depth? Iterative. */
export function holdsLoneSurrogate(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) return true;
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
    } else if (v !== null && typeof v === 'object') {
      for (const k in v) {
        if (LONE_SURROGATE.test(k)) return true;
        stack.push((v as Record<string, unknown>)[k]);
      }
    }
  }
  return false;
}

/**
 * Marks the parsed events of `jsonText` that hold a lone surrogate, so the codec stores them as
 * JSON text. Walks them only when the text has a surrogate escape.
 */
export function markLoneSurrogates(jsonText: string, events: readonly unknown[]): void {
  if (!mayHoldLoneSurrogate(jsonText)) return;
  for (const e of events) if (e !== null && typeof e === 'object' && holdsLoneSurrogate(e)) holding.add(e);
}

/** Was this event (its data object) marked as holding a lone surrogate? */
export function isMarked(data: object): boolean {
  return holding.has(data);
}

/** Marks a data object read back from storage as holding a lone surrogate. */
export function mark(data: object): void {
  holding.add(data);
}

/** An event's data as stored: itself, or its JSON text behind the marker when it holds a lone surrogate. */
export function storedDataForm<T extends object>(data: T): T | string {
  return holding.has(data) ? JSON_FORM_MARKER + JSON.stringify(data) : data;
}

/** The data a stored form stands for; data read back from JSON text is marked again (it may be stored again). */
export function dataFromStoredForm<T extends object>(stored: T | string): T {
  if (typeof stored !== 'string') return stored;
  const data = JSON.parse(stored.slice(JSON_FORM_MARKER.length)) as T;
  holding.add(data);
  return data;
}

/**
 * A key (any JSON value) as stored: itself, or its JSON text behind the marker when it holds a
 * lone surrogate or is a string starting with the marker. `mapKey` is the runtime's map key
 * (an object or list key's JSON text), to spare a second JSON.stringify.
 */
export function storedKeyForm(key: unknown, mapKey: unknown = key): unknown {
  if (typeof key === 'string') return LONE_SURROGATE.test(key) || key.startsWith(JSON_FORM_MARKER) ? JSON_FORM_MARKER + JSON.stringify(key) : key;
  if (key !== null && typeof key === 'object') {
    const text = typeof mapKey === 'string' ? mapKey : JSON.stringify(key);
    return SURROGATE_ESCAPE.test(text) ? JSON_FORM_MARKER + text : key;
  }
  return key;
}

/** The key a stored key form stands for (see storedKeyForm). */
export function keyFromStoredForm(stored: unknown): unknown {
  return typeof stored === 'string' && stored.startsWith(JSON_FORM_MARKER) ? JSON.parse(stored.slice(JSON_FORM_MARKER.length)) : stored;
}
