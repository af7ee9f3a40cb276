// Scalar functions of language §7, including the zone-aware ones.
import { describe, expect, it } from 'vitest';
import { DateTime } from 'luxon';
import { FUNCTIONS, timeFunctions, zoneFor } from '../../src/compiler/functions.js';
import { value } from './helpers.js';

describe('numbers and strings', () => {
  it.each<[string, unknown]>([
    ['abs(-3)', 3],
    ['abs(x)', 2.5],
    ['abs("3")', null],
    ['abs(missing)', null],
    ['round(2.5)', 3],
    ['round(-2.5)', -3],
    ['round(2.4)', 2],
    ['round(-0.4)', 0],
    ['round("1")', null],
    ['floor(2.7)', 2],
    ['floor(-2.1)', -3],
    ['ceil(2.1)', 3],
    ['ceil(-0.5)', 0],
    ['floor(s)', null],
    ['len("abc")', 3],
    ['len("😀a")', 2],
    ['len("")', 0],
    ['len(list)', 3],
    ['len(obj)', 2],
    ['len(12)', null],
    ['len(missing)', null],
    ['lower("AbC")', 'abc'],
    ['upper(s)', 'HELLO'],
    ['lower(1)', null],
    ['exists(s)', true],
    ['exists(missing)', false],
    ['exists(nul)', false],
    ['exists(0)', true],
    ['exists(false)', true],
    ['coalesce(missing, nul, s)', 'hello'],
    ['coalesce(missing, 0, 1)', 0],
    ['coalesce(missing)', null],
    ['coalesce(null, "x")', 'x'],
    ['min(1, 2)', 1],
    ['max(1, 2)', 2],
    ['min("b", "a")', 'a'],
    ['max(x, 1)', 1],
    ['min(x, 1)', -2.5],
    ['min(1, "a")', null],
    ['min(1, missing)', null],
    ['min(list)', 1],
    ['max(list)', 3],
    ['sum(list)', 6],
    ['avg(list)', 2],
    ['sum(s)', null],
    ['sum([])', null],
    ['sum(["a", 1])', 1],
    ['first(list)', 1],
    ['last(list)', 3],
    ['first([])', null],
    ['first(s)', null],
  ])('%s → %j', (src, want) => {
    expect(value(src, { x: -2.5, s: 'hello', list: [1, 2, 3], obj: { a: 1, b: 2 }, nul: null })).toEqual(want);
  });
});

describe('time(), stream(), topic()', () => {
  it('reads the candidate', () => {
    expect(value('time()', {}, { time: 1234 })).toBe(1234);
    expect(value('stream()', {}, { stream: 'logins' })).toBe('logins');
    expect(value('topic()', {}, { topic: 'a/b/c' })).toBe('a/b/c');
    expect(value('topic(0)', {}, { topic: 'a/b/c' })).toBe('a');
    expect(value('topic(2)', {}, { topic: 'a/b/c' })).toBe('c');
    expect(value('topic(3)', {}, { topic: 'a/b/c' })).toBeNull();
    expect(value('topic("x")', {}, { topic: 'a/b/c' })).toBeNull();
    expect(value('topic()', {}, { topic: undefined })).toBeNull();
    expect(value('topic(0)', {}, { topic: undefined })).toBeNull();
  });
});

describe('zone-aware time parts', () => {
  // Europe/Berlin: CET (+01:00) → CEST (+02:00) at 2026-03-29T01:00:00Z; back at 2026-10-25T01:00:00Z.
  const springUtc = Date.UTC(2026, 2, 29, 1, 0, 0);
  const fallUtc = Date.UTC(2026, 9, 25, 1, 0, 0);

  it('hour across the spring-forward change', () => {
    expect(value(`hour(${springUtc - 1}, "Europe/Berlin")`)).toBe(1); // 01:59:59.999 CET
    expect(value(`hour(${springUtc}, "Europe/Berlin")`)).toBe(3); // 03:00 CEST, 02:xx never happens
    expect(value(`minute(${springUtc - 60_000}, "Europe/Berlin")`)).toBe(59);
    expect(value(`hour(${springUtc})`)).toBe(1); // UTC by default
    expect(value(`hour(${springUtc}, "UTC")`)).toBe(1);
  });

  it('hour across the fall-back change (02:xx happens twice)', () => {
    expect(value(`hour(${fallUtc - 30 * 60_000}, "Europe/Berlin")`)).toBe(2); // 02:30 CEST
    expect(value(`hour(${fallUtc + 30 * 60_000}, "Europe/Berlin")`)).toBe(2); // 02:30 CET
    expect(value(`hour(${fallUtc + 60 * 60_000}, "Europe/Berlin")`)).toBe(3);
  });

  it('agrees with luxon hour by hour over a year in several zones', () => {
    const start = Date.UTC(2026, 0, 1);
    for (const zone of ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Asia/Kathmandu']) {
      for (let t = start; t < start + 366 * 86_400_000; t += 3_600_000 + 7 * 60_000) {
        const dt = DateTime.fromMillis(t, { zone });
        expect(timeFunctions.hour(t, zone)).toBe(dt.hour);
        expect(timeFunctions.minute(t, zone)).toBe(dt.minute);
        expect(timeFunctions.weekday(t, zone)).toBe(dt.weekday);
        expect(timeFunctions.date(t, zone)).toBe(dt.toFormat('yyyy-LL-dd'));
      }
    }
  });

  it('weekday is ISO (1 = Monday … 7 = Sunday) and local', () => {
    // 2026-11-22 is a Sunday. 23:30Z on Sunday is Monday 00:30 in Berlin.
    const sun = Date.UTC(2026, 10, 22, 23, 30);
    expect(value(`weekday(${sun})`)).toBe(7);
    expect(value(`weekday(${sun}, "Europe/Berlin")`)).toBe(1);
    expect(value(`weekday(${Date.UTC(1970, 0, 1)})`)).toBe(4);
    expect(value(`weekday(${Date.UTC(1969, 11, 31)})`)).toBe(3);
  });

  it('date is yyyy-LL-dd in the zone', () => {
    const t = Date.UTC(2026, 10, 22, 23, 30);
    expect(value(`date(${t})`)).toBe('2026-11-22');
    expect(value(`date(${t}, "Europe/Berlin")`)).toBe('2026-11-23');
    expect(value(`date(${t}, "America/Los_Angeles")`)).toBe('2026-11-22');
    expect(value(`date(${Date.UTC(2024, 1, 29)})`)).toBe('2024-02-29');
    expect(value(`date(-1)`)).toBe('1969-12-31');
  });

  it('format uses luxon tokens', () => {
    const t = Date.UTC(2026, 10, 20, 10, 0, 7);
    expect(value(`format(${t}, "yyyy-LL-dd HH:mm")`)).toBe('2026-11-20 10:00');
    expect(value(`format(${t}, "yyyy-LL-dd HH:mm:ss ZZ", "Europe/Berlin")`)).toBe('2026-11-20 11:00:07 +01:00');
    expect(value(`format(ts, "HH:mm", "Asia/Tokyo")`, { ts: t })).toBe('19:00');
    expect(value(`format(ts, "HH:mm")`, { ts: '2026-11-20T10:00:07+02:00' })).toBe('08:00');
    expect(value(`format(ts, 5)`, { ts: t })).toBeNull();
  });

  it('accepts ISO text with a zone as the time; null for anything else', () => {
    expect(value('hour(ts, "Europe/Berlin")', { ts: '2026-11-20T10:00:00Z' })).toBe(11);
    expect(value('hour(ts)', { ts: '2026-11-20T10:00:00' })).toBeNull(); // no zone
    expect(value('hour(ts)', { ts: 'soon' })).toBeNull();
    expect(value('hour(missing)')).toBeNull();
    expect(value('hour(ts)', { ts: true })).toBeNull();
    expect(value('hour(1e300)')).toBeNull();
  });

  it('a bad zone gives null; host-dependent zones are refused', () => {
    expect(value('hour(0, "Mars/Olympus")')).toBeNull();
    expect(value('hour(0, tz)', { tz: 3 })).toBeNull();
    expect(value('hour(0, tz)', {})).toBeNull();
    expect(value('date(0, "local")')).toBeNull();
    expect(value('weekday(0, "system")')).toBeNull();
    expect(value('format(0, "HH", "nope")')).toBeNull();
    expect(value('hour(0, "UTC+2")')).toBe(2);
    expect(zoneFor('Mars/Olympus')).toBeNull();
  });
});

describe('the table', () => {
  it('lists every function of §7 and env', () => {
    for (const n of [
      'abs', 'round', 'floor', 'ceil', 'len', 'lower', 'upper', 'exists', 'coalesce', 'min', 'max', 'sum', 'avg',
      'count', 'first', 'last', 'time', 'stream', 'topic', 'key', 'hour', 'minute', 'weekday', 'date', 'format', 'env',
    ]) {
      expect(FUNCTIONS.has(n), n).toBe(true);
    }
  });
});
