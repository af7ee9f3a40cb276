// `vigil run RULES... --events FILE|-`: evaluates rules over a recorded stream (service.md §1).
// The input is bounded, so it ends with the watermark at +∞ (or at `until`, where time stops). Standard output carries only the
// records (one JSON object per line: alert records, and late events as
// `{"kind":"late","stream":...,"event":{...}}`); every warning and error goes to `errors`
// (standard error). The golden corpus calls `runReplay`, the same code as the command.

import type { AlertRecord, LateRecord } from '../core/alert.js';
import { renderDiagnostic } from '../core/diagnostics.js';
import type { EvalScope, Json } from '../core/event.js';
import { compileSources, type CompileOptions, type CompiledAlert, type CompiledRule, type SourceFile } from '../compiler/rule.js';
import type { CompiledStream } from '../compiler/streams.js';
import { Engine } from '../runtime/engine.js';

export interface ReplayInput {
  rules: SourceFile[];
  /** NDJSON text, or its lines as they are read. */
  events: string | AsyncIterable<string>;
  /** Name used in error messages for the events input. */
  eventsName?: string;
  /** Puts every line on this stream. */
  stream?: string;
  /** Called for each alert, synchronously, while `scope` still holds its match (e.g. for `--deliver`). */
  onAlert?: (record: AlertRecord, alert: CompiledAlert, scope: EvalScope) => void;
  /**
   * Where time stops (epoch ms): the input ends with W = until instead of +∞, so timers
   * (absences, `within` expiries) later than that do not fire. Default: +∞.
   */
  until?: number;
  /** Wall-clock time (epoch ms) after which the replay stops early (exit code 1, an error line); for rule tests run by the service. */
  deadline?: number;
  /** Called once at the end with what happened to the input, per stream. */
  onSummary?: (summary: ReplaySummary) => void;
  /** Compile options (the env() prefix, the webhook address policy with `--deliver`). */
  compile?: CompileOptions;
  /** Called after each event taken in (a backtest checks its limits here; it may throw to stop). */
  onProgress?: (engine: Engine) => void;
}

/** What a replay did with its input: per stream, and the lines that reached no stream. */
export interface ReplaySummary {
  /** Non-blank lines read. */
  lines: number;
  streams: { name: string; read: number; accepted: number; late: number; rejected: number; watermarkMs: number }[];
  /** Lines that reached no stream: invalid JSON, not an object, no stream to put them on, bad `$watermark`. */
  unrouted: number;
  /** Watermark markers read. */
  watermarks: number;
}

/** Share of a stream's events that must be late for the "not in time order" hint. */
export const LATE_HINT_SHARE = 0.1;

/** The summary as `vigil run` prints it on standard error (one line per stream, then the hints). */
export function renderSummary(s: ReplaySummary): string[] {
  const out: string[] = [];
  const parts = [`${s.lines} line(s) read`];
  if (s.watermarks > 0) parts.push(`${s.watermarks} watermark marker(s)`);
  if (s.unrouted > 0) parts.push(`${s.unrouted} rejected before reaching a stream`);
  out.push(`vigil run: ${parts.join(', ')}`);
  for (const st of s.streams) {
    out.push(`vigil run: stream '${st.name}': ${st.read} read, ${st.accepted} accepted, ${st.late} late, ${st.rejected} rejected`);
  }
  for (const st of s.streams) {
    const timed = st.accepted + st.late;
    if (st.late >= 2 && st.late >= timed * LATE_HINT_SHARE) {
      out.push(
        `vigil run: hint: ${Math.round((100 * st.late) / timed)}% of the events of stream '${st.name}' were late: the input is not in time order for its watermark (${st.watermarkMs} ms); sort it by time or raise the stream's 'watermark'`,
      );
    }
  }
  return out;
}

/** `--until` text: ISO-8601 with a zone, or epoch milliseconds; null when it is neither. */
export function parseUntil(text: string): number | null {
  if (/^-?\d+$/.test(text.trim())) return Number(text.trim());
  if (!/(Z|[+-]\d\d:?\d\d)$/i.test(text.trim())) return null;
  const ms = Date.parse(text.trim());
  return Number.isNaN(ms) ? null : ms;
}

export type OutputRecord = AlertRecord | LateRecord;

export interface ReplayResult {
  records: OutputRecord[];
  errors: string[];
  exitCode: number;
}

/** Runs a replay and collects its output. */
export async function runReplay(input: ReplayInput): Promise<ReplayResult> {
  const records: OutputRecord[] = [];
  const errors: string[] = [];
  const exitCode = await replay(input, (r) => records.push(r), (e) => errors.push(e));
  return { records, errors, exitCode };
}

/** Runs a replay, streaming records and error lines to the callbacks; resolves to the exit code. */
export async function replay(input: ReplayInput, onRecord: (r: OutputRecord) => void, onError: (line: string) => void): Promise<number> {
  const program = compileSources(input.rules, input.compile);
  for (const d of program.diagnostics) onError(renderDiagnostic(d, program.sources.get(d.file)));
  if (program.diagnostics.some((d) => d.severity === 'error')) return 1;
  return replayCompiled(program.rules, [...program.streams.values()], input, onRecord, onError);
}

/** Runs compiled rules over NDJSON events in a fresh in-memory engine (also the backtest of the service). */
export async function replayCompiled(
  rules: CompiledRule[],
  streams: CompiledStream[],
  input: Omit<ReplayInput, 'rules'>,
  onRecord: (r: OutputRecord) => void,
  onError: (line: string) => void,
): Promise<number> {
  const program = { rules };
  const engine = new Engine({
    output: {
      alert: (record, alert, _rule, scope) => {
        onRecord(record);
        input.onAlert?.(record, alert, scope);
      },
      late: (stream, event) => onRecord({ kind: 'late', stream, event: event.data }),
    },
  });
  for (const s of streams) engine.setStream(s);
  for (const r of rules) engine.setRule(r);

  const read = new Set<string>();
  for (const r of program.rules) for (const s of r.streams) read.add(s);
  if (input.stream !== undefined && !engine.streams.has(input.stream)) {
    onError(`vigil run: unknown stream '${input.stream}' (the rules read: ${[...read].join(', ') || 'none'})`);
    return 1;
  }
  const only = read.size === 1 ? [...read][0]! : undefined;
  const name = input.eventsName ?? 'events';
  // For the summary: what the engine does not count (lines, markers, events for an unknown stream).
  let lines = 0;
  let watermarks = 0;
  const unknownStreams = new Map<string, number>();

  let lineNo = 0;
  const onLine = (line: string): void => {
    lineNo++;
    if (line.trim() === '') return;
    lines++;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      onError(`${name}:${lineNo}: invalid JSON: ${(err as Error).message}`);
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      onError(`${name}:${lineNo}: rejected: an event must be a JSON object`);
      return;
    }
    const obj = value as { [k: string]: Json };
    if ('$watermark' in obj) {
      const w = obj.$watermark;
      if (typeof w !== 'number' || !Number.isFinite(w)) onError(`${name}:${lineNo}: rejected: "$watermark" must be a number (epoch ms)`);
      else {
        engine.advanceWatermark(w);
        watermarks++;
      }
      return;
    }
    let stream = input.stream;
    let event: { [k: string]: Json } = obj;
    if ('$stream' in obj) {
      const { $stream, ...rest } = obj;
      event = rest;
      if (stream === undefined) {
        if (typeof $stream !== 'string') {
          onError(`${name}:${lineNo}: rejected: "$stream" must be a stream name`);
          return;
        }
        stream = $stream;
      }
    }
    stream ??= only;
    if (stream === undefined) {
      onError(`${name}:${lineNo}: rejected: cannot tell the stream of this event: the rules read ${[...read].join(', ')}; use --stream NAME or a "$stream" field`);
      return;
    }
    const result = engine.ingest(stream, event, Date.now());
    if (result.status === 'rejected') onError(`${name}:${lineNo}: rejected: ${result.error}`);
    else input.onProgress?.(engine);
    if (!engine.streams.has(stream)) unknownStreams.set(stream, (unknownStreams.get(stream) ?? 0) + 1);
  };

  if (typeof input.events === 'string') {
    // With a string the whole replay runs synchronously (rule tests rely on it).
    const deadline = input.deadline;
    for (const line of input.events.split('\n')) {
      if (deadline !== undefined && (lineNo & 63) === 63 && Date.now() > deadline) {
        onError(`${name}: stopped after ${lineNo} line(s): time limit reached`);
        return 1;
      }
      onLine(line);
    }
  } else {
    for await (const line of input.events) onLine(line);
  }
  if (input.until === undefined) engine.end();
  else engine.advanceWatermark(input.until);
  if (input.onSummary) {
    // A fresh engine: its stream counters are this input's.
    const streams: ReplaySummary['streams'] = [];
    for (const st of engine.streams.values()) {
      const { accepted, late, rejected } = st.counters;
      const read = accepted + late + rejected;
      if (read > 0) streams.push({ name: st.compiled.name, read, accepted, late, rejected, watermarkMs: st.compiled.watermarkMs });
    }
    for (const [s, n] of unknownStreams) streams.push({ name: s, read: n, accepted: 0, late: 0, rejected: n, watermarkMs: 0 });
    const routed = streams.reduce((a, st) => a + st.read, 0);
    input.onSummary({ lines, streams, unrouted: lines - watermarks - routed, watermarks });
  }
  return 0;
}
