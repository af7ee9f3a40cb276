// Bounded work per request (docs/limits.md, "Work per request"): validate and backtest run in
// work threads (node:worker_threads, work-thread.ts), never on the event loop, so ingest and
// /health keep being served meanwhile. Each run is bounded in time (the thread is terminated),
// in memory (the thread's heap limit), and, for a backtest, in events and partial matches; at
// most `concurrency` run at once, and a run beyond that is refused at once (503, Retry-After).
// A limit hit is a clear error (VIGIL_ERR_WORK_LIMIT, naming the limit), never a crash.
// Idle threads are kept for the next run (up to `concurrency`); a stopped one is replaced.

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Diagnostic } from '../core/diagnostics.js';
import type { BacktestLimits, BacktestOutput, BacktestRun, RuleSources, WorkLimitKind } from './rule-text.js';
import { ServiceError } from './types.js';

export interface WorkLimits {
  /** Wall-clock time of one run (ms). */
  timeMs: number;
  /** Heap of one work thread (MiB). */
  memoryMb: number;
  /** Runs at once. */
  concurrency: number;
  /** Events one backtest may replay. */
  maxEvents: number;
  /** Partial matches one backtest may hold at once (over every rule and key). */
  maxPartials: number;
}

export const DEFAULT_WORK_LIMITS: WorkLimits = { timeMs: 10_000, memoryMb: 256, concurrency: 2, maxEvents: 100_000, maxPartials: 200_000 };

export type WorkKind = 'validate' | 'backtest';
/** How a run ended (label `outcome` of vigil_work_runs_total). */
export const WORK_OUTCOMES = ['ok', 'time', 'memory', 'partial_matches', 'events', 'busy', 'failed'] as const;
export type WorkOutcome = (typeof WORK_OUTCOMES)[number];

export type WorkJob =
  | { kind: 'validate'; src: RuleSources; text: string; id: string | null }
  | { kind: 'backtest'; src: RuleSources; run: BacktestRun; limits: BacktestLimits };

export interface ValidateOutput {
  id: string | null;
  fromFile: boolean;
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

export type WorkReply =
  | { ok: true; result: ValidateOutput | BacktestOutput }
  | { ok: false; limit: WorkLimitKind; value: number; error?: string }
  | { ok: false; limit?: undefined; error: string };

/** How long a new thread may take to load its modules (not the request's doing). */
const STARTUP_MS = 60_000;

/** The compiled work thread: next to this module, or, when this module runs from its TypeScript source (tests), in dist/. */
function threadFile(): string {
  const here = fileURLToPath(import.meta.url);
  const beside = resolve(dirname(here), 'work-thread.js');
  if (existsSync(beside)) return beside;
  return resolve(dirname(here), '../../dist/src/engine/work-thread.js');
}

export class WorkPool {
  readonly limits: WorkLimits;
  private running = 0;
  private readonly idle: Worker[] = [];
  private closed = false;

  constructor(
    limits: Partial<WorkLimits> = {},
    private readonly logger?: Logger,
    private readonly onRun?: (kind: WorkKind, outcome: WorkOutcome, seconds: number) => void,
  ) {
    this.limits = { ...DEFAULT_WORK_LIMITS, ...limits };
  }

  validate(src: RuleSources, text: string, id: string | null): Promise<ValidateOutput> {
    return this.run('validate', { kind: 'validate', src, text, id }) as Promise<ValidateOutput>;
  }

  backtest(src: RuleSources, run: BacktestRun): Promise<BacktestOutput> {
    const { maxEvents, maxPartials } = this.limits;
    return this.run('backtest', { kind: 'backtest', src, run, limits: { maxEvents, maxPartials } }) as Promise<BacktestOutput>;
  }

  private async run(kind: WorkKind, job: WorkJob): Promise<ValidateOutput | BacktestOutput> {
    if (this.running >= this.limits.concurrency || this.closed) {
      this.onRun?.(kind, 'busy', 0);
      throw new ServiceError('VIGIL_ERR_WORK_BUSY', 'too many runs at once', 503, { args: [String(this.limits.concurrency)], retryAfterSeconds: Math.max(1, Math.ceil(this.limits.timeMs / 1000)) });
    }
    this.running++;
    const started = process.hrtime.bigint();
    let outcome: WorkOutcome = 'failed';
    try {
      const worker = this.idle.pop() ?? (await this.spawn());
      const reply = await this.exchange(worker, job);
      if (reply.ok) {
        outcome = 'ok';
        this.release(worker);
        return reply.result;
      }
      if (reply.limit !== undefined) {
        outcome = reply.limit === 'partial matches' ? 'partial_matches' : reply.limit;
        if (reply.limit === 'memory') void worker.terminate();
        else this.release(worker);
        throw this.limitError(reply.limit, reply.value);
      }
      this.release(worker);
      this.logger?.error({ kind, error: reply.error }, 'work run failed');
      throw new ServiceError('VIGIL_ERR_INTERNAL', 'internal error (see the service log)', 500);
    } catch (err) {
      if (err instanceof WorkStopped) {
        outcome = err.limit === 'time' ? 'time' : err.limit === 'memory' ? 'memory' : 'failed';
        if (err.limit === null) {
          this.logger?.error({ kind, error: err.message }, 'work thread failed');
          throw new ServiceError('VIGIL_ERR_INTERNAL', 'internal error (see the service log)', 500);
        }
        throw this.limitError(err.limit, err.limit === 'time' ? this.limits.timeMs : this.limits.memoryMb);
      }
      throw err;
    } finally {
      this.running--;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.onRun?.(kind, outcome, seconds);
      if (outcome !== 'ok') this.logger?.warn({ kind, outcome, seconds }, 'work run stopped at a limit');
    }
  }

  private limitError(limit: WorkLimitKind, value: number): ServiceError {
    const detail =
      limit === 'time' ? `${value} ms, VIGIL_WORK_TIME_MS` :
      limit === 'memory' ? `${value} MiB, VIGIL_WORK_MEMORY_MB` :
      limit === 'events' ? `${value} events, VIGIL_BACKTEST_MAX_EVENTS` :
      `${value} partial matches at once, VIGIL_BACKTEST_MAX_PARTIALS`;
    return new ServiceError('VIGIL_ERR_WORK_LIMIT', `work limit: ${limit}`, 422, { args: [limit, detail], limit, value });
  }

  private release(worker: Worker): void {
    if (this.closed || this.idle.length >= this.limits.concurrency) void worker.terminate();
    else this.idle.push(worker);
  }

  private spawn(): Promise<Worker> {
    const worker = new Worker(threadFile(), {
      resourceLimits: { maxOldGenerationSizeMb: this.limits.memoryMb, maxYoungGenerationSizeMb: Math.min(32, Math.max(4, Math.floor(this.limits.memoryMb / 8))) },
    });
    worker.unref();
    return new Promise<Worker>((resolveReady, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        void worker.terminate();
        reject(new WorkStopped(null, 'the work thread did not start'));
      }, STARTUP_MS);
      const onMessage = (m: unknown): void => {
        if ((m as { ready?: boolean })?.ready !== true) return;
        cleanup();
        resolveReady(worker);
      };
      const onError = (err: Error): void => {
        cleanup();
        void worker.terminate();
        reject(new WorkStopped(null, err.message));
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new WorkStopped(null, `the work thread exited (${code}) while starting`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  /** Sends one job; resolves with the reply, or rejects with WorkStopped when the thread is stopped. */
  private exchange(worker: Worker, job: WorkJob): Promise<WorkReply> {
    return new Promise<WorkReply>((resolveReply, reject) => {
      let done = false;
      const finish = (): void => {
        done = true;
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const timer = setTimeout(() => {
        if (done) return;
        finish();
        void worker.terminate();
        reject(new WorkStopped('time', 'time limit'));
      }, this.limits.timeMs);
      const onMessage = (m: WorkReply): void => {
        finish();
        resolveReply(m);
      };
      const onError = (err: Error & { code?: string }): void => {
        finish();
        void worker.terminate();
        reject(new WorkStopped(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : null, err.message));
      };
      const onExit = (code: number): void => {
        finish();
        reject(new WorkStopped(null, `the work thread exited (${code})`));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      try {
        worker.postMessage(job);
      } catch (err) {
        finish();
        void worker.terminate();
        reject(new WorkStopped(null, (err as Error).message));
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.idle.splice(0).map((w) => w.terminate()));
  }
}

class WorkStopped extends Error {
  constructor(
    readonly limit: 'time' | 'memory' | null,
    message: string,
  ) {
    super(message);
  }
}
