// The service core (service.md §2, §4): one Engine, made durable by the LMDB state store.
//
// Group commits: events are applied to the engine at once (synchronously, no await per event);
// what they changed — the dirty (rule, key) states, buffered events, stream bookkeeping, new
// alerts (the outbox), late events, Idempotency-Key answers — is written in ONE transaction
// every `checkpointMs`, and only then are the ingest calls answered. A crash loses exactly the
// unanswered calls; clients resend them (with the same Idempotency-Key) and their effect
// happens once. A failed commit is fatal: the process stops rather than answer for state it
// could not make durable (a restart resumes from the last commit).
//
// Rules: file rules (rules directory, hot-loaded on change) and API rules (PUT /rules/:id) are
// compiled together; every change is reconciled against the running engine: a rule whose
// pattern is unchanged keeps its partial matches, a changed pattern starts empty (the dropped
// partial matches are counted), a removed rule's state is deleted.

import { createHash } from 'node:crypto';
import { WebhookAddressPolicy } from '../core/webhook-address-policy.js';
import { readdirSync, readFileSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { AlertRecord } from '../core/alert.js';
import { diagnostic, type Diagnostic } from '../core/diagnostics.js';
import type { Json, StreamEvent } from '../core/event.js';
import { compileSources, type CompiledProgram, type CompiledRule, type SourceFile } from '../compiler/rule.js';
import { parseProgram } from '../dsl/parser.js';
import { API_FILE_PREFIX, checkRuleText, serviceTestFileReader, STREAM_FILE_PREFIX, syntheticError, type RuleSources } from './rule-text.js';
import { WorkPool } from './work-pool.js';
import { DEFAULT_TEST_TIME_LIMIT_MS, testGate } from '../cli/rule-tests.js';
import { FINAL } from '../nfa/graph.js';
import { Engine, type StreamRuntime } from '../runtime/engine.js';
import { deliveryName, renderDeliveries } from '../runtime/deliveries.js';
import { newJournal, type RuleRuntime } from '../runtime/rule-runtime.js';
import type { KeyState } from '../nfa/nfa.js';
import { dataFromStoredForm, isMarked, JSON_FORM_MARKER, mark, storedDataForm, storedKeyForm } from '../core/lone-surrogates.js';
import { decodeEvent, decodeKeyState, encodeEvent, encodeKeyState, type EncodedEvent, type EncodedKeyState, type EncodedKeyStateV2 } from '../state/codec.js';
import { keyJson, LmdbStore, type Op, type StoredRule, type StoredStream } from '../state/lmdb-store.js';
import {
  ServiceError,
  type AlertQuery,
  type BacktestInput,
  type BacktestResult,
  type DeliveryState,
  type IngestAnswer,
  type IngestOptions,
  type LateEntry,
  type OutboxEntry,
  type PutRuleResult,
  type PutStreamResult,
  type StreamDetail,
  type RuleDetail,
  type RuleInfo,
  type ServiceOptions,
  type StreamInfo,
  type SummaryStep,
  unfinishedState,
} from './types.js';

/** Largest event by default: 1 MiB, as Kafka's default message limit. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
/** How far ahead of the wall clock an event's time may be by default: 1 h. */
export const DEFAULT_MAX_LEAD_MS = 3_600_000;
/** Waiting answers past which a commit starts at once (see afterCommit). */
const EAGER_COMMIT_WAITERS = 1000;

/** The outbox's running totals, stored with every commit (meta 'outbox') so a start need not scan the outbox. */
interface OutboxStats {
  count: number;
  bytes: number;
  oldest: number;
  /** Entries with a delivery not final, and their bytes. */
  backlogCount: number;
  backlogBytes: number;
  /** Deliveries not final, per sink kind (vigil_outbox_backlog). */
  backlog: Record<string, number>;
}

/** Why a delivery was given up without being delivered (vigil_deliveries_given_up_total{reason}). */
export type GiveUpReason = 'max_age' | 'backlog_full' | 'outbox_full';

/** What the core knows of a loaded rule besides its compiled form (stored as StoredRule). */
type RuleMeta = Omit<StoredRule, 'name'>;

export class DurableEngine {
  readonly engine: Engine;
  readonly store: LmdbStore;
  readonly logger: Logger;
  private readonly now: () => number;
  private readonly checkpointMs: number;
  private readonly idempotencyTtlMs: number;
  private readonly lateKeep: number;
  private readonly lateMaxBytes: number;
  private readonly outboxKeep: number;
  private readonly webhookPolicy: WebhookAddressPolicy;
  private readonly maxEventBytes: number;
  private readonly outboxMaxBytes: number;
  private readonly pageMaxBytes: number;
  private readonly idemSweepBatch: number;
  private readonly savepointsKeep: number;

  /** Rules directory files (path → text) and API rule texts (name → text). */
  private readonly fileSources = new Map<string, string>();
  private readonly apiSources = new Map<string, string>();
  /** API streams (PUT /streams/:name): name → declaration text (stored in meta 'apiStreams'). */
  private readonly apiStreams = new Map<string, { text: string; updatedAt: string }>();
  /** File rules refused because an API rule has their name: file → the error (GET /rules shows them). */
  private readonly refusedRules = new Map<string, { name: string; error: Diagnostic }>();
  private program: CompiledProgram;
  /** Work threads of validate and backtest runs. */
  readonly work: WorkPool;
  private readonly ruleMeta = new Map<string, RuleMeta>();
  /** Partial matches dropped because a rule's pattern changed, per rule (GET /rules counters). */
  readonly droppedByChange = new Map<string, number>();
  /** Per rule, its version and the sum of its counters when they were last written (see collectRuleCounters). */
  private readonly countersWritten = new Map<string, { version: number; sum: number }>();
  /** A rules file whose latest text did not compile: its errors (the old version keeps running). */
  private readonly fileErrors = new Map<string, Diagnostic[]>();
  /** API rule → the failing tests of its last refused PUT (shown on the status page until a PUT loads). */
  private readonly apiRefusals = new Map<string, Diagnostic[]>();

  // What the next commit writes.
  private pendingOps: Op[] = [];
  private pendingAlerts: OutboxEntry[] = [];
  private pendingLate: LateEntry[] = [];
  private readonly dirtyStreams = new Set<StreamRuntime>();
  private readonly outboxDirty = new Map<number, OutboxEntry>();
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private commitTimer: NodeJS.Timeout | null = null;
  private readonly inflightIdem = new Map<string, Promise<IngestAnswer>>();
  private alertSeq = 0;
  /** Per stream, the late entries stored (oldest first) and their bytes. */
  private readonly lateKept = new Map<string, { seqs: number[]; bytes: number[]; total: number }>();
  private outboxCount = 0;
  private outboxOldest = 0;
  private outboxBytes = 0;
  private backlogCount = 0;
  private backlogBytes = 0;
  /** Deliveries not final per sink kind, kept incrementally: the backlog gauge is O(1). */
  private readonly backlog = new Map<string, number>();
  /** Where the next idempotency sweep starts (undefined: at the beginning). */
  private idemCursor: string | undefined = undefined;
  /** Deliveries given up without being delivered, by `sink reason` (since the start). */
  readonly givenUp = new Map<string, number>();
  /** Entries removed by a bound (since the start): vigil_store_pruned_total{store}. */
  readonly pruned = { idempotency: 0, late: 0, outbox: 0, savepoints: 0 };
  private readonly droppedListeners: ((dropped: { seq: number; name: string }[]) => void)[] = [];
  private readonly requeueListeners: ((entries: OutboxEntry[]) => void)[] = [];

  private readonly commitListeners: ((entries: OutboxEntry[]) => void)[] = [];
  private readonly ruleChangeListeners: ((changes: Map<string, { kept: boolean; dropped: number; created: boolean }>) => void)[] = [];
  private readonly ruleErrorListeners: ((errors: Diagnostic[]) => void)[] = [];
  private readonly checkpointListeners: ((seconds: number, ok: boolean) => void)[] = [];
  private ticker: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private open = false;

  private constructor(
    readonly options: ServiceOptions,
    store: LmdbStore,
  ) {
    this.store = store;
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.now = options.now ?? Date.now;
    this.checkpointMs = options.checkpointMs ?? 5;
    this.idempotencyTtlMs = options.idempotencyTtlMs ?? 24 * 3600_000;
    this.lateKeep = options.lateKeepPerStream ?? 10_000;
    this.lateMaxBytes = options.lateMaxBytesPerStream ?? 64 * 1024 * 1024;
    this.outboxKeep = options.outboxKeep ?? 100_000;
    this.webhookPolicy = options.webhookPolicy ?? new WebhookAddressPolicy();
    this.work = new WorkPool(options.work, this.logger, options.onWork);
    this.maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.outboxMaxBytes = options.outboxMaxBytes ?? 256 * 1024 * 1024;
    this.pageMaxBytes = options.pageMaxBytes ?? 8 * 1024 * 1024;
    this.idemSweepBatch = Math.max(1, options.idempotencySweepBatch ?? 1000);
    this.savepointsKeep = Math.max(1, options.savepointsKeep ?? 5);
    this.engine = new Engine({
      now: this.now,
      maxLeadMs: options.maxLeadMs ?? DEFAULT_MAX_LEAD_MS,
      output: {
        alert: (record, alert, _rule, scope) => {
          const deliveries = renderDeliveries(record, alert, scope);
          const entry: OutboxEntry = { seq: this.alertSeq++, alert: record, deliveries: {}, delivery: {}, raisedAt: this.now() };
          deliveries.forEach((d, i) => {
            const name = deliveryName(d, i);
            entry.deliveries[name] = d;
            entry.delivery[name] = { sink: d.kind, state: 'pending', attempts: 0, lastError: null, nextAttemptAt: null, deliveredAt: null };
          });
          entry.bytes = jsonBytes(entry);
          this.pendingAlerts.push(entry);
        },
        late: (stream, event) => {
          // Stored as JSON text when it holds a lone surrogate (lossless; see core/lone-surrogates.ts).
          const entry: LateEntry = { seq: event.seq, stream, time: event.time, arrivalTime: new Date(this.now()).toISOString(), event: storedDataForm(event.data) };
          entry.bytes = jsonBytes(event.data) + 100;
          this.pendingLate.push(entry);
          this.noteLate(stream, event.time);
        },
      },
    });
    this.program = { rules: [], streams: new Map(), diagnostics: [], sources: new Map() };
  }

  /** Opens (or creates) the state in `dataDir`, loads the rules and resumes every partial match. */
  static async open(options: ServiceOptions): Promise<DurableEngine> {
    const store = LmdbStore.open(options.dataDir);
    const core = new DurableEngine(options, store);
    await core.recover();
    return core;
  }

  isReady(): boolean {
    return this.open;
  }

  // ------------------------------------------------------------ recovery

  private async recover(): Promise<void> {
    const started = Date.now();
    const store = this.store;
    this.engine.seq = store.get<number>('meta', 'seq') ?? 0;
    this.alertSeq = store.get<number>('meta', 'alertSeq') ?? 0;
    const stored = new Map<string, StoredRule>();
    for (const { value } of store.range<StoredRule>('rules')) stored.set(value.name, value);
    for (const r of stored.values()) if (r.origin === 'api') this.apiSources.set(r.name, r.text);
    for (const st of store.get<StoredApiStream[]>('meta', 'apiStreams') ?? []) this.apiStreams.set(st.name, { text: st.text, updatedAt: st.updatedAt });
    if (this.options.rulesDir) for (const [f, t] of this.readRulesDir()) this.fileSources.set(f, t);

    // Files that do not compile are left out (with their errors) so the rest can run.
    let program = this.compile();
    for (let guard = 0; guard < 100 && hasErrors(program); guard++) {
      const bad = program.diagnostics.find((d) => d.severity === 'error')!;
      const clash = this.ruleNameClash(bad, this.fileSources);
      if (clash) {
        this.refuseFileRule(clash);
        this.fileSources.delete(clash.error.file);
      } else if (bad.file.startsWith(STREAM_FILE_PREFIX)) {
        const name = bad.file.slice(STREAM_FILE_PREFIX.length);
        this.logger.error({ stream: name, error: bad.message }, 'stored API stream no longer compiles; it is not loaded');
        this.apiStreams.delete(name);
      } else if (bad.file.startsWith(API_FILE_PREFIX)) {
        const name = bad.file.slice(API_FILE_PREFIX.length);
        this.logger.error({ rule: name, error: bad.message }, 'stored API rule no longer compiles; it is not loaded');
        this.apiSources.delete(name);
      } else {
        this.fileErrors.set(bad.file, program.diagnostics.filter((d) => d.file === bad.file));
        this.logger.error({ file: bad.file, line: bad.line, col: bad.col, error: bad.message }, 'rules file does not compile; it is not loaded');
        this.fileSources.delete(bad.file);
      }
      program = this.compile();
    }
    this.program = program;

    for (const s of program.streams.values()) {
      const st = this.engine.setStream(s);
      const saved = store.get<StoredStream>('streams', s.name);
      if (saved) {
        st.maxTime = saved.maxTime ?? -Infinity;
        st.watermark = saved.watermark ?? -Infinity;
        st.lastArrival = saved.lastArrival ?? -Infinity;
        st.counters.accepted = saved.accepted;
        st.counters.late = saved.late;
        st.counters.rejected = saved.rejected;
        st.counters.tooLarge = saved.tooLarge ?? 0;
        st.counters.tooFarAhead = saved.tooFarAhead ?? 0;
        this.healFutureTime(st);
      }
    }
    let restoredKeys = 0;
    // Records of streams that were removed while the service was down (or by an older release).
    for (const { key } of store.range('streams')) {
      const name = key as string;
      if (this.engine.streams.has(name)) continue;
      this.pendingOps.push({ db: 'streams', key: name });
      for (const { key: lateKey } of store.range('late', { start: [name], end: [name + '\u0000'] })) this.pendingOps.push({ db: 'late', key: lateKey });
      this.logger.info({ stream: name }, 'stored record of a stream that is gone: deleted');
    }
    for (const rule of program.rules) {
      const before = stored.get(rule.name);
      const origin = this.originOf(rule);
      const text = origin.origin === 'api' ? this.apiSources.get(rule.name)! : rule.text;
      const sameText = before !== undefined && before.text === text;
      rule.version = before ? (sameText ? before.version : before.version + 1) : 1;
      const rr = this.engine.setRule(rule);
      if (before && before.fingerprint === rule.fingerprint) restoredKeys += this.restoreRuleState(rr);
      else if (before) this.dropStoredState(rule.name);
      rr.journal = newJournal();
      this.restoreRuleCounters(rr);
      this.ruleMeta.set(rule.name, { version: rule.version, ...origin, text, fingerprint: rule.fingerprint, updatedAt: sameText ? before!.updatedAt : new Date(this.now()).toISOString() });
      this.logger.info({ rule: rule.name, version: rule.version, origin: origin.origin, file: origin.file, restored: before !== undefined }, 'rule loaded');
      if (!sameText || before?.fingerprint !== rule.fingerprint) this.pendingOps.push({ db: 'rules', key: rule.name, value: this.storedRule(rule.name) });
    }
    for (const name of stored.keys()) {
      if (!this.engine.rules.has(name)) {
        this.dropStoredState(name);
        this.dropRuleCounters(name);
        this.pendingOps.push({ db: 'rules', key: name });
      }
    }
    for (const { key, value } of store.range<LateEntry>('late')) {
      const [stream, seq] = key as [string, number];
      if (!this.engine.streams.has(stream)) continue; // deleted with its stream (above)
      this.keepLate(stream, seq, value.bytes ?? jsonBytes(value.event) + 100);
    }
    this.recoverOutboxStats();
    // Timers that came due while the service was down fire with the next watermark advance.
    this.open = true;
    this.startTicker();
    if (this.options.rulesDir && this.options.watchRules !== false) this.watchRulesDir();
    await this.commitNow();
    this.logger.info({ rules: this.engine.rules.size, streams: this.engine.streams.size, keys: restoredKeys, ms: Date.now() - started }, 'state recovered');
  }

  /**
   * A stored stream time further ahead of the wall clock than the stream's maximum lead (written
   * before the lead was checked, or the clock went back) would keep every later event late:
   * it is brought back to the wall clock, with a warning. Timers it made due have fired already.
   */
  private healFutureTime(st: StreamRuntime): void {
    if (st.compiled.timeOf === null) return;
    const now = this.now();
    const lead = st.compiled.maxLeadMs ?? this.engine.maxLeadMs ?? Infinity;
    if (!(st.maxTime - now > lead)) return;
    this.logger.warn(
      { stream: st.compiled.name, maxTime: st.maxTime, watermark: finite(st.watermark), now, maxLeadMs: lead },
      'stored stream time is further ahead of the wall clock than the maximum lead: brought back to the wall clock',
    );
    st.maxTime = now;
    st.watermark = Math.min(st.watermark, now - st.compiled.watermarkMs);
    this.dirtyStreams.add(st);
  }

  /**
   * The outbox totals: as stored with the last commit, or (state written before they were
   * stored) from one scan of the outbox, which also builds the index of unfinished entries.
   */
  private recoverOutboxStats(): void {
    const stats = this.store.get<OutboxStats>('meta', 'outbox');
    if (stats) {
      this.outboxCount = stats.count;
      this.outboxBytes = stats.bytes;
      this.outboxOldest = stats.oldest;
      this.backlogCount = stats.backlogCount;
      this.backlogBytes = stats.backlogBytes;
      for (const [k, n] of Object.entries(stats.backlog)) this.backlog.set(k, n);
      return;
    }
    for (const { key, value: storedValue } of this.store.range<OutboxEntry | string>('outbox')) {
      const value = outboxFromStoredForm(storedValue)!;
      if (this.outboxCount === 0) this.outboxOldest = key as number;
      this.outboxCount++;
      const bytes = value.bytes ?? jsonBytes(value);
      if (value.bytes === undefined) {
        // Written before entries carried their size: stored once with it, so that what pruning
        // subtracts later is what was added here.
        value.bytes = bytes;
        this.pendingOps.push({ db: 'outbox', key: value.seq, value: storedOutboxForm(value) });
      }
      this.outboxBytes += bytes;
      let open = false;
      for (const d of Object.values(value.delivery)) {
        if (!unfinishedState(d.state)) continue;
        open = true;
        this.backlog.set(d.sink, (this.backlog.get(d.sink) ?? 0) + 1);
      }
      if (open) {
        this.backlogCount++;
        this.backlogBytes += bytes;
        this.pendingOps.push({ db: 'unfinished', key: value.seq, value: 1 });
      }
    }
  }

  private restoreRuleState(rr: RuleRuntime): number {
    const name = rr.rule.name;
    const states: KeyState[] = [];
    for (const { value } of this.store.range<EncodedKeyState | EncodedKeyStateV2>('keys', { start: [name], end: [name + '\u0000'] })) {
      states.push(decodeKeyState(value, rr.rule.graph));
    }
    const n = rr.restoreKeys(states);
    const buffered: StreamEvent[] = [];
    for (const { value } of this.store.range<EncodedEvent>('buffer', { start: [name], end: [name + '\u0000'] })) buffered.push(decodeEvent(value));
    rr.restoreBuffer(buffered);
    const throttle = this.store.get<[string, number[]][]>('throttle', name);
    if (throttle) rr.restoreThrottle(throttle);
    return n;
  }

  /**
   * Puts back a rule's counters as of the last commit: those of the same version (a new version
   * starts from zero, as a swap while running does), and the partial matches dropped by changes.
   */
  private restoreRuleCounters(rr: RuleRuntime): void {
    const name = rr.rule.name;
    const saved = this.store.get<StoredRuleCounters>('meta', ruleCountersKey(name));
    if (saved === undefined) return;
    if (saved.version === rr.rule.version) {
      const c = rr.counters;
      for (const k of Object.keys(c) as (keyof RuleRuntime['counters'])[]) if (typeof saved.counters[k] === 'number') c[k] = saved.counters[k];
    }
    if (saved.droppedByChange > 0) this.droppedByChange.set(name, saved.droppedByChange);
    this.countersWritten.set(name, { version: saved.version, sum: saved.version === rr.rule.version ? counterSum(rr, saved.droppedByChange) : -1 });
  }

  /** Queues the removal of a removed rule's counters (a rule of that name later starts from zero). */
  private dropRuleCounters(name: string): void {
    this.countersWritten.delete(name);
    this.droppedByChange.delete(name);
    this.pendingOps.push({ db: 'meta', key: ruleCountersKey(name) });
  }

  /** Writes the counters of every rule whose counters changed since they were last written. */
  private collectRuleCounters(ops: Op[]): void {
    for (const rr of this.engine.rules.values()) {
      const name = rr.rule.name;
      const dropped = this.droppedByChange.get(name) ?? 0;
      const sum = counterSum(rr, dropped);
      const written = this.countersWritten.get(name);
      if (written !== undefined && written.version === rr.rule.version && written.sum === sum) continue;
      this.countersWritten.set(name, { version: rr.rule.version, sum });
      const value: StoredRuleCounters = { v: 1, version: rr.rule.version, counters: { ...rr.counters }, droppedByChange: dropped };
      ops.push({ db: 'meta', key: ruleCountersKey(name), value });
    }
  }

  /** Queues the removal of everything stored for a rule's state (not its outbox alerts). */
  private dropStoredState(name: string): void {
    for (const { key } of this.store.range('keys', { start: [name], end: [name + '\u0000'] })) this.pendingOps.push({ db: 'keys', key });
    for (const { key } of this.store.range('buffer', { start: [name], end: [name + '\u0000'] })) this.pendingOps.push({ db: 'buffer', key });
    this.pendingOps.push({ db: 'throttle', key: name });
  }

  // ------------------------------------------------------------ rules

  private readRulesDir(): Map<string, string> {
    const dir = this.options.rulesDir!;
    const out = new Map<string, string>();
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.vigil')).sort();
    } catch (err) {
      this.logger.warn({ dir, error: (err as Error).message }, 'rules directory cannot be read');
    }
    for (const n of names) {
      const path = join(dir, n);
      try {
        out.set(path, readFileSync(path, 'utf8'));
      } catch (err) {
        this.logger.warn({ file: path, error: (err as Error).message }, 'rules file cannot be read');
      }
    }
    return out;
  }

  private sourceList(overrides?: SourceOverrides): SourceFile[] {
    const files = overrides?.files ?? this.fileSources;
    const api = overrides?.api ?? this.apiSources;
    const streams = overrides?.streams ?? this.apiStreams;
    return [
      ...[...files].map(([file, text]) => ({ file, text })),
      ...[...api].map(([name, text]) => ({ file: API_FILE_PREFIX + name, text })),
      ...[...streams].map(([name, s]) => ({ file: STREAM_FILE_PREFIX + name, text: s.text })),
    ];
  }

  private compile(overrides?: SourceOverrides): CompiledProgram {
    return compileSources(this.sourceList(overrides), {
      env: this.options.env,
      envPrefix: this.options.envPrefix,
      webhookPolicy: this.webhookPolicy,
      configuredSinks: this.options.configuredSinks,
      tests: { maxEvents: this.options.testMaxEvents, readEventsFile: serviceTestFileReader(this.options.rulesDir) },
    });
  }

  /** The tests of `files` in `program` (hot-load gate): failing expectations per file. */
  private failingTests(program: CompiledProgram, files: Set<string>): Map<string, Diagnostic[]> {
    return testGate(program, files, this.options.testTimeLimitMs ?? DEFAULT_TEST_TIME_LIMIT_MS);
  }

  private originOf(rule: CompiledRule): { origin: 'file' | 'api'; file: string | null } {
    return rule.file.startsWith(API_FILE_PREFIX) ? { origin: 'api', file: null } : { origin: 'file', file: rule.file };
  }

  private storedRule(name: string): StoredRule {
    const m = this.ruleMeta.get(name)!;
    return { name, version: m.version, origin: m.origin, file: m.file, text: m.text, fingerprint: m.fingerprint, updatedAt: m.updatedAt };
  }

  /**
   * Swaps the running rules to those of `program`, atomically between two events (JavaScript
   * runs one thing at a time). Returns per rule what happened to its partial matches.
   */
  private reconcile(program: CompiledProgram): Map<string, { kept: boolean; dropped: number; created: boolean }> {
    const result = new Map<string, { kept: boolean; dropped: number; created: boolean }>();
    for (const s of program.streams.values()) this.engine.setStream(s);
    const names = new Set(program.rules.map((r) => r.name));
    for (const [name, rr] of [...this.engine.rules]) {
      if (names.has(name)) continue;
      this.engine.removeRule(name);
      this.dropStoredState(name);
      this.dropRuleCounters(name);
      this.ruleMeta.delete(name);
      this.pendingOps.push({ db: 'rules', key: name });
      result.set(name, { kept: false, dropped: rr.partialMatches(), created: false });
      this.logger.info({ rule: name }, 'rule removed');
    }
    for (const rule of program.rules) {
      const old = this.engine.rules.get(rule.name);
      const meta = this.ruleMeta.get(rule.name);
      const origin = this.originOf(rule);
      const text = origin.origin === 'api' ? this.apiSources.get(rule.name)! : rule.text;
      if (old && meta && meta.text === text && meta.fingerprint === rule.fingerprint && meta.origin === origin.origin) {
        rule.version = meta.version;
        continue; // unchanged
      }
      rule.version = meta ? meta.version + 1 : 1;
      const keep = old !== undefined && old.rule.fingerprint === rule.fingerprint;
      const dropped = old && !keep ? old.partialMatches() : 0;
      const rr = this.engine.setRule(rule, keep ? old : undefined);
      rr.journal = keep && old!.journal ? old!.journal : newJournal();
      if (old && !keep) {
        this.dropStoredState(rule.name);
        this.droppedByChange.set(rule.name, (this.droppedByChange.get(rule.name) ?? 0) + dropped);
      }
      this.ruleMeta.set(rule.name, { version: rule.version, ...origin, text, fingerprint: rule.fingerprint, updatedAt: new Date(this.now()).toISOString() });
      this.pendingOps.push({ db: 'rules', key: rule.name, value: this.storedRule(rule.name) });
      result.set(rule.name, { kept: keep, dropped, created: !old });
      this.logger.info({ rule: rule.name, version: rule.version, keptPartialMatches: keep, droppedPartialMatches: dropped }, old ? 'rule swapped' : 'rule loaded');
    }
    // A stream that no loaded text declares and no rule reads is gone (its MQTT sources too).
    for (const [name, st] of [...this.engine.streams]) {
      if (!program.streams.has(name) && st.rules.length === 0) this.forgetStream(name, st);
    }
    this.program = program;
    this.scheduleCommit();
    if (result.size > 0) for (const l of this.ruleChangeListeners) l(result);
    return result;
  }

  /**
   * A stream that is gone loses its stored record (watermark, counters) and its late events, so
   * that a stream declared again under the same name starts fresh.
   */
  private forgetStream(name: string, st: StreamRuntime): void {
    this.engine.streams.delete(name);
    this.dirtyStreams.delete(st);
    this.pendingLate = this.pendingLate.filter((l) => l.stream !== name);
    this.pendingOps.push({ db: 'streams', key: name });
    for (const seq of this.lateKept.get(name)?.seqs ?? []) this.pendingOps.push({ db: 'late', key: [name, seq] });
    this.lateKept.delete(name);
    this.logger.info({ stream: name }, 'stream removed: its watermark, counters and late events are deleted');
  }

  /** After rules were loaded, swapped or removed (what happened to each one's partial matches). */
  onRulesChanged(listener: (changes: Map<string, { kept: boolean; dropped: number; created: boolean }>) => void): void {
    this.ruleChangeListeners.push(listener);
  }

  /** A rule text (API or file) that was refused because it does not compile. */
  onRuleLoadError(listener: (errors: Diagnostic[]) => void): void {
    this.ruleErrorListeners.push(listener);
  }

  private ruleLoadFailed(errors: Diagnostic[]): void {
    for (const l of this.ruleErrorListeners) l(errors);
  }

  async putRule(id: string, text: string): Promise<PutRuleResult> {
    // The same check as POST /rules/validate (rule-text.ts), here on the event loop: PUT needs
    // the token, and the compiler bounds what one text can ask for.
    const check = checkRuleText(this.ruleSources(), text, id);
    if (check.fromFile) return { ok: false, status: 409, errors: check.errors };
    const program = check.program!;
    const errors = check.errors;
    if (errors.length > 0) {
      this.ruleLoadFailed(errors);
      this.logger.warn({ rule: id, errors: errors.length, first: `${errors[0]!.line}:${errors[0]!.col}: ${errors[0]!.message}` }, 'rule refused: it does not compile; the old version keeps running');
      return { ok: false, status: 400, errors };
    }
    // Tests gate the load (language §13): a failing one refuses the text, the old version runs on.
    const file = API_FILE_PREFIX + id;
    const failing = this.failingTests(program, new Set([file])).get(file);
    if (failing) {
      const shown = failing.map((d) => ({ ...d, file: 'request' }));
      this.apiRefusals.set(id, shown);
      this.ruleLoadFailed(failing);
      this.logger.warn({ rule: id, failures: failing.length, first: `${failing[0]!.line}:${failing[0]!.col}: ${failing[0]!.message}` }, 'rule refused: its tests fail; the old version keeps running');
      return { ok: false, status: 422, errors: shown };
    }
    this.apiRefusals.delete(id);
    this.apiSources.set(id, text);
    const outcome = this.reconcile(program).get(id);
    await this.afterCommit();
    return {
      ok: true,
      rule: this.getRule(id)!,
      created: outcome?.created ?? false,
      keptPartialMatches: outcome?.kept ?? true,
      droppedPartialMatches: outcome?.dropped ?? 0,
      warnings: check.warnings,
    };
  }

  /**
   * What `PUT /rules/:id` of the text would answer (without `id`: the PUT under the name of the
   * one rule it declares), computed in a work thread with bounded time and memory.
   */
  async validateRule(text: string, id?: string): Promise<{ id: string | null; errors: Diagnostic[]; warnings: Diagnostic[] }> {
    const { id: checked, errors, warnings } = await this.work.validate(this.ruleSources(), text, id ?? null);
    return { id: checked, errors, warnings };
  }

  /** The loaded rule texts as plain data, for a work thread. */
  private ruleSources(): RuleSources {
    const fileRules: [string, string][] = [];
    for (const [name, m] of this.ruleMeta) if (m.origin === 'file' && m.file !== null) fileRules.push([name, m.file]);
    return {
      files: [...this.fileSources],
      api: [...this.apiSources],
      streams: [...this.apiStreams].map(([name, s]) => [name, s.text] as [string, string]),
      fileRules,
      env: this.options.env ?? { ...process.env },
      settings: {
        ...(this.options.envPrefix !== undefined ? { envPrefix: this.options.envPrefix } : {}),
        webhookAllow: [...this.webhookPolicy.entries],
        selfPort: this.webhookPolicy.selfEndpoint()?.port ?? null,
        ...(this.options.configuredSinks !== undefined ? { configuredSinks: this.options.configuredSinks } : {}),
        rulesDir: this.options.rulesDir ?? null,
        ...(this.options.testMaxEvents !== undefined ? { testMaxEvents: this.options.testMaxEvents } : {}),
      },
    };
  }

  async deleteRule(id: string): Promise<boolean> {
    const meta = this.ruleMeta.get(id);
    if (!meta) return false;
    if (meta.origin === 'file') throw new ServiceError('VIGIL_ERR_RULE_FROM_FILE', `rule '${id}' comes from ${meta.file}: remove it from the file`, 409);
    const api = new Map(this.apiSources);
    api.delete(id);
    let program = this.compile({ api });
    // A stream only this rule's text declared stays, as an API stream: its producers go on sending.
    const kept = this.orphanedStreams(meta.text, API_FILE_PREFIX + id, program);
    if (kept.size > 0) {
      const streams = new Map(this.apiStreams);
      for (const [name, text] of kept) streams.set(name, { text, updatedAt: new Date(this.now()).toISOString() });
      const withStreams = this.compile({ api, streams });
      if (!hasErrors(withStreams)) {
        program = withStreams;
        for (const name of kept.keys()) {
          this.apiStreams.set(name, streams.get(name)!);
          this.logger.info({ stream: name, rule: id }, 'stream kept as an API stream (declared by a deleted rule; DELETE /streams/:name removes it)');
        }
        this.pendingOps.push({ db: 'meta', key: 'apiStreams', value: this.storedApiStreams() });
      }
    }
    this.apiSources.delete(id);
    this.reconcile(program);
    await this.afterCommit();
    return true;
  }

  /** The stream declarations of `text` (the source `file`) that no text of `program` declares any more: name → declaration text. */
  private orphanedStreams(text: string, file: string, program: CompiledProgram): Map<string, string> {
    const out = new Map<string, string>();
    for (const d of parseProgram(text, file).program.decls) {
      if (d.kind !== 'stream') continue;
      if (program.streams.get(d.name.name)?.declared) continue;
      out.set(d.name.name, text.slice(d.span.offset, d.span.endOffset) + '\n');
    }
    return out;
  }

  private storedApiStreams(): StoredApiStream[] {
    return [...this.apiStreams].map(([name, s]) => ({ name, text: s.text, updatedAt: s.updatedAt }));
  }

  // ------------------------------------------------------------ streams as API objects

  /** A stream with where it is declared and its declaration text; null when there is no such stream. */
  getStream(name: string): StreamDetail | null {
    const info = this.streams().find((s) => s.name === name);
    if (!info) return null;
    const api = this.apiStreams.get(name);
    if (api) return { ...info, origin: 'api', declaredIn: [], text: api.text, updatedAt: api.updatedAt };
    const files: string[] = [];
    const rules: string[] = [];
    let text: string | null = null;
    for (const src of this.sourceList()) {
      if (src.file.startsWith(STREAM_FILE_PREFIX)) continue;
      const d = parseProgram(src.text, src.file).program.decls.find((x) => x.kind === 'stream' && x.name.name === name);
      if (!d) continue;
      text ??= src.text.slice(d.span.offset, d.span.endOffset);
      if (src.file.startsWith(API_FILE_PREFIX)) rules.push(src.file.slice(API_FILE_PREFIX.length));
      else files.push(src.file);
    }
    const origin = files.length > 0 ? 'file' : rules.length > 0 ? 'rule' : 'implicit';
    return { ...info, origin, declaredIn: files.length > 0 ? files : rules, text, updatedAt: null };
  }

  /**
   * Declares (or redeclares) a stream as its own API object. The text must declare exactly this
   * stream and nothing else; it compiles with every loaded text (a declaration elsewhere must
   * say the same). Stored durably; answered after the commit.
   */
  async putStream(name: string, text: string): Promise<PutStreamResult> {
    const file = STREAM_FILE_PREFIX + name;
    const parsed = parseProgram(text, file);
    const errors: Diagnostic[] = parsed.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length === 0) {
      const decls = parsed.program.decls;
      if (decls.length !== 1 || decls[0]!.kind !== 'stream' || decls[0]!.name.name !== name) {
        const other = decls.find((d) => d.kind !== 'stream' || d.name.name !== name) ?? null;
        const message = decls.length === 0 ? `the text declares no stream named '${name}'` : `the text must declare exactly one stream, named '${name}', and nothing else`;
        errors.push(other ? diagnostic('error', 'service/stream', message, file, other.name.span) : syntheticError(message, file));
      }
    }
    const updatedAt = new Date(this.now()).toISOString();
    const streams = new Map(this.apiStreams);
    streams.set(name, { text, updatedAt });
    const program = errors.length === 0 ? this.compile({ streams }) : null;
    if (program) errors.push(...program.diagnostics.filter((d) => d.severity === 'error'));
    if (errors.length > 0 || !program) {
      this.ruleLoadFailed(errors);
      this.logger.warn({ stream: name, errors: errors.length, first: `${errors[0]!.line}:${errors[0]!.col}: ${errors[0]!.message}` }, 'stream refused: it does not compile; nothing changed');
      return { ok: false, errors: errors.map((d) => ({ ...d, file: d.file === file ? 'request' : d.file })) };
    }
    const created = !this.apiStreams.has(name);
    const same = !created && this.apiStreams.get(name)!.text === text;
    if (!same) {
      this.apiStreams.set(name, { text, updatedAt });
      this.pendingOps.push({ db: 'meta', key: 'apiStreams', value: this.storedApiStreams() });
      this.reconcile(program);
      this.logger.info({ stream: name, created }, created ? 'stream declared' : 'stream redeclared');
    }
    await this.afterCommit();
    return { ok: true, stream: this.getStream(name)!, created };
  }

  /** Removes an API stream: refused (409) while a rule reads it or when a file or a rule's text declares it. */
  async deleteStream(name: string): Promise<boolean> {
    const st = this.engine.streams.get(name);
    if (!this.apiStreams.has(name)) {
      if (!st) return false;
      const detail = this.getStream(name)!;
      const where = detail.origin === 'file' ? `the rules file ${detail.declaredIn.join(', ')}` : detail.origin === 'rule' ? `the text of rule ${detail.declaredIn.map((r) => `'${r}'`).join(', ')}` : `rule ${st.rules.map((r) => `'${r.rule.name}'`).join(', ')} (read without a declaration)`;
      throw new ServiceError('VIGIL_ERR_STREAM_NOT_API', `stream '${name}' is not an API stream: it comes from ${where}`, 409);
    }
    if (st && st.rules.length > 0) {
      throw new ServiceError('VIGIL_ERR_STREAM_IN_USE', `stream '${name}' is read by rule ${st.rules.map((r) => `'${r.rule.name}'`).join(', ')}: delete or change those rules first`, 409);
    }
    const streams = new Map(this.apiStreams);
    streams.delete(name);
    const program = this.compile({ streams });
    this.apiStreams.delete(name);
    this.pendingOps.push({ db: 'meta', key: 'apiStreams', value: this.storedApiStreams() });
    this.reconcile(program);
    if (!this.engine.streams.has(name)) this.pendingOps.push({ db: 'streams', key: name });
    this.logger.info({ stream: name }, 'stream deleted');
    await this.afterCommit();
    return true;
  }

  /** Re-reads the rules directory and swaps in what changed (a file that does not compile keeps its old rules). */
  reloadRulesDir(): void {
    if (!this.options.rulesDir) return;
    const before = this.fileSources;
    const files = this.readRulesDir();
    const failed = new Set<string>();
    let program = this.compile({ files });
    // A changed file that does not compile keeps its previous text (and so its running rules).
    const refusedBefore = new Map(this.refusedRules);
    this.refusedRules.clear();
    for (let guard = 0; guard < 100 && hasErrors(program); guard++) {
      const first = program.diagnostics.find((d) => d.severity === 'error')!;
      // A file rule named like an API rule: the error is the file's (the API rule stays).
      const clash = this.ruleNameClash(first, files);
      if (clash) {
        const known = refusedBefore.get(clash.error.file);
        this.refuseFileRule(clash, known !== undefined && known.name === clash.name);
      }
      const bad = clash ? clash.error : first;
      if (!files.has(bad.file)) {
        // Not a file's error (stored texts are checked when they are written): no file to leave out.
        this.logger.error({ file: bad.file, line: bad.line, col: bad.col, code: bad.code, error: bad.message }, 'rules do not compile together');
        break;
      }
      const errors = clash ? [clash.error] : program.diagnostics.filter((d) => d.file === bad.file);
      this.fileErrors.set(bad.file, errors);
      failed.add(bad.file);
      if (!clash) {
        for (const d of errors.filter((x) => x.severity === 'error')) {
          this.logger.error({ file: d.file, line: d.line, col: d.col, code: d.code, error: d.message }, 'rules file does not compile; its previous version keeps running');
        }
      }
      this.ruleLoadFailed(errors.filter((x) => x.severity === 'error'));
      if (before.has(bad.file) && files.get(bad.file) !== before.get(bad.file)) files.set(bad.file, before.get(bad.file)!);
      else files.delete(bad.file);
      program = this.compile({ files });
    }
    // Tests gate the load: a changed file whose tests fail keeps its previous text too.
    const changed = new Set([...files.keys()].filter((f) => !failed.has(f) && files.get(f) !== before.get(f)));
    const failing = this.failingTests(program, changed);
    for (const [file, errors] of failing) {
      this.fileErrors.set(file, errors);
      failed.add(file);
      this.logger.error({ file, failures: errors.length, first: `${errors[0]!.line}:${errors[0]!.col}: ${errors[0]!.message}` }, 'rules file fails its tests; its previous version keeps running');
      this.ruleLoadFailed(errors);
      if (before.has(file)) files.set(file, before.get(file)!);
      else files.delete(file);
    }
    if (failing.size > 0) program = this.compile({ files });
    for (const f of [...this.fileErrors.keys()]) if (!failed.has(f)) this.fileErrors.delete(f);
    this.fileSources.clear();
    for (const [k, v] of files) this.fileSources.set(k, v);
    this.reconcile(program);
  }

  private watchRulesDir(): void {
    try {
      this.watcher = watch(this.options.rulesDir!, () => {
        if (this.reloadTimer) clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => {
          this.reloadTimer = null;
          if (this.open) this.reloadRulesDir();
        }, 100);
      });
      this.watcher.on('error', (err) => this.logger.warn({ error: err.message }, 'rules directory watch failed'));
    } catch (err) {
      this.logger.warn({ dir: this.options.rulesDir, error: (err as Error).message }, 'rules directory cannot be watched');
    }
  }

  listRules(): RuleInfo[] {
    const running = [...this.engine.rules.values()].map((rr) => this.ruleInfo(rr));
    const refused: RuleInfo[] = [...this.refusedRules].map(([file, r]) => ({
      id: r.name,
      version: 0,
      origin: 'file',
      file,
      status: 'refused',
      errors: [r.error],
      warnings: [],
      title: null,
      streams: [],
      counters: { events: 0, matches: 0, timeouts: 0, partialMatches: 0, keys: 0, droppedPartials: 0, throttled: 0 },
      updatedAt: new Date(this.now()).toISOString(),
    }));
    return [...running, ...refused];
  }

  // ------------------------------------------------------------ rule names: files and API

  /**
   * When `bad` is the compiler's "declared twice" for an API rule's text, the other declaration
   * is a rules file's: that file's rule is the one refused (an API rule is never replaced by a
   * file, nor dropped because of one). Returns the file's error, positioned at its rule.
   */
  private ruleNameClash(bad: Diagnostic, files: Map<string, string>): { name: string; error: Diagnostic } | null {
    if (bad.code !== 'compile/duplicate-rule' || !bad.file.startsWith(API_FILE_PREFIX)) return null;
    const name = bad.file.slice(API_FILE_PREFIX.length);
    for (const [file, text] of files) {
      const decl = parseProgram(text, file).program.decls.find((d) => d.kind === 'rule' && d.name.name === name);
      if (!decl) continue;
      const message = `rule '${name}' is already defined through the API (PUT /rules/${name}): this file is not loaded (its previous version, if any, keeps running); rename the rule here, or DELETE /rules/${name} first`;
      return { name, error: diagnostic('error', 'service/rule-name-taken', message, file, decl.name.span) };
    }
    return null;
  }

  /** Records a refused file rule (GET /rules, the status page) and logs it once (not again while it stays refused). */
  private refuseFileRule(clash: { name: string; error: Diagnostic }, known = false): void {
    this.refusedRules.set(clash.error.file, clash);
    if (known) return;
    const e = clash.error;
    this.logger.error({ rule: clash.name, file: e.file, line: e.line, col: e.col, code: e.code }, e.message);
  }

  private ruleInfo(rr: RuleRuntime): RuleInfo {
    const meta = this.ruleMeta.get(rr.rule.name)!;
    const c = rr.counters;
    const errors = meta.file ? (this.fileErrors.get(meta.file) ?? []) : (this.apiRefusals.get(rr.rule.name) ?? []);
    return {
      id: rr.rule.name,
      version: meta.version,
      origin: meta.origin,
      file: meta.file,
      status: errors.some((d) => d.severity === 'error') ? 'error' : 'running',
      errors,
      warnings: this.ruleWarnings(rr.rule.name),
      title: rr.rule.title,
      streams: rr.rule.streams,
      counters: {
        events: c.eventsIn,
        matches: c.matches,
        timeouts: c.timeouts,
        partialMatches: rr.partialMatches(),
        keys: rr.keys.size,
        droppedPartials: c.discardedBySkip + c.droppedByMaxPartials + c.timeoutsDropped + (this.droppedByChange.get(rr.rule.name) ?? 0),
        throttled: c.throttled,
      },
      updatedAt: meta.updatedAt,
    };
  }

  /** The warnings of the loaded program inside a rule's text (an API rule's file shown as 'request', as in its PUT answer). */
  private ruleWarnings(name: string): Diagnostic[] {
    const rule = this.program.rules.find((r) => r.name === name);
    if (!rule) return [];
    return this.program.diagnostics
      .filter((d) => d.severity === 'warning' && d.file === rule.file && d.offset >= rule.span.offset && d.offset < rule.span.endOffset)
      .map((d) => (d.file.startsWith(API_FILE_PREFIX) ? { ...d, file: 'request' } : d));
  }

  getRule(id: string): RuleDetail | null {
    const rr = this.engine.rules.get(id);
    if (!rr) return null;
    const g = rr.rule.graph;
    const link = (l: number) => (l === 0 ? 'next' : l === 1 ? 'then' : 'then any');
    return {
      ...this.ruleInfo(rr),
      text: this.ruleMeta.get(id)!.text,
      summary: {
        steps: withNegatedSteps(rr.rule, g.steps.map((s) => ({
          name: s.name,
          min: s.min,
          max: s.max === Infinity ? null : s.max,
          loop: s.loop === 0 ? 'consecutive' : s.loop === 1 ? 'relaxed' : 'combinations',
          greedy: s.greedy,
          until: s.until !== null,
          exits: s.exits.map((x) => ({ to: x.target === FINAL ? '(end)' : g.steps[x.target]!.name, link: link(x.link), guards: (x.thenGuards?.length ?? 0) + (x.nextGuards?.length ?? 0) })),
          final: s.finals.length > 0,
        }))),
        withinMs: rr.rule.nfa.withinMs,
        skip: rr.rule.nfa.skip,
        maxPartials: rr.rule.nfa.maxPartials,
      },
    };
  }

  // ------------------------------------------------------------ ingest

  /** Applies a batch of events to a stream; resolves after the commit that holds their effects. */
  async ingest(stream: string, events: unknown[], arrivalTime: number, opts: IngestOptions = {}): Promise<IngestAnswer> {
    if (!this.open) throw new ServiceError('VIGIL_ERR_NOT_READY', 'the service is not ready', 503);
    const st = this.engine.streams.get(stream);
    if (!st) throw new ServiceError('VIGIL_ERR_STREAM_NOT_FOUND', `unknown stream '${stream}'`, 404);
    // Stored under a bounded form: LMDB keys are limited, and an MQTT event id can be anything.
    const idem = opts.idempotencyKey === undefined ? undefined : storedKey(opts.idempotencyKey);
    if (idem !== undefined && !opts.recordOnly) {
      const inflight = this.inflightIdem.get(idem);
      if (inflight) return inflight;
      const seen = this.store.get<{ answer: IngestAnswer; expiresAt: number }>('idem', idem);
      if (seen && seen.expiresAt > this.now()) return seen.answer;
    }
    const answer: IngestAnswer = { accepted: 0, late: 0, rejected: [] };
    const engine = this.engine;
    const sizes = opts.sizes ?? null;
    const maxBytes = st.compiled.maxEventBytes ?? this.maxEventBytes;
    for (let i = 0; i < events.length; i++) {
      if (sizes !== null && sizes[i]! > maxBytes) {
        // Rejected at the door: a partial match could hold it, and every commit would write it.
        st.counters.rejected++;
        st.counters.tooLarge++;
        answer.rejected.push({ index: i, error: tooLargeText(sizes[i]!, maxBytes, st.compiled.maxEventBytes !== null) });
        continue;
      }
      const r = engine.ingest(stream, events[i], arrivalTime, opts.topic);
      if (r.status === 'accepted') answer.accepted++;
      else if (r.status === 'late') answer.late++;
      else answer.rejected.push({ index: i, error: r.error });
    }
    this.dirtyStreams.add(st);
    if (idem !== undefined) this.pendingOps.push({ db: 'idem', key: idem, value: { answer, expiresAt: this.now() + this.idempotencyTtlMs } });
    const done = this.afterCommit().then(() => answer);
    if (idem !== undefined) {
      this.inflightIdem.set(idem, done);
      void done.finally(() => this.inflightIdem.delete(idem)).catch(() => {});
    }
    return done;
  }

  /** The largest event a stream takes, in bytes (its `max size`, else VIGIL_MAX_EVENT_BYTES); Infinity for an unknown stream. */
  maxEventBytesOf(stream: string): number {
    const st = this.engine.streams.get(stream);
    return st === undefined ? Infinity : (st.compiled.maxEventBytes ?? this.maxEventBytes);
  }

  // ------------------------------------------------------------ group commit

  /** Resolves after the next commit (scheduled within `checkpointMs`). */
  afterCommit(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      // A flood of small ingests (MQTT) can keep the event loop from reaching the commit timer:
      // past a threshold the commit starts from here, without waiting for the timer.
      if (this.waiters.length >= EAGER_COMMIT_WAITERS && this.open) {
        if (this.commitTimer !== null) clearTimeout(this.commitTimer);
        this.commitTimer = null;
        void this.commitNow();
      } else this.scheduleCommit();
    });
  }

  /**
   * Group commit: changes gather for `checkpointMs` after the first one, then one synchronous
   * LMDB transaction makes them all durable and every call waiting on them is answered. Under
   * load each commit holds everything that arrived since the previous one; past
   * EAGER_COMMIT_WAITERS waiting calls a commit starts at once.
   */
  private scheduleCommit(): void {
    if (this.commitTimer !== null || !this.open) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = null;
      void this.commitNow();
    }, this.checkpointMs);
  }

  /** Commits what is pending now. */
  async commitNow(): Promise<void> {
    const ops = this.collectOps();
    const waiters = this.waiters;
    this.waiters = [];
    const alerts = this.pendingAlerts;
    this.pendingAlerts = [];
    const started = process.hrtime.bigint();
    try {
      this.store.commit(ops);
      // Answers and deliveries wait for the disk, not just for the commit.
      await this.store.flushed();
    } catch (err) {
      const error = err as Error;
      for (const l of this.checkpointListeners) l(0, false);
      this.logger.fatal({ error: error.message }, 'state commit failed: stopping (a restart resumes from the last commit)');
      for (const w of waiters) w.reject(new ServiceError('VIGIL_ERR_INTERNAL', 'the state could not be committed', 500));
      this.open = false;
      this.options.onFatal?.(error);
      return;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    for (const l of this.checkpointListeners) l(seconds, true);
    for (const w of waiters) w.resolve();
    if (alerts.length > 0) for (const l of this.commitListeners) l(alerts);
    if (this.pendingOps.length > 0 || this.waiters.length > 0 || this.pendingAlerts.length > 0) this.scheduleCommit();
  }

  private collectOps(): Op[] {
    const ops = this.pendingOps;
    this.pendingOps = [];
    for (const rr of this.engine.rules.values()) {
      const j = rr.journal;
      if (j === null) continue;
      const name = rr.rule.name;
      for (const ks of j.dirty) ops.push({ db: 'keys', key: [name, keyJson(ks.key)], value: encodeKeyState(ks, rr.rule.graph) });
      for (const key of j.removed.values()) ops.push({ db: 'keys', key: [name, keyJson(key)] });
      for (const e of j.bufferAdded) ops.push({ db: 'buffer', key: [name, e.seq], value: encodeEvent(e) });
      for (const seq of j.bufferReleased) ops.push({ db: 'buffer', key: [name, seq] });
      if (j.throttle) ops.push({ db: 'throttle', key: name, value: rr.throttleEntries() });
      j.dirty.clear();
      j.removed.clear();
      j.bufferAdded.length = 0;
      j.bufferReleased.length = 0;
      j.throttle = false;
    }
    for (const st of this.dirtyStreams) {
      const v: StoredStream = {
        v: 1,
        maxTime: finite(st.maxTime),
        watermark: finite(st.watermark),
        lastArrival: finite(st.lastArrival),
        accepted: st.counters.accepted,
        late: st.counters.late,
        rejected: st.counters.rejected,
        tooLarge: st.counters.tooLarge,
        tooFarAhead: st.counters.tooFarAhead,
      };
      ops.push({ db: 'streams', key: st.compiled.name, value: v });
    }
    this.dirtyStreams.clear();
    this.collectRuleCounters(ops);
    for (const l of this.pendingLate) {
      ops.push({ db: 'late', key: [l.stream, l.seq], value: l });
      for (const seq of this.keepLate(l.stream, l.seq, l.bytes ?? 0)) ops.push({ db: 'late', key: [l.stream, seq] });
    }
    this.pendingLate = [];
    this.collectOutboxOps(ops);
    ops.push({ db: 'meta', key: 'seq', value: this.engine.seq });
    ops.push({ db: 'meta', key: 'alertSeq', value: this.alertSeq });
    return ops;
  }

  /**
   * Notes a late entry kept for `stream`; returns the seqs of the oldest entries to remove so
   * that the stream keeps at most `lateKeep` entries and `lateMaxBytes` bytes (an entry larger
   * than the whole bound is not kept: it was counted late, it is not stored).
   */
  private keepLate(stream: string, seq: number, bytes: number): number[] {
    let kept = this.lateKept.get(stream);
    if (!kept) this.lateKept.set(stream, (kept = { seqs: [], bytes: [], total: 0 }));
    kept.seqs.push(seq);
    kept.bytes.push(bytes);
    kept.total += bytes;
    const removed: number[] = [];
    while (kept.seqs.length > this.lateKeep || (kept.total > this.lateMaxBytes && kept.seqs.length > 0)) {
      removed.push(kept.seqs.shift()!);
      kept.total -= kept.bytes.shift()!;
      this.pruned.late++;
    }
    return removed;
  }

  /**
   * The outbox part of a commit: new alerts, changed delivery states, the index of unfinished
   * entries, and the bounds:
   * - undelivered alerts (a sink down, a receiver hanging) may fill at most half of the outbox,
   *   by count and by bytes: past that the oldest undelivered deliveries are marked `failed`
   *   (reason `backlog_full`), counted and logged — they stay visible in GET /alerts;
   * - the outbox holds at most `outboxKeep` alerts and `outboxMaxBytes` bytes: the oldest go
   *   first; an oldest alert still undelivered then is marked failed first (`outbox_full`),
   *   counted and logged, never dropped silently.
   */
  private collectOutboxOps(ops: Op[]): void {
    for (const a of this.pendingAlerts) {
      const bytes = a.bytes ?? 0;
      ops.push({ db: 'outbox', key: a.seq, value: storedOutboxForm(a) });
      ops.push({ db: 'alertIds', key: a.alert.id, value: a.seq });
      this.outboxCount++;
      this.outboxBytes += bytes;
      let open = false;
      for (const d of Object.values(a.delivery)) {
        if (!unfinishedState(d.state)) continue;
        open = true;
        this.backlog.set(d.sink, (this.backlog.get(d.sink) ?? 0) + 1);
      }
      if (open) {
        ops.push({ db: 'unfinished', key: a.seq, value: 1 });
        this.backlogCount++;
        this.backlogBytes += bytes;
      }
    }
    const backlogMaxCount = Math.max(1, Math.floor(this.outboxKeep / 2));
    const backlogMaxBytes = this.outboxMaxBytes / 2;
    if (this.backlogCount > backlogMaxCount || this.backlogBytes > backlogMaxBytes) {
      const reason = `not delivered: undelivered alerts over half the outbox (${backlogMaxCount} alerts or ${backlogMaxBytes} bytes); the oldest are given up`;
      const dropped: { seq: number; name: string }[] = [];
      const entries: OutboxEntry[] = [];
      for (const { key } of this.store.range('unfinished')) {
        if (this.backlogCount <= backlogMaxCount && this.backlogBytes <= backlogMaxBytes) break;
        const stored = outboxFromStoredForm(this.store.get<OutboxEntry | string>('outbox', key));
        if (!stored) {
          ops.push({ db: 'unfinished', key });
          continue;
        }
        const entry = this.giveUp(this.freshest(stored), reason, 'backlog_full', dropped);
        if (entry) entries.push(entry);
      }
      if (entries.length > 0) this.noteGivenUp(entries, dropped, 'backlog_full', reason);
    }
    for (const [seq, entry] of this.outboxDirty) {
      ops.push({ db: 'outbox', key: seq, value: storedOutboxForm(entry) });
      ops.push(hasUnfinished(entry) ? { db: 'unfinished', key: seq, value: 1 } : { db: 'unfinished', key: seq });
    }
    // outboxDirty is cleared after the pruning below: what it reads of the store is not yet
    // this commit's, so it must see the entries changed here (the freshest copies).
    // Only stored entries are candidates (those of this commit are newer than any stored one).
    const firstNew = this.pendingAlerts.length > 0 ? this.pendingAlerts[0]!.seq : this.alertSeq;
    const forced: OutboxEntry[] = [];
    const forcedDrops: { seq: number; name: string }[] = [];
    const fullReason = `not delivered: the outbox is full (${this.outboxKeep} alerts or ${this.outboxMaxBytes} bytes) and this was its oldest alert`;
    while ((this.outboxCount > this.outboxKeep || this.outboxBytes > this.outboxMaxBytes) && this.outboxOldest < firstNew) {
      const stored = outboxFromStoredForm(this.store.get<OutboxEntry | string>('outbox', this.outboxOldest));
      if (stored) {
        let entry = this.freshest(stored);
        if (hasUnfinished(entry)) {
          entry = this.giveUp(entry, fullReason, 'outbox_full', forcedDrops)!;
          forced.push(entry);
        }
        ops.push({ db: 'outbox', key: entry.seq });
        ops.push({ db: 'alertIds', key: entry.alert.id });
        ops.push({ db: 'unfinished', key: entry.seq });
        this.outboxDirty.delete(entry.seq);
        this.outboxCount--;
        this.outboxBytes = Math.max(0, this.outboxBytes - (entry.bytes ?? 0));
        this.pruned.outbox++;
      }
      this.outboxOldest++;
    }
    this.outboxDirty.clear();
    if (forced.length > 0) this.noteGivenUp(forced, forcedDrops, 'outbox_full', fullReason);
    if (this.outboxCount === 0) this.outboxBytes = 0;
    const stats: OutboxStats = {
      count: this.outboxCount,
      bytes: this.outboxBytes,
      oldest: this.outboxOldest,
      backlogCount: this.backlogCount,
      backlogBytes: this.backlogBytes,
      backlog: Object.fromEntries(this.backlog),
    };
    ops.push({ db: 'meta', key: 'outbox', value: stats });
  }

  /** Marks every unfinished delivery of `entry` failed with `reason`; the changed copy (in outboxDirty), or null if none was unfinished. */
  private giveUp(entry: OutboxEntry, reason: string, why: GiveUpReason, dropped: { seq: number; name: string }[]): OutboxEntry | null {
    if (!hasUnfinished(entry)) return null;
    const copy: OutboxEntry = { ...entry, delivery: { ...entry.delivery } };
    for (const [name, d] of Object.entries(entry.delivery)) {
      if (!unfinishedState(d.state)) continue;
      this.applyState(copy, name, { ...d, state: 'failed', lastError: reason, nextAttemptAt: null });
      this.countGivenUp(d.sink, why);
      dropped.push({ seq: entry.seq, name });
    }
    this.outboxDirty.set(copy.seq, copy);
    return copy;
  }

  private readonly giveUpLog = new Map<GiveUpReason, { alerts: number; deliveries: number; firstAlert: string; lastAlert: string; reason: string; timer: NodeJS.Timeout | null }>();

  /**
   * Tells the dispatcher, and logs — at once for the first give-up of a reason, then at most
   * once per 10 s with what came meanwhile (a dead sink under load must not flood the log).
   */
  private noteGivenUp(entries: OutboxEntry[], dropped: { seq: number; name: string }[], why: GiveUpReason, reason: string): void {
    for (const l of this.droppedListeners) l(dropped);
    let b = this.giveUpLog.get(why);
    if (!b) this.giveUpLog.set(why, (b = { alerts: 0, deliveries: 0, firstAlert: '', lastAlert: '', reason, timer: null }));
    if (b.alerts === 0) b.firstAlert = entries[0]!.alert.id;
    b.alerts += entries.length;
    b.deliveries += dropped.length;
    b.lastAlert = entries[entries.length - 1]!.alert.id;
    b.reason = reason;
    if (b.timer === null) this.flushGiveUpLog(why, b, 0);
  }

  private flushGiveUpLog(why: GiveUpReason, b: { alerts: number; deliveries: number; firstAlert: string; lastAlert: string; reason: string; timer: NodeJS.Timeout | null }, delayMs: number): void {
    b.timer = setTimeout(() => {
      b.timer = null;
      if (b.alerts === 0) return;
      this.logger.error({ reason: why, alerts: b.alerts, deliveries: b.deliveries, firstAlert: b.firstAlert, lastAlert: b.lastAlert }, `alert deliveries given up: ${b.reason}`);
      b.alerts = 0;
      b.deliveries = 0;
      this.flushGiveUpLog(why, b, 10_000);
    }, delayMs);
    b.timer.unref();
  }

  /** Counts a delivery given up without being delivered (vigil_deliveries_given_up_total). */
  countGivenUp(sink: string, why: GiveUpReason): void {
    const k = `${sink} ${why}`;
    this.givenUp.set(k, (this.givenUp.get(k) ?? 0) + 1);
  }

  /** Sets one delivery's state in `entry` (a copy owned by the caller), keeping the backlog totals. */
  private applyState(entry: OutboxEntry, name: string, next: DeliveryState): void {
    const wasOpen = hasUnfinished(entry);
    const prev = entry.delivery[name];
    entry.delivery[name] = next;
    const a = prev !== undefined && unfinishedState(prev.state);
    const b = unfinishedState(next.state);
    if (a && !b) this.backlog.set(prev!.sink, Math.max(0, (this.backlog.get(prev!.sink) ?? 0) - 1));
    else if (!a && b) this.backlog.set(next.sink, (this.backlog.get(next.sink) ?? 0) + 1);
    const isOpen = hasUnfinished(entry);
    if (wasOpen && !isOpen) {
      this.backlogCount = Math.max(0, this.backlogCount - 1);
      this.backlogBytes = Math.max(0, this.backlogBytes - (entry.bytes ?? 0));
    } else if (!wasOpen && isOpen) {
      this.backlogCount++;
      this.backlogBytes += entry.bytes ?? 0;
    }
  }

  /** Deliveries the core gave up (a bound was hit): the dispatcher drops their jobs. */
  onDeliveriesGivenUp(listener: (dropped: { seq: number; name: string }[]) => void): void {
    this.droppedListeners.push(listener);
  }

  /** Failed deliveries queued again (retry through the API), after the commit that holds it. */
  onDeliveriesRequeued(listener: (entries: OutboxEntry[]) => void): void {
    this.requeueListeners.push(listener);
  }

  onCommittedAlerts(listener: (entries: OutboxEntry[]) => void): void {
    this.commitListeners.push(listener);
  }

  onCheckpoint(listener: (seconds: number, ok: boolean) => void): void {
    this.checkpointListeners.push(listener);
  }

  // ------------------------------------------------------------ time

  private startTicker(): void {
    this.ticker = setInterval(() => this.tick(this.now()), 1000);
    this.ticker.unref();
  }

  /** Wall-clock tick: idle streams follow the wall clock; their timers may fire. */
  tick(now: number): void {
    if (!this.open) return;
    const before = new Map([...this.engine.streams.values()].map((s) => [s, s.watermark]));
    this.engine.tick(now);
    for (const [st, w] of before) if (st.watermark !== w) this.dirtyStreams.add(st);
    this.sweepIdempotencyKeys(now);
    if (this.dirtyStreams.size > 0 || this.pendingAlerts.length > 0 || this.pendingOps.length > 0) this.scheduleCommit();
  }

  /**
   * Deletes expired Idempotency-Keys: each call (one a second) examines at most
   * `idempotencySweepBatch` keys, going on from where the previous one stopped, so the whole
   * table is swept in turn with bounded work per tick. A key being ingested right now is left
   * alone (its new answer is about to be written).
   */
  sweepIdempotencyKeys(now: number = this.now()): number {
    let seen = 0;
    let deleted = 0;
    let last: string | undefined;
    const start = this.idemCursor;
    for (const { key, value } of this.store.range<{ expiresAt: number }>('idem', start === undefined ? { limit: this.idemSweepBatch + 1 } : { start, limit: this.idemSweepBatch + 1 })) {
      if (start !== undefined && key === start) continue;
      if (seen === this.idemSweepBatch) break;
      seen++;
      last = key as string;
      if (value.expiresAt <= now && !this.inflightIdem.has(last)) {
        this.pendingOps.push({ db: 'idem', key: last });
        deleted++;
      }
    }
    this.idemCursor = seen < this.idemSweepBatch ? undefined : last;
    this.pruned.idempotency += deleted;
    return deleted;
  }

  // ------------------------------------------------------------ late-data log (rate-limited)

  private readonly lateBursts = new Map<string, { count: number; oldest: number; timer: NodeJS.Timeout | null }>();

  /**
   * Late events are logged per stream at most once per 10 s: the first at once (with the others
   * of the same tick), then a summary of what came during the quiet period, if anything did.
   */
  private noteLate(stream: string, time: number): void {
    let b = this.lateBursts.get(stream);
    if (!b) this.lateBursts.set(stream, (b = { count: 0, oldest: Infinity, timer: null }));
    b.count++;
    if (time < b.oldest) b.oldest = time;
    if (b.timer === null) this.scheduleLateLog(stream, b, 0);
  }

  private scheduleLateLog(stream: string, b: { count: number; oldest: number; timer: NodeJS.Timeout | null }, delayMs: number): void {
    b.timer = setTimeout(() => {
      b.timer = null;
      if (b.count === 0 || !this.open) return;
      const st = this.engine.streams.get(stream);
      this.logger.warn(
        { stream, lateEvents: b.count, oldestLateTime: b.oldest, watermark: st ? finite(st.watermark) : null },
        'late events: below the watermark, kept on the late side output (GET /streams/:stream/late)',
      );
      b.count = 0;
      b.oldest = Infinity;
      this.scheduleLateLog(stream, b, 10_000);
    }, delayMs);
    b.timer.unref();
  }

  // ------------------------------------------------------------ queries

  streams(): StreamInfo[] {
    const now = this.now();
    return [...this.engine.streams.values()].map((st) => ({
      name: st.compiled.name,
      declared: st.compiled.declared,
      watermark: finite(st.watermark),
      maxTime: finite(st.maxTime),
      lagMs: Number.isFinite(st.watermark) ? now - st.watermark : null,
      accepted: st.counters.accepted,
      late: st.counters.late,
      rejected: st.counters.rejected,
      tooLarge: st.counters.tooLarge,
      tooFarAhead: st.counters.tooFarAhead,
      maxEventBytes: st.compiled.maxEventBytes ?? this.maxEventBytes,
      maxLeadMs: st.compiled.timeOf === null ? null : (st.compiled.maxLeadMs ?? this.engine.maxLeadMs),
      rules: st.rules.map((r) => r.rule.name),
      sources: st.compiled.sources,
    }));
  }

  late(stream: string, opts: { limit?: number; cursor?: string } = {}): { late: LateEntry[]; next: string | null } {
    if (!this.engine.streams.has(stream)) throw new ServiceError('VIGIL_ERR_STREAM_NOT_FOUND', `unknown stream '${stream}'`, 404);
    const limit = clampLimit(opts.limit);
    const below = opts.cursor !== undefined ? parseCursor(opts.cursor) : Infinity;
    const out: LateEntry[] = [];
    let bytes = 0;
    for (const { value } of this.store.range<LateEntry>('late', { start: [stream, below === Infinity ? Number.MAX_SAFE_INTEGER : below - 1], end: [stream, -1], reverse: true })) {
      const size = value.bytes ?? jsonBytes(value.event) + 100;
      // A page ends at `limit` entries or `pageMaxBytes` bytes (at least one entry).
      if (out.length === limit || (out.length > 0 && bytes + size > this.pageMaxBytes)) return { late: out, next: String(out[out.length - 1]!.seq) };
      out.push(typeof value.event === 'string' ? { ...value, event: dataFromStoredForm(value.event as never) as Json } : value);
      bytes += size;
    }
    return { late: out, next: null };
  }

  alerts(q: AlertQuery = {}): { alerts: (AlertRecord & { delivery: Record<string, { state: string; attempts: number; lastError: string | null }> })[]; next: string | null } {
    const limit = clampLimit(q.limit);
    const below = q.cursor !== undefined ? parseCursor(q.cursor) : Number.MAX_SAFE_INTEGER;
    const wantKey = q.key;
    const out: (AlertRecord & { delivery: Record<string, { state: string; attempts: number; lastError: string | null }> })[] = [];
    let lastSeq = -1;
    let bytes = 0;
    for (const { value } of this.store.range<OutboxEntry | string>('outbox', { start: below - 1, end: -1, reverse: true })) {
      const entry = this.freshest(outboxFromStoredForm(value)!);
      if (q.rule !== undefined && entry.alert.rule !== q.rule) continue;
      if (wantKey !== undefined && keyText(entry.alert.key) !== wantKey) continue;
      if (q.since !== undefined && entry.raisedAt < q.since) break;
      const size = entry.bytes ?? 0;
      if (out.length === limit || (out.length > 0 && bytes + size > this.pageMaxBytes)) return { alerts: out, next: String(lastSeq) };
      bytes += size;
      const delivery: Record<string, { state: string; attempts: number; lastError: string | null }> = {};
      for (const [name, d] of Object.entries(entry.delivery)) delivery[name] = { state: d.state, attempts: d.attempts, lastError: d.lastError };
      out.push({ ...entry.alert, delivery });
      lastSeq = entry.seq;
    }
    return { alerts: out, next: null };
  }

  // ------------------------------------------------------------ outbox (for the dispatcher)

  /** Every outbox entry with a delivery not yet final (to resume after a restart). */
  unfinishedDeliveries(): OutboxEntry[] {
    // Through the index of unfinished entries: a start does not read the finished ones.
    const out: OutboxEntry[] = [];
    for (const { key } of this.store.range('unfinished')) {
      const stored = outboxFromStoredForm(this.store.get<OutboxEntry | string>('outbox', key));
      if (!stored) continue;
      const entry = this.freshest(stored);
      if (hasUnfinished(entry)) out.push(entry);
    }
    return out;
  }

  /** The newest copy of an outbox entry: changed since the last commit, or as stored. */
  private freshest(stored: OutboxEntry): OutboxEntry {
    return this.outboxDirty.get(stored.seq) ?? stored;
  }

  /** Records a delivery attempt's result; written with the next commit. */
  updateDelivery(seq: number, name: string, state: DeliveryState): void {
    const known = this.outboxDirty.get(seq) ?? outboxFromStoredForm(this.store.get<OutboxEntry | string>('outbox', seq));
    if (!known) return;
    const prev = known.delivery[name];
    // A delivery the core gave up meanwhile (a bound) stays failed, unless it was delivered after all.
    if (prev && !unfinishedState(prev.state) && (state.state !== 'delivered' || prev.state === 'delivered')) return;
    const entry: OutboxEntry = { ...known, delivery: { ...known.delivery } };
    this.applyState(entry, name, state);
    this.outboxDirty.set(seq, entry);
    this.scheduleCommit();
  }

  /**
   * Queues failed deliveries again (state `pending`, attempts from 0, their age from now): those
   * of one alert (`alertId`), or every failed delivery of a sink kind (`sink`), or both
   * filters. Resolves after the commit that holds it, with how many were queued; null when
   * `alertId` names no alert in the outbox. The dispatcher picks them up (onDeliveriesRequeued).
   */
  async retryDeliveries(filter: { alertId?: string; sink?: string }): Promise<number | null> {
    if (!this.open) throw new ServiceError('VIGIL_ERR_NOT_READY', 'the service is not ready', 503);
    const candidates: OutboxEntry[] = [];
    if (filter.alertId !== undefined) {
      const seq = this.store.get<number>('alertIds', filter.alertId);
      const stored = seq === undefined ? undefined : outboxFromStoredForm(this.store.get<OutboxEntry | string>('outbox', seq));
      if (!stored) return null;
      candidates.push(this.freshest(stored));
    } else {
      // Admin action: one pass over the outbox (bounded by its size), keeping only what matches.
      for (const { value } of this.store.range<OutboxEntry | string>('outbox')) {
        const entry = this.freshest(outboxFromStoredForm(value)!);
        for (const name in entry.delivery) {
          const d = entry.delivery[name]!;
          if (d.state === 'failed' && d.sink === filter.sink) {
            candidates.push(entry);
            break;
          }
        }
      }
    }
    const now = this.now();
    const requeued: OutboxEntry[] = [];
    let n = 0;
    for (const entry of candidates) {
      let copy: OutboxEntry | null = null;
      for (const [name, d] of Object.entries(entry.delivery)) {
        if (d.state !== 'failed' || (filter.sink !== undefined && d.sink !== filter.sink)) continue;
        copy ??= { ...entry, delivery: { ...entry.delivery } };
        this.applyState(copy, name, { sink: d.sink, state: 'pending', attempts: 0, lastError: null, nextAttemptAt: null, deliveredAt: null, queuedAt: now });
        n++;
      }
      if (copy) {
        this.outboxDirty.set(copy.seq, copy);
        requeued.push(copy);
      }
    }
    if (n === 0) return 0;
    await this.afterCommit();
    this.logger.info({ deliveries: n, alerts: requeued.length, ...filter }, 'failed alert deliveries queued again');
    for (const l of this.requeueListeners) l(requeued);
    return n;
  }

  /** Deliveries not delivered nor failed yet, per sink kind: kept incrementally, O(1). */
  outboxBacklog(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [sink, n] of this.backlog) if (n > 0) out[sink] = n;
    return out;
  }

  /** The outbox's totals (for tests and diagnostics). */
  outboxTotals(): { count: number; bytes: number; backlogCount: number; backlogBytes: number } {
    return { count: this.outboxCount, bytes: this.outboxBytes, backlogCount: this.backlogCount, backlogBytes: this.backlogBytes };
  }

  // ------------------------------------------------------------ backtest, savepoints, close

  /**
   * Runs a rule over events in a fresh engine, in a work thread (bounded in time, memory, events
   * and partial matches). A given text replaces the loaded rules of the same names.
   */
  async backtest(input: BacktestInput): Promise<BacktestResult> {
    const out = await this.work.backtest(this.ruleSources(), { text: input.text, id: input.id, events: input.events, ...(input.stream !== undefined ? { stream: input.stream } : {}) });
    if (out.notFound) throw new ServiceError('VIGIL_ERR_RULE_NOT_FOUND', `no rule '${input.id}'`, 404);
    return { records: out.records, errors: out.errors, diagnostics: out.diagnostics };
  }

  /** A consistent copy of the whole state; `vigil serve --from-savepoint PATH` starts from one. */
  async savepoint(): Promise<string> {
    await this.commitNow();
    const stamp = new Date(this.now()).toISOString().replace(/[:.]/g, '-');
    const target = resolve(this.options.dataDir, 'savepoints', stamp);
    await this.store.backup(target);
    this.logger.info({ path: target }, 'savepoint written');
    this.pruneSavepoints();
    return target;
  }

  /** Keeps the newest `savepointsKeep` savepoints (their names are ISO times: they sort by age). */
  private pruneSavepoints(): void {
    const dir = resolve(this.options.dataDir, 'savepoints');
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => /^\d{4}-\d{2}-\d{2}T/.test(n)).sort();
    } catch {
      return;
    }
    for (const name of names.slice(0, Math.max(0, names.length - this.savepointsKeep))) {
      try {
        rmSync(join(dir, name), { recursive: true, force: true });
        this.pruned.savepoints++;
        this.logger.info({ path: join(dir, name), keep: this.savepointsKeep }, 'old savepoint deleted');
      } catch (err) {
        this.logger.warn({ path: join(dir, name), error: (err as Error).message }, 'old savepoint not deleted');
      }
    }
  }

  async close(): Promise<void> {
    if (!this.open) {
      await this.store.close();
      return;
    }
    if (this.ticker) clearInterval(this.ticker);
    for (const b of this.lateBursts.values()) if (b.timer) clearTimeout(b.timer);
    this.watcher?.close();
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    await this.work.close();
    await this.commitNow();
    this.open = false;
    for (const [why, b] of this.giveUpLog) {
      if (b.timer) clearTimeout(b.timer);
      if (b.alerts > 0) this.logger.error({ reason: why, alerts: b.alerts, deliveries: b.deliveries, firstAlert: b.firstAlert, lastAlert: b.lastAlert }, `alert deliveries given up: ${b.reason}`);
    }
    await this.store.close();
  }
}

/**
 * The summary's steps with the negated ones (`then not`, `next not`, a trailing absence) put
 * back where the pattern has them: they are guards in the graph, not steps of it.
 */
function withNegatedSteps(rule: CompiledRule, positive: Omit<Extract<SummaryStep, { negated: false }>, 'negated'>[]): SummaryStep[] {
  const inGraph = new Set(rule.graph.steps.map((s) => s.name));
  const absenceMs = rule.graph.steps.flatMap((s) => s.finals).find((f) => f.absenceMs !== null)?.absenceMs ?? null;
  const negated = rule.stepNames.map((name, id) => ({ name, id })).filter((n) => !inGraph.has(n.name));
  const last = negated.length > 0 ? negated[negated.length - 1]! : null;
  const entry = (n: { name: string; id: number }): SummaryStep => {
    const absence = absenceMs !== null && n === last && n.id === rule.stepNames.length - 1;
    return { name: n.name, negated: true, kind: absence ? 'absence' : 'negation', forMs: absence ? absenceMs : null };
  };
  const ids = new Map(rule.stepNames.map((name, id) => [name, id]));
  const out: SummaryStep[] = [];
  let next = 0;
  for (const s of positive) {
    const id = ids.get(s.name) ?? -1;
    while (next < negated.length && negated[next]!.id < id) out.push(entry(negated[next++]!));
    out.push({ ...s, negated: false });
  }
  while (next < negated.length) out.push(entry(negated[next++]!));
  return out;
}

/** Texts to compile instead of the loaded ones. */
interface SourceOverrides {
  files?: Map<string, string>;
  api?: Map<string, string>;
  streams?: Map<string, { text: string; updatedAt: string }>;
}

/** An API stream as stored in meta 'apiStreams' (one list: there are few). */
interface StoredApiStream {
  name: string;
  text: string;
  updatedAt: string;
}

/** A rule's counters as stored in `meta` under ['ruleCounters', name], written at commit. */
interface StoredRuleCounters {
  v: 1;
  /** The rule version they count (a new version starts from zero). */
  version: number;
  counters: RuleRuntime['counters'];
  /** Partial matches dropped by pattern changes, over every version. */
  droppedByChange: number;
}

function ruleCountersKey(name: string): [string, string] {
  return ['ruleCounters', name];
}

/** Counters only grow while a rule runs: their sum tells whether they changed since a write. */
function counterSum(rr: RuleRuntime, droppedByChange: number): number {
  const c = rr.counters;
  return c.eventsIn + c.unkeyed + c.matches + c.timeouts + c.timeoutsDropped + c.discardedBySkip + c.droppedByMaxPartials + c.throttled + droppedByChange;
}

function hasErrors(p: CompiledProgram): boolean {
  return p.diagnostics.some((d) => d.severity === 'error');
}

/**
 * An outbox entry as stored: as JSON text when its alert holds a lone surrogate (in its key or
 * a bound event, and so maybe in its message), which msgpack cannot store (core/lone-surrogates.ts).
 */
function storedOutboxForm(entry: OutboxEntry): OutboxEntry | string {
  const a = entry.alert;
  let holds = storedKeyForm(a.key) !== a.key;
  for (const step in a.events) {
    if (holds) break;
    for (const d of a.events[step]!) {
      if (d !== null && typeof d === 'object' && isMarked(d)) {
        holds = true;
        break;
      }
    }
  }
  return holds ? JSON_FORM_MARKER + JSON.stringify(entry) : entry;
}

function outboxFromStoredForm(stored: OutboxEntry | string | undefined): OutboxEntry | undefined {
  if (typeof stored !== 'string') return stored;
  const entry = JSON.parse(stored.slice(JSON_FORM_MARKER.length)) as OutboxEntry;
  // Written again (delivery states change): it must keep its stored form.
  for (const step in entry.alert.events) for (const d of entry.alert.events[step]!) if (d !== null && typeof d === 'object') mark(d);
  return entry;
}

/** The reason given for an event over the maximum event size. */
function tooLargeText(bytes: number, maxBytes: number, fromStream: boolean): string {
  const setting = fromStream ? "the stream's 'max size' clause" : 'VIGIL_MAX_EVENT_BYTES';
  return `the event is ${bytes} bytes, over the maximum event size of ${maxBytes} bytes (${setting})`;
}

/** True while some delivery of the entry is not final. */
function hasUnfinished(entry: OutboxEntry): boolean {
  for (const name in entry.delivery) if (unfinishedState(entry.delivery[name]!.state)) return true;
  return false;
}

/** Size of a value as UTF-8 JSON: what the byte bounds of the outbox and the late output count. */
function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
  } catch {
    return 0;
  }
}

function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

/** An Idempotency-Key as stored: itself, or the SHA-256 of a long one (LMDB keys are limited). */
function storedKey(key: string): string {
  return key.length <= 400 ? key : `#sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** A paging cursor is the position of the last item of the previous page. */
function parseCursor(cursor: string): number {
  if (!/^\d{1,15}$/.test(cursor)) throw new ServiceError('VIGIL_ERR_BAD_REQUEST', `'${cursor.slice(0, 40)}' is not a cursor from a previous page`, 400);
  return Number(cursor);
}

/** How `?key=` names a key: a string as itself, anything else as its JSON. */
function keyText(key: Json): string {
  return typeof key === 'string' ? key : JSON.stringify(key);
}

function clampLimit(n: number | undefined): number {
  if (n === undefined || !Number.isFinite(n)) return 100;
  return Math.max(1, Math.min(1000, Math.floor(n)));
}

