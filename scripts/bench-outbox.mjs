// Restart and backlog-gauge cost with a big outbox (issue 15 case 8): N alerts, all but 100
// delivered, then a restart. Usage: npm run build && node scripts/bench-outbox.mjs [repo dir] [N]
// (repo dir: a checkout whose dist/ is built; default this one).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
const repo = process.argv[2] ?? new URL('..', import.meta.url).pathname;
const { DurableEngine } = await import(pathToFileURL(join(resolve(repo), 'dist/src/engine/durable-engine.js')).href);
const N = Number(process.argv[3] ?? 100000);
const dir = mkdtempSync(join(tmpdir(), 'outbox-bench-'));
const opts = { dataDir: dir, rulesDir: null, checkpointMs: 1, outboxKeep: 3 * N, watchRules: false };
let core = await DurableEngine.open(opts);
const rule = 'stream s {\n  key k\n  time ts\n}\nrule one {\n  from s\n  match a: type == "a"\n  alert info "hit {k}"\n    to log\n}\n';
if (!(await core.putRule('one', rule)).ok) throw new Error('rule');
for (let i = 0; i < N; i += 1000) {
  await core.ingest('s', Array.from({ length: 1000 }, (_, j) => ({ k: `k${i + j}`, ts: 1_000_000 + i + j, type: 'a' })), Date.now());
}
let left = 0;
for (const e of core.unfinishedDeliveries()) {
  if (left++ < 100) continue;
  for (const name of Object.keys(e.delivery)) core.updateDelivery(e.seq, name, { sink: 'log', state: 'delivered', attempts: 1, lastError: null, nextAttemptAt: null, deliveredAt: 1 });
}
await core.commitNow();
await core.close();
const t0 = performance.now();
core = await DurableEngine.open(opts);
const open = performance.now() - t0;
const t1 = performance.now();
const backlog = core.outboxBacklog();
const gauge = performance.now() - t1;
const t2 = performance.now();
const unfinished = core.unfinishedDeliveries().length;
const resume = performance.now() - t2;
console.log(`${repo}: outbox ${N} alerts (100 undelivered): open ${open.toFixed(0)} ms, backlog gauge ${gauge.toFixed(1)} ms ${JSON.stringify(backlog)}, unfinishedDeliveries ${resume.toFixed(1)} ms (${unfinished})`);
await core.close();
rmSync(dir, { recursive: true, force: true });
