// Lone surrogates kept lossless in storage (src/core/lone-surrogates.ts): the key form and the
// event data form round-trip through real LMDB (msgpack would turn a lone surrogate into
// U+FFFD), distinct keys stay distinct, and nothing else changes form.

import { afterAll, describe, expect, it } from 'vitest';
import { dataFromStoredForm, holdsLoneSurrogate, keyFromStoredForm, markLoneSurrogates, mayHoldLoneSurrogate, storedDataForm, storedKeyForm } from '../../src/core/lone-surrogates.js';
import { LmdbStore } from '../../src/state/lmdb-store.js';
import { removeTempDirs, tempDir } from '../helpers/service.js';

afterAll(removeTempDirs);

const KEYS: unknown[] = ['\ud800', '\udbff', '\ufffd', '\ufffd\ufffd\ufffd', 'a\udc00', '\u0000json:"x"', 'plain', '😀', 42, true, null, { k: '\ud800' }, ['\udfff', 1], { k: 'ok' }];

describe('lone surrogates in storage', () => {
  it('plain msgpack loses them (why the stored forms exist)', async () => {
    const store = LmdbStore.open(tempDir());
    store.commit([{ db: 'meta', key: 'x', value: ['\ud800', '\udbff'] }]);
    const back = store.get<string[]>('meta', 'x')!;
    expect(back[0]).not.toBe('\ud800');
    await store.close();
  });

  it('every key round-trips through LMDB in its stored form; distinct keys stay distinct; ordinary keys are stored as themselves', async () => {
    const dir = tempDir();
    let store = LmdbStore.open(dir);
    store.commit(KEYS.map((k, i) => ({ db: 'meta' as const, key: `k${i}`, value: storedKeyForm(k) })));
    await store.close();
    store = LmdbStore.open(dir);
    const back = KEYS.map((_, i) => keyFromStoredForm(store.get(`meta`, `k${i}`)));
    await store.close();
    expect(back).toEqual(KEYS);
    expect(new Set(back.map((k) => JSON.stringify(k))).size).toBe(KEYS.length);
    for (const k of ['plain', '😀', '\ufffd', 42, true, null]) expect(storedKeyForm(k)).toBe(k);
    const obj = { k: 'ok' };
    expect(storedKeyForm(obj)).toBe(obj);
  });

  it('event data: marked at the door only when it holds one; stored as JSON text and marked again when read back', async () => {
    const events = [{ k: '\ud800', n: 1 }, { k: 'fine', emoji: '😀' }, { ['\udc00']: 1 }, { nested: [{ s: 'x\udbff' }] }];
    const text = JSON.stringify(events);
    expect(mayHoldLoneSurrogate(text)).toBe(true);
    expect(mayHoldLoneSurrogate(JSON.stringify([{ k: 'fine', emoji: '😀' }]))).toBe(false);
    markLoneSurrogates(text, events);
    expect(events.map((e) => typeof storedDataForm(e))).toEqual(['string', 'object', 'string', 'string']);
    expect(holdsLoneSurrogate(events[1])).toBe(false);
    const dir = tempDir();
    let store = LmdbStore.open(dir);
    store.commit(events.map((e, i) => ({ db: 'meta' as const, key: `e${i}`, value: storedDataForm(e) })));
    await store.close();
    store = LmdbStore.open(dir);
    const back = events.map((_, i) => dataFromStoredForm(store.get<object>('meta', `e${i}`)!));
    await store.close();
    expect(back).toEqual(events);
    // Read back, it is stored in the same form again.
    expect(typeof storedDataForm(back[0]!)).toBe('string');
    expect(typeof storedDataForm(back[1]!)).toBe('object');
  });
});
