// `npm run bench`: prints events/s and memory for each benchmark. Not part of `npm test`.
// Targets live in the issues; this only measures.

import { benchHandWritten, benchRule, generateEvents, type EngineBenchResult } from './engine.js';
import { runCleanups } from './service-helpers.js';
import { benchHttp, benchLatency, benchMqtt, benchRestart, section } from './service.js';

const N = Number(process.env.VIGIL_BENCH_EVENTS ?? 1_000_000);
/** Events of the service sections `http` and `restart` (keys of `restart`). */
const SERVICE_N = Number(process.env.VIGIL_BENCH_SERVICE_EVENTS ?? 1_000_000);
/** Messages of the `mqtt` section. */
const MQTT_N = Number(process.env.VIGIL_BENCH_MQTT_MESSAGES ?? 200_000);
/** Seconds of the `latency` section. */
const LATENCY_S = Number(process.env.VIGIL_BENCH_LATENCY_SECONDS ?? 5);
const SECTIONS = ['engine', 'http', 'restart', 'mqtt', 'latency'];

function line(r: EngineBenchResult): string {
  return `${r.name.padEnd(28)} ${(r.eventsPerSecond / 1e6).toFixed(2).padStart(6)} M events/s  ${r.seconds.toFixed(3)} s  heap ${r.heapMiB.toFixed(1)} MiB  alerts ${r.alerts}`;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const unknown = only.filter((s) => !SECTIONS.includes(s));
  if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(', ')}; sections: ${SECTIONS.join(', ')}`);
  const want = (name: string) => only.length === 0 || only.includes(name);
  if (want('engine')) {
    console.log(`# engine alone: ${N} events over 100k keys (node ${process.version})`);
    const events = generateEvents(N);
    // Warm up once so that each figure is for optimised code; then three runs each, reported
    // as the median with the range (this 2-core machine varies by ±20% from run to run).
    benchRule('a', events.slice(0, 200_000));
    benchHandWritten(events.slice(0, 200_000));
    const median = (runs: EngineBenchResult[]): EngineBenchResult & { range: string } => {
      const sorted = [...runs].sort((x, y) => x.eventsPerSecond - y.eventsPerSecond);
      const m = sorted[1]!;
      return { ...m, range: `${(sorted[0]!.eventsPerSecond / 1e6).toFixed(2)}–${(sorted[2]!.eventsPerSecond / 1e6).toFixed(2)}` };
    };
    const a = median([benchRule('a', events), benchRule('a', events), benchRule('a', events)]);
    const b = median([benchRule('b', events), benchRule('b', events), benchRule('b', events)]);
    const c = median([benchRule('c', events), benchRule('c', events), benchRule('c', events)]);
    const h = median([benchHandWritten(events), benchHandWritten(events), benchHandWritten(events)]);
    for (const r of [a, b, c, h]) console.log(`${line(r)}  (median of 3; range ${r.range} M/s)`);
    console.log(`(a) / hand-written: ${(a.eventsPerSecond / h.eventsPerSecond).toFixed(3)} (medians)`);
    if (a.alerts !== h.alerts) console.log(`WARNING: (a) raised ${a.alerts} alerts, the hand-written machine ${h.alerts}`);
  }
  // The service sections: `vigil serve` in a child process (build first: `npm run build`).
  // Each is bounded in time and cleans up its processes, temp dirs and broker.
  let failed = 0;
  if (want('http') && !(await section('http', 150_000, () => benchHttp(SERVICE_N)))) failed++;
  if (want('restart') && !(await section('restart', 180_000, () => benchRestart(SERVICE_N)))) failed++;
  if (want('mqtt') && !(await section('mqtt', 150_000, () => benchMqtt(MQTT_N)))) failed++;
  if (want('latency') && !(await section('latency', 60_000, () => benchLatency(LATENCY_S)))) failed++;
  if (failed > 0) process.exitCode = 1;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void runCleanups().finally(() => process.exit(130));
  });
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => runCleanups());
