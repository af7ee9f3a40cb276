// The work thread of validate and backtest runs (work-pool.ts starts it with resource limits).
// It receives plain data — the loaded rule texts, the request — and answers plain JSON; the
// pool stops it with terminate() when it runs out of time, and V8 stops it when its heap is full.

import { parentPort } from 'node:worker_threads';
import { checkRuleText, runBacktest, WorkLimit } from './rule-text.js';
import type { WorkJob, WorkReply } from './work-pool.js';

async function handle(job: WorkJob): Promise<WorkReply> {
  try {
    if (job.kind === 'validate') {
      const { id, fromFile, errors, warnings } = checkRuleText(job.src, job.text, job.id);
      return { ok: true, result: { id, fromFile, errors, warnings } };
    }
    return { ok: true, result: await runBacktest(job.src, job.run, job.limits) };
  } catch (err) {
    if (err instanceof WorkLimit) return { ok: false, limit: err.limit, value: err.value };
    if (err instanceof RangeError) return { ok: false, limit: 'memory', value: 0, error: err.message };
    return { ok: false, error: String((err as Error)?.message ?? err) };
  }
}

const port = parentPort!;
port.on('message', (job: WorkJob) => {
  void handle(job).then((reply) => port.postMessage(reply));
});
port.postMessage({ ready: true });
