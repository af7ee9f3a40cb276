// Service benchmarks (issue: the Vigil service): the service runs as a child process
// (`node bin/vigil.js serve`, temp data and rules dirs), the client in this process.
//   http     — HTTP NDJSON ingest, events/s end to end (every batch answered after the durable
//              commit), beside the JSON.parse ceiling of the same lines
//   restart  — spawn → first 200 from GET /ready with 1M keys holding live partial matches
//   mqtt     — MQTT QoS 1 ingest through a private Mosquitto, beside a raw mqtt.js subscriber
//   latency  — alert delivery latency to a webhook, at 10k events/s with watermark 0s
// Each section cleans up its child processes, temp dirs and broker (service-helpers.ts) and
// is bounded in time. Figures only: the goals live in the issue.

import http from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import mqtt, { type MqttClient } from 'mqtt';
import { generateEvents } from './engine.js';
import {
  BenchTimeout,
  diskUsage,
  mib,
  partialMatches,
  checkpointStats,
  PipelinedClient,
  pollUntil,
  rulesDir,
  runCleanups,
  sendAll,
  startMosquitto,
  startService,
  streamAccepted,
  tempDir,
  withTimeout,
} from './service-helpers.js';

const fmtRate = (perSecond: number): string =>
  perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)}M` : `${(perSecond / 1e3).toFixed(0)}k`;

/** Runs a section with a time bound; its resources are cleaned up whatever happens. */
export async function section(name: string, boundMs: number, body: () => Promise<void>): Promise<boolean> {
  const t0 = performance.now();
  // Other processes on the machine share its cores with the service, the client and the broker.
  const load = () => `load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`;
  console.log(`## ${name} (${load()})`);
  try {
    await withTimeout(body(), boundMs, `section ${name}`);
    console.log(`## ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s (${load()})`);
    return true;
  } catch (err) {
    const e = err as Error;
    console.log(`${name}: FAILED after ${((performance.now() - t0) / 1000).toFixed(1)} s: ${e instanceof BenchTimeout ? e.message : (e.stack ?? e.message)}`);
    return false;
  } finally {
    await runCleanups();
  }
}

// ------------------------------------------------------------------ 1. HTTP ingest

const TX_STREAM = `stream tx {
  key card
  time ts
  watermark 5s
  fields {
    card: string
    ts: time
    type: string
    amount: number
  }
}
`;

const HTTP_RULE = `${TX_STREAM}
rule a_then_b "a, then b on the same card within a minute" {
  from tx
  match a: type == "a" then b: type == "b"
  within 1m
  alert info "card {card}: a then b"
    to log
}
`;

/** NDJSON batches of `size` lines. */
function ndjsonBatches(events: object[], size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < events.length; i += size) {
    let s = '';
    const end = Math.min(events.length, i + size);
    for (let j = i; j < end; j++) s += JSON.stringify(events[j]) + '\n';
    out.push(s);
  }
  return out;
}

/** The ceiling: split the same batches into lines and JSON.parse each, events/s (best of 3). */
function parseCeiling(batches: string[]): number {
  let best = 0;
  for (let round = 0; round < 3; round++) {
    let n = 0;
    const t0 = performance.now();
    for (const b of batches) {
      const lines = b.split('\n');
      for (const line of lines) {
        if (line === '') continue;
        JSON.parse(line);
        n++;
      }
    }
    best = Math.max(best, n / ((performance.now() - t0) / 1000));
  }
  return best;
}

export async function benchHttp(n: number): Promise<void> {
  const BATCH = 1000;
  // 10 events per ms of event time (100 ms per batch): batches overtaking each other in flight
  // stay far inside the 5 s watermark.
  const events = generateEvents(n).map((e, i) => ({ ...e, ts: 1_700_000_000_000 + Math.floor(i / 10) }));
  const texts = ndjsonBatches(events, BATCH);
  const bodies = texts.map((t) => Buffer.from(t, 'utf8'));
  const bytes = bodies.reduce((s, b) => s + b.length, 0);
  const ceiling = parseCeiling(texts);
  console.log(`# http ingest: ${n} events over 100k keys, NDJSON batches of ${BATCH} (${mib(bytes)}), rule a then b within 1m, --checkpoint-ms 5`);
  let best: { inFlight: number; rate: number } | null = null;
  for (const inFlight of [4, 8]) {
    const rules = rulesDir(HTTP_RULE);
    const svc = await startService({ dataDir: tempDir('http-data'), rulesDir: rules, checkpointMs: 5 });
    // No warm-up: the figure includes the service's JIT warm-up (a second of it at most).
    const r = await sendAll(svc.client, 'tx', bodies, inFlight);
    const rate = r.accepted / r.seconds;
    const ok = r.accepted === n && r.rejected === 0 && r.late === 0;
    console.log(
      `http ingest: ${fmtRate(rate)} events/s (batches of ${BATCH}, ${inFlight} in flight, ${r.seconds.toFixed(2)} s), ` +
        `accepted ${r.accepted}, late ${r.late}, rejected ${r.rejected}${ok ? '' : `  WARNING: expected accepted == ${n}`}`,
    );
    console.log(`  service checkpoints ${await checkpointStats(svc.client)}`);
    const code = await svc.stop();
    if (code !== 0) console.log(`  WARNING: vigil serve exited with ${code} after SIGTERM`);
    if (ok && (best === null || rate > best.rate)) best = { inFlight, rate };
  }
  if (best !== null) {
    console.log(
      `http ingest: ${fmtRate(best.rate)} events/s (batches of ${BATCH}, ${best.inFlight} in flight), JSON.parse ceiling ${fmtRate(ceiling)} events/s, ratio ${(best.rate / ceiling).toFixed(2)}`,
    );
  }
}

// ------------------------------------------------------------------ 2. restart to ready

const RESTART_RULE = `stream tx {
  key card
  time ts
  watermark 5s
}

rule a_then_b_1d "a, then b on the same card within a day" {
  from tx
  match a: type == "a" then b: type == "b"
  within 1d
  alert info "card {card}: a then b"
    to log
}
`;

export async function benchRestart(n: number): Promise<void> {
  const BATCH = 1000;
  console.log(`# restart: ${n} type "a" events on ${n} distinct keys (rule a then b within 1d), SIGTERM, start again on the same data dir`);
  const texts: string[] = [];
  const base = 1_700_000_000_000;
  for (let i = 0; i < n; i += BATCH) {
    let s = '';
    for (let j = i; j < Math.min(n, i + BATCH); j++) s += `{"card":"k${j}","ts":${base + j},"type":"a","amount":${j % 1000}}\n`;
    texts.push(s);
  }
  const dataDir = tempDir('restart-data');
  const rules = rulesDir(RESTART_RULE);
  const first = await startService({ dataDir, rulesDir: rules, checkpointMs: 5 });
  console.log(`restart: first start to ready (empty state) ${(first.readyAt - first.spawnedAt).toFixed(0)} ms`);
  // Batches in flight may overtake each other by a few seconds of event time: watermark 5s.
  // One last event 10 s later (type x: no partial match) releases the tail from the rule's buffer.
  texts.push(`{"card":"flush","ts":${base + n + 10_000},"type":"x","amount":0}\n`);
  const r = await sendAll(first.client, 'tx', texts, 4);
  const before = await partialMatches(first.client);
  console.log(`  service checkpoints ${await checkpointStats(first.client)}`);
  console.log(`restart: ingested ${r.accepted} events (${r.late} late, ${r.rejected} rejected) in ${r.seconds.toFixed(2)} s (${fmtRate(r.accepted / r.seconds)} events/s), GET /rules: ${before} partial matches${before >= n * 0.99 ? '' : `  WARNING: expected ~${n}`}`);
  const t0 = performance.now();
  const code = await first.stop(60_000);
  console.log(`restart: SIGTERM → exit ${code} in ${(performance.now() - t0).toFixed(0)} ms`);
  const du = diskUsage(dataDir);
  console.log(`restart: state on disk ${mib(du.allocated)} allocated (${mib(du.apparent)} apparent size)`);
  const second = await startService({ dataDir, rulesDir: rules, checkpointMs: 5, readyTimeoutMs: 60_000 });
  const ms = second.readyAt - second.spawnedAt;
  const after = await partialMatches(second.client);
  console.log(`restart: spawn → first 200 from GET /ready ${ms.toFixed(0)} ms with ${before} partial matches; after restart GET /rules shows ${after} partial matches${after === before ? '' : '  WARNING: differs'}`);
  await second.stop();
}

// ------------------------------------------------------------------ 3. MQTT ingest

const MQTT_STREAM_RULE = `stream tx {
  key card
  time ts
  watermark 5s
  fields {
    card: string
    ts: time
    type: string
    amount: number
  }
  source mqtt "bench/tx/+"
}

rule a_then_b "a, then b on the same card within a minute" {
  from tx
  match a: type == "a" then b: type == "b"
  within 1m
  alert info "card {card}: a then b"
    to log
}
`;

async function connectClient(url: string, clientId: string): Promise<MqttClient> {
  return withTimeout(mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 0, connectTimeout: 5000 }), 10_000, `mqtt connect ${clientId}`);
}

/** Publishes every payload at QoS 1 with at most `window` un-acknowledged; resolves when all are acked. */
function publishAll(client: MqttClient, topic: (i: number) => string, payloads: Buffer[], window: number, onFirst?: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let acked = 0;
    const one = (): void => {
      const i = next++;
      if (i === 0) onFirst?.();
      client.publish(topic(i), payloads[i]!, { qos: 1 }, (err) => {
        if (err) return reject(err);
        acked++;
        if (acked === payloads.length) resolve();
        else if (next < payloads.length) one();
      });
    };
    for (let k = 0; k < Math.min(window, payloads.length); k++) one();
  });
}

export async function benchMqtt(n: number): Promise<void> {
  const WINDOW = 1000;
  console.log(`# mqtt ingest: ${n} small JSON messages at QoS 1 through a private mosquitto (max_queued_messages 0), publisher window ${WINDOW}`);
  const broker = await startMosquitto();
  const events = generateEvents(n, 7);
  const payloads = events.map((e) => Buffer.from(JSON.stringify(e)));
  const topics = ['bench/tx/a', 'bench/tx/b', 'bench/tx/c', 'bench/tx/d'];
  const topic = (i: number) => topics[i & 3]!;

  // (a) raw: one mqtt.js subscriber at QoS 1 counting messages.
  let raw = 0;
  {
    const sub = await connectClient(broker.url, 'bench-raw-sub');
    const pub = await connectClient(broker.url, 'bench-raw-pub');
    await sub.subscribeAsync('bench/tx/+', { qos: 1 });
    let got = 0;
    let t0 = 0;
    let tLast = 0;
    const all = new Promise<void>((resolve) => {
      sub.on('message', () => {
        got++;
        if (got === n) {
          tLast = performance.now();
          resolve();
        }
      });
    });
    await withTimeout(Promise.all([publishAll(pub, topic, payloads, WINDOW, () => (t0 = performance.now())), all]), 120_000, `raw mqtt: ${n} messages received (got ${got})`);
    raw = n / ((tLast - t0) / 1000);
    console.log(`mqtt raw: ${fmtRate(raw)} msg/s (mqtt.js subscriber at QoS 1, ${((tLast - t0) / 1000).toFixed(2)} s)`);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  }

  // (b) Vigil subscribed through `source mqtt "bench/tx/+"`.
  {
    const svc = await startService({ dataDir: tempDir('mqtt-data'), rulesDir: rulesDir(MQTT_STREAM_RULE), checkpointMs: 5, mqttUrl: broker.url });
    const pub = await connectClient(broker.url, 'bench-vigil-pub');
    // Ready means connected; the subscription may still be on its way: one probe message
    // (far in the past of the real events: it does not move the watermark past them).
    const probe = Buffer.from(JSON.stringify({ card: 'probe', ts: 1_600_000_000_000, type: 'x', amount: 0 }));
    await pollUntil(
      async () => {
        if ((await streamAccepted(svc.client, 'tx').catch(() => 0)) >= 1) return true;
        await pub.publishAsync('bench/tx/probe', probe, { qos: 1 });
        return undefined;
      },
      200,
      20_000,
      'vigil subscribed to bench/tx/+ (probe accepted)',
    );
    const base = await streamAccepted(svc.client, 'tx');
    let t0 = 0;
    const published = publishAll(pub, topic, payloads, WINDOW, () => (t0 = performance.now()));
    let seen = 0;
    const tEnd = await pollUntil(
      async () => {
        seen = (await streamAccepted(svc.client, 'tx').catch(() => seen)) - base;
        return seen >= n ? performance.now() : undefined;
      },
      50,
      180_000,
      `vigil: GET /streams accepted == ${n} (last seen ${seen})`,
    );
    await published;
    const rate = n / ((tEnd - t0) / 1000);
    console.log(`mqtt vigil: ${fmtRate(rate)} msg/s (GET /streams accepted ${seen}, polled every 50 ms, ${((tEnd - t0) / 1000).toFixed(2)} s)`);
    console.log(`mqtt ingest: vigil ${fmtRate(rate)} msg/s, raw ${fmtRate(raw)} msg/s, ratio ${(rate / raw).toFixed(2)}`);
    console.log(`  service checkpoints ${await checkpointStats(svc.client)}`);
    await pub.endAsync();
    const code = await svc.stop();
    if (code !== 0) console.log(`  WARNING: vigil serve exited with ${code} after SIGTERM`);
  }
  await broker.stop();
}

// ------------------------------------------------------------------ 4. alert delivery latency

export async function benchLatency(seconds: number): Promise<void> {
  const RATE = 10_000;
  const PERIOD_MS = 10;
  const PER_BATCH = (RATE * PERIOD_MS) / 1000;
  const now = (): number => performance.timeOrigin + performance.now();
  const latencies: number[] = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = now();
      try {
        const alert = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: { hit?: { sentAt?: number }[] } };
        const sentAt = alert.events.hit?.[0]?.sentAt;
        if (typeof sentAt === 'number') latencies.push(at - sentAt);
      } catch {
        // not an alert: ignore
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as { port: number }).port;
  try {
    const rule = `stream tx {
  key card
  time ts
  watermark 0s
}

rule hit "a hit" {
  from tx
  match hit: type == "hit"
  skip none
  alert info "hit on {card}"
    to webhook "http://127.0.0.1:${port}/hook"
}
`;
    console.log(`# latency: ${RATE} events/s for ${seconds} s (batches of ${PER_BATCH} every ${PERIOD_MS} ms, 1 hit per batch), watermark 0s, --checkpoint-ms 2, webhook on 127.0.0.1`);
    const svc = await startService({ dataDir: tempDir('latency-data'), rulesDir: rulesDir(rule), checkpointMs: 2 });
    const batches = Math.round((seconds * 1000) / PERIOD_MS);
    // One producer: batches pipelined on ONE connection, so they reach the service in order
    // (with watermark 0s a batch overtaking the one before it, on another socket, would make
    // that one late) without waiting a round trip per batch. Sent on an absolute schedule.
    const pipe = new PipelinedClient('127.0.0.1', svc.port);
    await withTimeout(pipe.ready, 5000, 'latency: connect');
    let seq = 0;
    let accepted = 0;
    let hitsAccepted = 0;
    let lateEvents = 0;
    let rejected = 0;
    let behind = 0;
    let maxLag = 0;
    let maxOutstanding = 0;
    let lastTs = 0;
    const answers: Promise<void>[] = [];
    const makeBatch = (): string => {
      // The hit first, at a time strictly below the rest of its batch and above everything before.
      const t = Math.max(Date.now(), lastTs + 2);
      lastTs = t + 1;
      let s = `{"card":"c${seq % 1000}","ts":${t},"type":"hit","amount":1,"sentAt":${now()}}\n`;
      seq++;
      for (let j = 1; j < PER_BATCH; j++, seq++) s += `{"card":"c${seq % 1000}","ts":${t + 1},"type":"x","amount":${seq % 100}}\n`;
      return s;
    };
    const t0 = performance.now();
    for (let k = 0; k < batches; k++) {
      const due = t0 + k * PERIOD_MS;
      const wait = due - performance.now();
      if (wait > 0.5) await new Promise((r) => setTimeout(r, wait));
      const lag = performance.now() - due;
      if (lag > PERIOD_MS) behind++;
      maxLag = Math.max(maxLag, lag);
      answers.push(
        pipe.request('POST', '/streams/tx/events', makeBatch(), { 'content-type': 'application/x-ndjson' }).then((a) => {
          if (a.status !== 202) throw new Error(`POST /streams/tx/events: ${a.status} ${a.body.slice(0, 300)}`);
          const r = JSON.parse(a.body) as { accepted: number; late: number; rejected: unknown[] };
          accepted += r.accepted;
          lateEvents += r.late;
          rejected += r.rejected.length;
          if (r.accepted === PER_BATCH) hitsAccepted++;
        }),
      );
      maxOutstanding = Math.max(maxOutstanding, pipe.outstanding);
    }
    const tSent = performance.now();
    await withTimeout(Promise.all(answers), 30_000, 'latency: the last ingest answers');
    pipe.close();
    const tAnswered = performance.now();
    await pollUntil(async () => (latencies.length >= hitsAccepted ? true : undefined), 10, 30_000, `latency: ${hitsAccepted} webhook deliveries`).catch((err: Error) => {
      console.log(`latency: WARNING ${err.message} (got ${latencies.length})`);
    });
    const sendSpan = (tSent - t0) / 1000;
    const span = (tAnswered - t0) / 1000;
    console.log(
      `latency: sent ${fmtRate((batches * PER_BATCH) / sendSpan)} events/s (${batches} batches of ${PER_BATCH} in ${sendSpan.toFixed(2)} s, ${behind} sent over one period late, max ${maxLag.toFixed(1)} ms late); ` +
        `achieved ${fmtRate(accepted / span)} events/s (first send → last 202, ${span.toFixed(2)} s); accepted ${accepted}, late ${lateEvents}, rejected ${rejected}; ` +
        `at most ${maxOutstanding} requests unanswered`,
    );
    const cp = await checkpointStats(svc.client);
    console.log(`latency: service checkpoints ${cp}`);
    const hits = hitsAccepted;
    const sorted = [...latencies].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
    console.log(
      `latency: alert delivery (client send → webhook received) count ${sorted.length}/${hits}, ` +
        `p50 ${q(50).toFixed(2)} ms, p90 ${q(90).toFixed(2)} ms, p99 ${q(99).toFixed(2)} ms, max ${(sorted[sorted.length - 1] ?? NaN).toFixed(2)} ms`,
    );
    await svc.stop();
  } finally {
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
}
