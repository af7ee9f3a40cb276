// A complete, realistic alert record (language §9) for sink and dispatcher tests.
// Each call returns a fresh object with a unique id unless `overrides.id` is given.

import { randomBytes } from 'node:crypto';
import type { AlertRecord } from '../../src/core/alert.js';

export function sampleAlert(overrides: Partial<AlertRecord> = {}): AlertRecord {
  return {
    id: `a-${randomBytes(8).toString('hex')}`,
    kind: 'match',
    rule: 'card_testing',
    version: 3,
    key: 'c123',
    severity: 'high',
    message: 'Card c123: 3 small charges, then 900 at shop-b',
    time: '2026-11-20T10:00:07.000Z',
    detectedAt: '2026-11-20T10:00:07.120Z',
    events: {
      small: [
        { card_id: 'c123', amount: 1, merchant: 'shop-a', ts: '2026-11-20T10:00:01Z' },
        { card_id: 'c123', amount: 2, merchant: 'shop-a', ts: '2026-11-20T10:00:03Z' },
        { card_id: 'c123', amount: 3, merchant: 'shop-a', ts: '2026-11-20T10:00:05Z' },
      ],
      big: [{ card_id: 'c123', amount: 900, merchant: 'shop-b', ts: '2026-11-20T10:00:07Z' }],
    },
    ...overrides,
  };
}
