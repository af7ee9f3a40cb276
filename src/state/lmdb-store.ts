// The LMDB state store (service.md §4). One environment, one named database per kind of state;
// every write goes through `commit(ops)`, a single LMDB transaction, so what a group commit holds
// survives a crash whole or not at all. Values use lmdb-js's msgpack encoding; keys are arrays
// (ordered-binary), so range reads come back in key order.
//
// Layout (database: key → value):
//   meta:     'format' → 1, 'seq' → next event sequence number, 'alertSeq' → next outbox number,
//             ['ruleCounters', rule] → the rule's counters (events, matches, timeouts, …)
//   rules:    rule name → StoredRule
//   keys:     [rule, key as JSON] → EncodedKeyState        (partial matches of one (rule, key))
//   buffer:   [rule, seq] → EncodedEvent                     (events waiting for the watermark)
//   throttle: rule → [throttle key JSON, sent times][]
//   streams:  stream name → StoredStream
//   outbox:   alert seq → OutboxEntry
//   alertIds: alert id → alert seq
//   unfinished: alert seq → 1                                (outbox entries with a delivery not final)
//   late:     [stream, seq] → LateEntry
//   idem:     Idempotency-Key → { answer, expiresAt }

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';

export const STORE_FORMAT = 1;

export interface StoredRule {
  name: string;
  version: number;
  origin: 'file' | 'api';
  file: string | null;
  text: string;
  fingerprint: string;
  updatedAt: string;
}

export interface StoredStream {
  v: 1;
  maxTime: number | null;
  watermark: number | null;
  lastArrival: number | null;
  accepted: number;
  late: number;
  rejected: number;
  /** Absent in records written before the limits existed. */
  tooLarge?: number;
  tooFarAhead?: number;
}

export type DbName = 'meta' | 'rules' | 'keys' | 'buffer' | 'throttle' | 'streams' | 'outbox' | 'alertIds' | 'late' | 'idem' | 'unfinished';

/** One write of a commit: a put, or a remove when `value` is undefined. */
export interface Op {
  db: DbName;
  key: unknown;
  value?: unknown;
}

/**
 * A key value as an LMDB key part. LMDB keys must stay under ~2 KB: a longer key value is
 * stored under the SHA-256 of its JSON (the value itself is kept inside the record).
 */
export function keyJson(key: unknown): string {
  const s = JSON.stringify(key);
  return s.length <= 1500 ? s : `#sha256:${createHash('sha256').update(s).digest('hex')}`;
}

export class LmdbStore {
  readonly root: RootDatabase;
  readonly dbs: Record<DbName, Database>;

  private constructor(
    readonly path: string,
    root: RootDatabase,
  ) {
    this.root = root;
    // Shared msgpack structures: each record shape is written once per database instead of in
    // every value, which makes encoding and decoding (restarts above all) several times cheaper.
    const db = (name: DbName) => root.openDB({ name, encoding: 'msgpack', sharedStructuresKey: Symbol.for('vigil.structures') });
    this.dbs = {
      meta: db('meta'),
      rules: db('rules'),
      keys: db('keys'),
      buffer: db('buffer'),
      throttle: db('throttle'),
      streams: db('streams'),
      outbox: db('outbox'),
      alertIds: db('alertIds'),
      late: db('late'),
      idem: db('idem'),
      unfinished: db('unfinished'),
    };
  }

  static open(path: string): LmdbStore {
    if (!existsSync(path)) mkdirSync(path, { recursive: true });
    const root = open({ path, maxDbs: 16, mapSize: 2 ** 34, compression: false });
    const store = new LmdbStore(path, root);
    const format = store.dbs.meta.get('format') as number | undefined;
    if (format === undefined) store.dbs.meta.putSync('format', STORE_FORMAT);
    else if (format > STORE_FORMAT) throw new Error(`${path} holds state format ${format}; this release reads up to ${STORE_FORMAT}`);
    return store;
  }

  /**
   * Applies every op in one synchronous transaction, durable when it returns. Synchronous on
   * purpose: a synced LMDB commit takes a fraction of a millisecond here, while an asynchronous
   * one needs the event loop twice to finish — and a flood of incoming MQTT packets (handled in
   * process.nextTick chains) can keep the loop from getting there for seconds.
   */
  commit(ops: Op[]): void {
    if (ops.length === 0) return;
    this.root.transactionSync(() => {
      for (const op of ops) {
        const db = this.dbs[op.db];
        if (op.value === undefined) db.removeSync(op.key as never);
        else db.putSync(op.key as never, op.value);
      }
    });
  }

  /**
   * Resolves once every commit so far is flushed to disk. LMDB (overlapping sync, lmdb-js's
   * default on Linux) makes a commit visible and safe from a process crash at once, and
   * fsyncs it in the background; what is acknowledged to a client waits for this.
   */
  flushed(): Promise<void> {
    return Promise.resolve(this.root.flushed as unknown as Promise<void>).then(() => undefined);
  }

  get<T>(db: DbName, key: unknown): T | undefined {
    return this.dbs[db].get(key as never) as T | undefined;
  }

  /** Entries in key order (or reverse), optionally within [start, end). */
  range<T>(db: DbName, options: { start?: unknown; end?: unknown; reverse?: boolean; limit?: number } = {}): Iterable<{ key: unknown; value: T }> {
    return this.dbs[db].getRange(options as never) as unknown as Iterable<{ key: unknown; value: T }>;
  }

  /** Bytes the state takes on disk. */
  sizeBytes(): number {
    try {
      return statSync(join(this.path, 'data.mdb')).size;
    } catch {
      return 0;
    }
  }

  /** A consistent copy of the whole state (LMDB's own copy of a read snapshot). */
  async backup(target: string): Promise<void> {
    mkdirSync(target, { recursive: true });
    await this.root.backup(target, true);
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
