// `npm run bench`: prints events/s and memory for each benchmark. Not part of `npm test`.
// Targets live in the issues; this only measures.

import { benchHandWritten, benchRule, generateEvents, type EngineBenchResult } from './engine.js';

const N = Number(process.env.VIGIL_BENCH_EVENTS ?? 1_000_000);

function line(r: EngineBenchResult): string {
  return `${r.name.padEnd(28)} ${(r.eventsPerSecond / 1e6).toFixed(2).padStart(6)} M events/s  ${r.seconds.toFixed(3)} s  heap ${r.heapMiB.toFixed(1)} MiB  alerts ${r.alerts}`;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const want = (name: string) => only.length === 0 || only.includes(name);
  if (want('engine')) {
    console.log(`# engine alone: ${N} events over 100k keys (node ${process.version})`);
    const events = generateEvents(N);
    // Warm up once so that each figure is for optimised code.
    benchRule('a', events.slice(0, 200_000));
    const a = benchRule('a', events);
    const b = benchRule('b', events);
    const c = benchRule('c', events);
    benchHandWritten(events.slice(0, 200_000));
    const h = benchHandWritten(events);
    for (const r of [a, b, c, h]) console.log(line(r));
    console.log(`(a) / hand-written: ${(a.eventsPerSecond / h.eventsPerSecond).toFixed(3)}`);
    if (a.alerts !== h.alerts) console.log(`WARNING: (a) raised ${a.alerts} alerts, the hand-written machine ${h.alerts}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
