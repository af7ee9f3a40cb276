// What the service does with a rule text sent to it, as plain functions of plain data so that
// they run the same on the event loop (PUT /rules/:id) and in a work thread (validate and
// backtest, work-pool.ts): `checkRuleText` is the one answer of both PUT and validate, and
// `runBacktest` replays events through `vigil run`'s own code (cli/run.ts replayCompiled).

import { diagnostic, type Diagnostic } from '../core/diagnostics.js';
import { compileSources, type CompileOptions, type CompiledProgram, type CompiledRule, type SourceFile } from '../compiler/rule.js';
import { readFileSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { parseProgram } from '../dsl/parser.js';
import { WebhookAddressPolicy } from '../core/webhook-address-policy.js';
import { replayCompiled, type OutputRecord } from '../cli/run.js';
import type { Engine } from '../runtime/engine.js';

/** API rules compile as files named `api:NAME`. */
export const API_FILE_PREFIX = 'api:';

/** The loaded rule texts, as plain data (they cross to the work thread). */
export interface RuleSources {
  /** Rules directory files: path → text. */
  files: [string, string][];
  /** API rules: name → text. */
  api: [string, string][];
  /** Loaded rules that come from a file: name → file (a PUT of such a name is refused). */
  fileRules: [string, string][];
  /** API streams (PUT /streams/:name): name → declaration text. */
  streams?: [string, string][];
  /** Values for env("NAME") in sink settings. */
  env?: Record<string, string | undefined>;
  /** The service's compile settings, as plain data: the same answer on the event loop and in a work thread. */
  settings?: RuleSourceSettings;
}

/** The compile settings of the service (CompileOptions without functions or classes). */
export interface RuleSourceSettings {
  envPrefix?: string;
  /** VIGIL_WEBHOOK_ALLOW entries, and the service's own port (refused unless `self` is allowed). */
  webhookAllow?: string[];
  selfPort?: number | null;
  configuredSinks?: { email: boolean; mqtt: boolean };
  /** The rules directory: only its files' tests may read events files, and only inside it. */
  rulesDir?: string | null;
  /** Most events one rule test may give. */
  testMaxEvents?: number;
}

/**
 * How a `test` block's `given S from "PATH"` reads its file in the service: a text sent over the
 * API reads no file at all; a rules-directory file reads only inside the rules directory.
 */
export function serviceTestFileReader(rulesDir: string | null | undefined): (file: string, path: string) => string {
  return (file, path) => {
    if (file.startsWith(API_FILE_PREFIX) || file.startsWith(STREAM_FILE_PREFIX) || !rulesDir) throw new Error('a test sent over the API cannot read files; give its events inline');
    const target = resolve(dirname(file), path);
    if (!target.startsWith(resolve(rulesDir) + sep)) throw new Error('the file is outside the rules directory');
    return readFileSync(target, 'utf8');
  };
}

export interface RuleTextCheck {
  /** The rule name the text is checked as (the PUT id), or null when the text gives none. */
  id: string | null;
  /** Refused because `id` is a rule from a file (PUT answers 409). */
  fromFile: boolean;
  errors: Diagnostic[];
  warnings: Diagnostic[];
  /** The program with the text in place (null when refused before compiling). */
  program: CompiledProgram | null;
}

/** Which limit of bounded work was hit. */
export type WorkLimitKind = 'time' | 'memory' | 'partial matches' | 'events';

/** Thrown (in the work thread) when a run goes past a limit. */
export class WorkLimit extends Error {
  constructor(
    readonly limit: WorkLimitKind,
    readonly value: number,
  ) {
    super(`work limit: ${limit} (${value})`);
  }
}

/** API streams compile as sources named `api-stream:<name>`. */
export const STREAM_FILE_PREFIX = 'api-stream:';

export function compileRuleSources(src: RuleSources, api: Map<string, string>, replacingFile?: string): CompiledProgram {
  const files: SourceFile[] = [
    ...src.files.map(([file, text]) => ({ file, text })),
    ...[...api].map(([name, text]) => ({ file: API_FILE_PREFIX + name, text })),
    ...(src.streams ?? []).map(([name, text]) => ({ file: STREAM_FILE_PREFIX + name, text })),
  ];
  return compileSources(files, { env: src.env, ...compileSettings(src.settings), ...(replacingFile !== undefined ? { replacingFile } : {}) });
}

/** CompileOptions from the plain settings (the webhook address policy is rebuilt from its entries). */
export function compileSettings(s: RuleSourceSettings | undefined): CompileOptions {
  if (s === undefined) return { tests: { readEventsFile: serviceTestFileReader(null) } };
  const selfPort = s.selfPort ?? null;
  return {
    ...(s.envPrefix !== undefined ? { envPrefix: s.envPrefix } : {}),
    ...(s.configuredSinks !== undefined ? { configuredSinks: s.configuredSinks } : {}),
    tests: { readEventsFile: serviceTestFileReader(s.rulesDir), ...(s.testMaxEvents !== undefined ? { maxEvents: s.testMaxEvents } : {}) },
    ...(s.webhookAllow !== undefined ? { webhookPolicy: new WebhookAddressPolicy(s.webhookAllow, () => (selfPort === null ? null : { port: selfPort })) } : {}),
  };
}

export function syntheticError(message: string, file = 'request'): Diagnostic {
  return diagnostic('error', 'service/rule', message, file, { offset: 0, endOffset: 0, line: 1, col: 1 });
}

/**
 * What `PUT /rules/:id` of `text` answers, and so what `POST /rules/validate` answers: the text
 * compiles together with every loaded rule (replacing the API rule `id`), declares exactly one
 * rule, named `id`, and `id` is not a rule from a file. Without `id`, the text is checked as the
 * PUT under the name of the one rule it declares.
 */
export function checkRuleText(src: RuleSources, text: string, id: string | null): RuleTextCheck {
  if (id === null) {
    const names = parseProgram(text, 'request').program.decls.filter((d) => d.kind === 'rule').map((d) => d.name.name);
    if (names.length === 1) id = names[0]!;
  }
  const fromFile = id === null ? undefined : src.fileRules.find(([name]) => name === id)?.[1];
  if (id !== null && fromFile !== undefined) {
    return { id, fromFile: true, errors: [syntheticError(`rule '${id}' comes from ${fromFile}: edit the file instead`)], warnings: [], program: null };
  }
  const name = id ?? '\u0000request';
  const file = API_FILE_PREFIX + name;
  const api = new Map(src.api);
  api.set(name, text);
  const program = compileRuleSources(src, api);
  const own = program.rules.filter((r) => r.file === file);
  const errors = program.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length === 0 && (id === null || own.length !== 1 || own[0]!.name !== id)) {
    const names = own.map((r) => `'${r.name}'`).join(', ');
    errors.push(
      syntheticError(
        id === null
          ? `the text must declare exactly one rule (found ${own.length === 0 ? 'none' : names}); PUT /rules/:id stores one rule, named as the id`
          : own.length === 0
            ? `the text declares no rule named '${id}'`
            : `the text must declare exactly one rule, named '${id}' (found ${names})`,
        file,
      ),
    );
  }
  const rename = (d: Diagnostic): Diagnostic => (d.file === file ? { ...d, file: 'request' } : d);
  return {
    id,
    fromFile: false,
    errors: errors.map(rename),
    warnings: program.diagnostics.filter((d) => d.severity === 'warning' && d.file === file).map(rename),
    program,
  };
}

export interface BacktestRun {
  /** A rule text to run instead of the loaded rules of the same names, or null for the loaded rule `id`. */
  text: string | null;
  id: string | null;
  /** NDJSON events. */
  events: string;
  stream?: string;
}

export interface BacktestLimits {
  /** Most events (non-empty lines) one backtest may replay. */
  maxEvents: number;
  /** Most partial matches (over every rule and key) a backtest may hold at once. */
  maxPartials: number;
}

export interface BacktestOutput {
  records: OutputRecord[];
  errors: string[];
  diagnostics: Diagnostic[];
  /** The rule is not loaded (only when `text` is null). */
  notFound?: boolean;
}

/**
 * A backtest: the rule (a given text, which replaces the loaded rules of the same names, or the
 * loaded rule `id`) over the events, in a fresh in-memory engine; nothing live is touched.
 */
export async function runBacktest(src: RuleSources, run: BacktestRun, limits: BacktestLimits): Promise<BacktestOutput> {
  let lines = 0;
  for (let i = run.events.indexOf('\n'), from = 0; ; i = run.events.indexOf('\n', from)) {
    const end = i === -1 ? run.events.length : i;
    if (run.events.slice(from, end).trim() !== '') lines++;
    if (lines > limits.maxEvents) throw new WorkLimit('events', limits.maxEvents);
    if (i === -1) break;
    from = i + 1;
  }
  let rules: CompiledRule[];
  let program: CompiledProgram;
  if (run.text !== null) {
    const name = '\u0000backtest';
    const file = API_FILE_PREFIX + name;
    const api = new Map(src.api);
    api.set(name, run.text);
    program = compileRuleSources(src, api, file);
    const diagnostics = program.diagnostics.filter((d) => d.file === file).map((d) => ({ ...d, file: 'request' }));
    if (diagnostics.some((d) => d.severity === 'error')) return { records: [], errors: [], diagnostics };
    rules = program.rules.filter((r) => r.file === file);
    if (rules.length === 0) return { records: [], errors: [], diagnostics: [...diagnostics, syntheticError('the text declares no rule')] };
  } else {
    program = compileRuleSources(src, new Map(src.api));
    const rule = program.rules.find((r) => r.name === run.id);
    if (!rule) return { records: [], errors: [], diagnostics: [], notFound: true };
    rules = [rule];
  }
  const streams = [...new Set(rules.flatMap((r) => r.streams))].map((s) => program.streams.get(s)!).filter(Boolean);
  const records: OutputRecord[] = [];
  const errors: string[] = [];
  // Partial matches are counted over every key, amortized: a count costs one pass over the
  // keys, so the next comes after a sixteenth as many events as there were keys.
  let sinceCount = 0;
  let keysAtCount = 0;
  const onProgress = (engine: Engine): void => {
    if (++sinceCount * 16 < keysAtCount) return;
    sinceCount = 0;
    let partials = 0;
    let keys = 0;
    for (const rr of engine.rules.values()) {
      partials += rr.partialMatches();
      keys += rr.keys.size;
    }
    keysAtCount = keys;
    if (partials > limits.maxPartials) throw new WorkLimit('partial matches', limits.maxPartials);
  };
  await replayCompiled(rules, streams, { events: run.events, stream: run.stream, eventsName: 'events', onProgress }, (r) => records.push(r), (e) => errors.push(e));
  return { records, errors, diagnostics: [] };
}
