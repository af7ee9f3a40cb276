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
import { readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { pino, type Logger } from 'pino';
import type { AlertRecord } from '../core/alert.js';
import { diagnostic, type Diagnostic } from '../core/diagnostics.js';
import type { Json, StreamEvent } from '../core/event.js';
import { compileSources, type CompiledProgram, type CompiledRule, type SourceFile } from '../compiler/rule.js';
import { replayCompiled, type OutputRecord } from '../cli/run.js';
import { DEFAULT_TEST_TIME_LIMIT_MS, testGate } from '../cli/rule-tests.js';
import { FINAL } from '../nfa/graph.js';
import { Engine, type StreamRuntime } from '../runtime/engine.js';
import { deliveryName, renderDeliveries } from '../runtime/deliveries.js';
import { newJournal, type RuleRuntime } from '../runtime/rule-runtime.js';
import type { KeyState } from '../nfa/nfa.js';
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
  type RuleDetail,
  type RuleInfo,
  type ServiceOptions,
  type StreamInfo,
} from './types.js';

const API_FILE_PREFIX = 'api:';
/** Waiting answers past which a commit starts at once (see afterCommit). */
const EAGER_COMMIT_WAITERS = 1000;

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
  private readonly outboxKeep: number;

  /** Rules directory files (path → text) and API rule texts (name → text). */
  private readonly fileSources = new Map<string, string>();
  private readonly apiSources = new Map<string, string>();
  private program: CompiledProgram;
  private readonly ruleMeta = new Map<string, RuleMeta>();
  /** Partial matches dropped because a rule's pattern changed, per rule (GET /rules counters). */
  readonly droppedByChange = new Map<string, number>();
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
  private readonly lateSeqs = new Map<string, number[]>();
  private outboxCount = 0;
  private outboxOldest = 0;

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
    this.outboxKeep = options.outboxKeep ?? 100_000;
    this.engine = new Engine({
      now: this.now,
      output: {
        alert: (record, alert, _rule, scope) => {
          const deliveries = renderDeliveries(record, alert, scope);
          const entry: OutboxEntry = { seq: this.alertSeq++, alert: record, deliveries: {}, delivery: {}, raisedAt: this.now() };
          deliveries.forEach((d, i) => {
            const name = deliveryName(d, i);
            entry.deliveries[name] = d;
            entry.delivery[name] = { sink: d.kind, state: 'pending', attempts: 0, lastError: null, nextAttemptAt: null, deliveredAt: null };
          });
          this.pendingAlerts.push(entry);
        },
        late: (stream, event) => {
          this.pendingLate.push({ seq: event.seq, stream, time: event.time, arrivalTime: new Date(this.now()).toISOString(), event: event.data });
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
    if (this.options.rulesDir) for (const [f, t] of this.readRulesDir()) this.fileSources.set(f, t);

    // Files that do not compile are left out (with their errors) so the rest can run.
    let program = this.compile();
    for (let guard = 0; guard < 100 && hasErrors(program); guard++) {
      const bad = program.diagnostics.find((d) => d.severity === 'error')!;
      if (bad.file.startsWith(API_FILE_PREFIX)) {
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
      }
    }
    let restoredKeys = 0;
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
      this.ruleMeta.set(rule.name, { version: rule.version, ...origin, text, fingerprint: rule.fingerprint, updatedAt: sameText ? before!.updatedAt : new Date(this.now()).toISOString() });
      if (!sameText || before?.fingerprint !== rule.fingerprint) this.pendingOps.push({ db: 'rules', key: rule.name, value: this.storedRule(rule.name) });
    }
    for (const name of stored.keys()) {
      if (!this.engine.rules.has(name)) {
        this.dropStoredState(name);
        this.pendingOps.push({ db: 'rules', key: name });
      }
    }
    for (const { key } of store.range('late')) {
      const [stream, seq] = key as [string, number];
      let seqs = this.lateSeqs.get(stream);
      if (!seqs) this.lateSeqs.set(stream, (seqs = []));
      seqs.push(seq);
    }
    for (const { key } of store.range('outbox')) {
      if (this.outboxCount === 0) this.outboxOldest = key as number;
      this.outboxCount++;
    }
    // Timers that came due while the service was down fire with the next watermark advance.
    this.open = true;
    this.startTicker();
    if (this.options.rulesDir && this.options.watchRules !== false) this.watchRulesDir();
    await this.commitNow();
    this.logger.info({ rules: this.engine.rules.size, streams: this.engine.streams.size, keys: restoredKeys, ms: Date.now() - started }, 'state recovered');
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

  private sourceList(overrides?: { files?: Map<string, string>; api?: Map<string, string> }): SourceFile[] {
    const files = overrides?.files ?? this.fileSources;
    const api = overrides?.api ?? this.apiSources;
    return [
      ...[...files].map(([file, text]) => ({ file, text })),
      ...[...api].map(([name, text]) => ({ file: API_FILE_PREFIX + name, text })),
    ];
  }

  private compile(overrides?: { files?: Map<string, string>; api?: Map<string, string> }): CompiledProgram {
    return compileSources(this.sourceList(overrides), {
      env: this.options.env,
      configuredSinks: this.options.configuredSinks,
      tests: { maxEvents: this.options.testMaxEvents, readEventsFile: (file, path) => this.readTestEvents(file, path) },
    });
  }

  /** `given S from "PATH"` in a loaded text: only files of the rules directory may read files (beside them). */
  private readTestEvents(file: string, path: string): string {
    const dir = this.options.rulesDir;
    if (file.startsWith(API_FILE_PREFIX) || !dir) throw new Error('a test sent over the API cannot read files; give its events inline');
    const target = resolve(dirname(file), path);
    if (!target.startsWith(resolve(dir) + sep)) throw new Error('the file is outside the rules directory');
    return readFileSync(target, 'utf8');
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
      if (!program.streams.has(name) && st.rules.length === 0) this.engine.streams.delete(name);
    }
    this.program = program;
    this.scheduleCommit();
    if (result.size > 0) for (const l of this.ruleChangeListeners) l(result);
    return result;
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
    const meta = this.ruleMeta.get(id);
    if (meta && meta.origin === 'file') {
      return { ok: false, status: 409, errors: [syntheticError(`rule '${id}' comes from ${meta.file}: edit the file instead`)] };
    }
    const file = API_FILE_PREFIX + id;
    const api = new Map(this.apiSources);
    api.set(id, text);
    const program = this.compile({ api });
    const own = program.rules.filter((r) => r.file === file);
    const errors = program.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length === 0 && (own.length !== 1 || own[0]!.name !== id)) {
      const names = own.map((r) => `'${r.name}'`).join(', ');
      errors.push(syntheticError(own.length === 0 ? `the text declares no rule named '${id}'` : `the text must declare exactly one rule, named '${id}' (found ${names})`, file));
    }
    if (errors.length > 0) {
      this.ruleLoadFailed(errors);
      this.logger.warn({ rule: id, errors: errors.length, first: `${errors[0]!.line}:${errors[0]!.col}: ${errors[0]!.message}` }, 'rule refused: it does not compile; the old version keeps running');
      return { ok: false, status: 400, errors: errors.map((d) => ({ ...d, file: d.file.startsWith(API_FILE_PREFIX) ? 'request' : d.file })) };
    }
    // Tests gate the load (language §13): a failing one refuses the text, the old version runs on.
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
      warnings: program.diagnostics.filter((d) => d.severity === 'warning' && d.file === file).map((d) => ({ ...d, file: 'request' })),
    };
  }

  validateRule(text: string, id?: string): { errors: Diagnostic[]; warnings: Diagnostic[] } {
    const api = new Map(this.apiSources);
    const name = id ?? '\u0000validate';
    api.set(name, text);
    const file = API_FILE_PREFIX + name;
    const program = this.compile({ api });
    const rename = (d: Diagnostic) => ({ ...d, file: d.file === file ? 'request' : d.file });
    return {
      errors: program.diagnostics.filter((d) => d.severity === 'error').map(rename),
      warnings: program.diagnostics.filter((d) => d.severity === 'warning' && d.file === file).map(rename),
    };
  }

  async deleteRule(id: string): Promise<boolean> {
    const meta = this.ruleMeta.get(id);
    if (!meta) return false;
    if (meta.origin === 'file') throw new ServiceError('VIGIL_ERR_RULE_FROM_FILE', `rule '${id}' comes from ${meta.file}: remove it from the file`, 409);
    const api = new Map(this.apiSources);
    api.delete(id);
    const program = this.compile({ api });
    this.apiSources.delete(id);
    this.reconcile(program);
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
    for (let guard = 0; guard < 100 && hasErrors(program); guard++) {
      const bad = program.diagnostics.find((d) => d.severity === 'error')!;
      const errors = program.diagnostics.filter((d) => d.file === bad.file);
      this.fileErrors.set(bad.file, errors);
      failed.add(bad.file);
      for (const d of errors.filter((x) => x.severity === 'error')) {
        this.logger.error({ file: d.file, line: d.line, col: d.col, code: d.code, error: d.message }, 'rules file does not compile; its previous version keeps running');
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
    return [...this.engine.rules.values()].map((rr) => this.ruleInfo(rr));
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
        steps: g.steps.map((s) => ({
          name: s.name,
          min: s.min,
          max: s.max === Infinity ? null : s.max,
          loop: s.loop === 0 ? 'consecutive' : s.loop === 1 ? 'relaxed' : 'combinations',
          greedy: s.greedy,
          until: s.until !== null,
          exits: s.exits.map((x) => ({ to: x.target === FINAL ? '(end)' : g.steps[x.target]!.name, link: link(x.link), guards: (x.thenGuards?.length ?? 0) + (x.nextGuards?.length ?? 0) })),
          final: s.finals.length > 0,
        })),
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
    for (let i = 0; i < events.length; i++) {
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
      };
      ops.push({ db: 'streams', key: st.compiled.name, value: v });
    }
    this.dirtyStreams.clear();
    for (const l of this.pendingLate) {
      ops.push({ db: 'late', key: [l.stream, l.seq], value: l });
      let seqs = this.lateSeqs.get(l.stream);
      if (!seqs) this.lateSeqs.set(l.stream, (seqs = []));
      seqs.push(l.seq);
      while (seqs.length > this.lateKeep) ops.push({ db: 'late', key: [l.stream, seqs.shift()!] });
    }
    this.pendingLate = [];
    for (const a of this.pendingAlerts) {
      ops.push({ db: 'outbox', key: a.seq, value: a });
      ops.push({ db: 'alertIds', key: a.alert.id, value: a.seq });
      this.outboxCount++;
    }
    for (const [seq, entry] of this.outboxDirty) ops.push({ db: 'outbox', key: seq, value: entry });
    this.outboxDirty.clear();
    // Keep the outbox bounded: the oldest alerts whose deliveries are all final go first. Only
    // stored entries are candidates (those of this commit are newer than any stored one).
    const firstNew = this.pendingAlerts.length > 0 ? this.pendingAlerts[0]!.seq : this.alertSeq;
    while (this.outboxCount > this.outboxKeep && this.outboxOldest < firstNew) {
      const stored = this.store.get<OutboxEntry>('outbox', this.outboxOldest);
      if (stored) {
        const entry = this.freshest(stored);
        if (Object.values(entry.delivery).some((d) => d.state === 'pending' || d.state === 'retrying')) break;
        ops.push({ db: 'outbox', key: entry.seq });
        ops.push({ db: 'alertIds', key: entry.alert.id });
        this.outboxDirty.delete(entry.seq);
        this.outboxCount--;
      }
      this.outboxOldest++;
    }
    ops.push({ db: 'meta', key: 'seq', value: this.engine.seq });
    ops.push({ db: 'meta', key: 'alertSeq', value: this.alertSeq });
    return ops;
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
    if (this.dirtyStreams.size > 0 || this.pendingAlerts.length > 0) this.scheduleCommit();
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
      rules: st.rules.map((r) => r.rule.name),
      sources: st.compiled.sources,
    }));
  }

  late(stream: string, opts: { limit?: number; cursor?: string } = {}): { late: LateEntry[]; next: string | null } {
    if (!this.engine.streams.has(stream)) throw new ServiceError('VIGIL_ERR_STREAM_NOT_FOUND', `unknown stream '${stream}'`, 404);
    const limit = clampLimit(opts.limit);
    const below = opts.cursor !== undefined ? parseCursor(opts.cursor) : Infinity;
    const out: LateEntry[] = [];
    for (const { value } of this.store.range<LateEntry>('late', { start: [stream, below === Infinity ? Number.MAX_SAFE_INTEGER : below - 1], end: [stream, -1], reverse: true })) {
      if (out.length === limit) return { late: out, next: String(out[out.length - 1]!.seq) };
      out.push(value);
    }
    return { late: out, next: null };
  }

  alerts(q: AlertQuery = {}): { alerts: (AlertRecord & { delivery: Record<string, { state: string; attempts: number; lastError: string | null }> })[]; next: string | null } {
    const limit = clampLimit(q.limit);
    const below = q.cursor !== undefined ? parseCursor(q.cursor) : Number.MAX_SAFE_INTEGER;
    const wantKey = q.key;
    const out: (AlertRecord & { delivery: Record<string, { state: string; attempts: number; lastError: string | null }> })[] = [];
    let lastSeq = -1;
    for (const { value } of this.store.range<OutboxEntry>('outbox', { start: below - 1, end: -1, reverse: true })) {
      const entry = this.freshest(value);
      if (q.rule !== undefined && entry.alert.rule !== q.rule) continue;
      if (wantKey !== undefined && keyText(entry.alert.key) !== wantKey) continue;
      if (q.since !== undefined && entry.raisedAt < q.since) break;
      if (out.length === limit) return { alerts: out, next: String(lastSeq) };
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
    const out: OutboxEntry[] = [];
    for (const { value } of this.store.range<OutboxEntry>('outbox')) {
      const entry = this.freshest(value);
      if (Object.values(entry.delivery).some((d) => d.state === 'pending' || d.state === 'retrying')) out.push(entry);
    }
    return out;
  }

  /** The newest copy of an outbox entry: changed since the last commit, or as stored. */
  private freshest(stored: OutboxEntry): OutboxEntry {
    return this.outboxDirty.get(stored.seq) ?? stored;
  }

  /** Records a delivery attempt's result; written with the next commit. */
  updateDelivery(seq: number, name: string, state: DeliveryState): void {
    const known = this.outboxDirty.get(seq) ?? this.store.get<OutboxEntry>('outbox', seq);
    if (!known) return;
    const entry: OutboxEntry = { ...known, delivery: { ...known.delivery } };
    entry.delivery[name] = state;
    this.outboxDirty.set(seq, entry);
    this.scheduleCommit();
  }

  outboxBacklog(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.unfinishedDeliveries()) {
      for (const d of Object.values(e.delivery)) if (d.state === 'pending' || d.state === 'retrying') out[d.sink] = (out[d.sink] ?? 0) + 1;
    }
    return out;
  }

  // ------------------------------------------------------------ backtest, savepoints, close

  async backtest(input: BacktestInput): Promise<BacktestResult> {
    let rules: CompiledRule[];
    let program: CompiledProgram;
    if (input.text !== null) {
      const name = '\u0000backtest';
      const api = new Map(this.apiSources);
      api.set(name, input.text);
      program = this.compile({ api });
      const file = API_FILE_PREFIX + name;
      const diagnostics = program.diagnostics.filter((d) => d.file === file).map((d) => ({ ...d, file: 'request' }));
      if (diagnostics.some((d) => d.severity === 'error')) return { records: [], errors: [], diagnostics };
      rules = program.rules.filter((r) => r.file === file);
      if (rules.length === 0) return { records: [], errors: [], diagnostics: [...diagnostics, syntheticError('the text declares no rule', 'request')] };
    } else {
      const rr = input.id !== null ? this.engine.rules.get(input.id) : undefined;
      if (!rr) throw new ServiceError('VIGIL_ERR_RULE_NOT_FOUND', `no rule '${input.id}'`, 404);
      program = this.program;
      rules = [rr.rule];
    }
    const streams = [...new Set(rules.flatMap((r) => r.streams))].map((s) => program.streams.get(s)!).filter(Boolean);
    const records: OutputRecord[] = [];
    const errors: string[] = [];
    await replayCompiled(rules, streams, { events: input.events, stream: input.stream, eventsName: 'events' }, (r) => records.push(r), (e) => errors.push(e));
    return { records, errors, diagnostics: [] };
  }

  /** A consistent copy of the whole state; `vigil serve --from-savepoint PATH` starts from one. */
  async savepoint(): Promise<string> {
    await this.commitNow();
    const stamp = new Date(this.now()).toISOString().replace(/[:.]/g, '-');
    const target = resolve(this.options.dataDir, 'savepoints', stamp);
    await this.store.backup(target);
    this.logger.info({ path: target }, 'savepoint written');
    return target;
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
    await this.commitNow();
    this.open = false;
    await this.store.close();
  }
}

function hasErrors(p: CompiledProgram): boolean {
  return p.diagnostics.some((d) => d.severity === 'error');
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

function syntheticError(message: string, file = 'request'): Diagnostic {
  return diagnostic('error', 'service/rule', message, file, { offset: 0, endOffset: 0, line: 1, col: 1 });
}

