// Vigil's metrics and dashboards against a real Prometheus (issue 13): Debian's `prometheus`
// on a free loopback port, scraping a running `vigil serve` every second. Under traffic that
// exercises every part a dashboard shows (HTTP and MQTT ingest, late and rejected events,
// matches, timeouts, throttling, dropped partial matches, deliveries that succeed, retry and
// are refused, a rule that fails to load, a validate run), every query of every dashboard in
// dashboards/*.json is accepted by Prometheus's query API, and each returns series except
// those listed in EXPECTED_EMPTY (with the reason). `promtool check metrics` passes on what
// Vigil exports.
//
// Grafana's variables are given the values Grafana would: `$__rate_interval` a window of many
// scrapes, `$__range` the test's span, `$rule` the `.*` of "All".
//
// Fails, not skips, without the binaries (test/helpers/prometheus.ts says what to install).

import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.js';
import { startTestBroker, testTopicPrefix, type TestBroker } from '../helpers/mqtt-broker.js';
import { eventually, PROMTOOL_BIN, requireBinary, startPrometheus, type RealProcess } from '../helpers/prometheus.js';
import { startServe, type ServiceProcess } from '../helpers/service-process.js';
import { removeTempDirs, tempDir } from '../helpers/service.js';

const dashboardsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dashboards');

/**
 * Dashboard queries that have no series under this test's traffic, and why. Everything else
 * must return series.
 */
const EXPECTED_EMPTY: Record<string, string> = {
  // A delivery is given up only past the maximum age (24 h) or when the outbox's undelivered half
  // is full: neither happens within this test's traffic (test/dispatch/outage.test.ts covers it).
  'sum by (sink, reason) (increase(vigil_deliveries_given_up_total[$__rate_interval]))': 'no delivery is given up under this traffic',
};

const RULES = (ok: string, failing: string) => `stream s {
  key k
  time ts
  fields {
    k: string
    ts: number
    type: string
  }
  source mqtt "${TOPIC}/s"
}

rule ab {
  from s
  match
    a: type == "a"
    then b: type == "b"
  within 1s
  throttle 1 per 1h
  max partials 2
  alert info "ab {k}" to webhook "${ok}"
  on timeout alert warning "no b for {k}" to webhook "${failing}"
}

rule refused {
  from s
  match
    x: type == "x"
  alert info "x {k}" to webhook env("VIGIL_SECRET_INTERNAL")
}
`;

const TOPIC = testTopicPrefix();

let ok: HttpReceiver;
let failing: HttpReceiver;
let broker: TestBroker;
let vigil: ServiceProcess;
let prometheus: RealProcess;

interface QueryAnswer {
  status: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string> }[] };
}

async function query(expr: string): Promise<QueryAnswer> {
  const res = await fetch(`${prometheus.url}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ query: expr }) });
  return (await res.json()) as QueryAnswer;
}

/** Every `expr` of a dashboard, and the Prometheus queries of its variables. */
function dashboardQueries(): { file: string; expr: string }[] {
  const out: { file: string; expr: string }[] = [];
  const walk = (file: string, v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(file, x);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'expr' && typeof x === 'string') out.push({ file, expr: x });
        else walk(file, x);
      }
    }
  };
  for (const f of readdirSync(dashboardsDir).filter((n) => n.endsWith('.json'))) {
    const d = JSON.parse(readFileSync(join(dashboardsDir, f), 'utf8')) as { panels?: unknown };
    walk(f, d.panels);
  }
  return out;
}

/** A Grafana expression with the values Grafana would give its variables. */
function asGrafanaWould(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '10m').replaceAll('$rule', '.*');
}

async function postEvents(events: unknown[]): Promise<number> {
  const res = await fetch(`${vigil.url}/streams/s/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  requireBinary(PROMTOOL_BIN);
  ok = await startHttpReceiver(() => ({ status: 204 }));
  failing = await startHttpReceiver(() => ({ status: 503 }));
  broker = await startTestBroker();
  const root = tempDir();
  const rules = join(root, 'rules');
  mkdirSync(rules);
  writeFileSync(join(rules, 's.vigil'), RULES(`${ok.url}/ok`, `${failing.url}/down`));
  writeFileSync(join(rules, 'broken.vigil'), 'rule broken {\n  from s\n  match a: type ==\n}\n');
  vigil = await startServe(['--port', '0', '--data-dir', join(root, 'data'), '--rules-dir', rules, '--mqtt-url', broker.url], {
    // Not allowed (only 127.0.0.1 is): every delivery of rule `refused` is refused by the policy.
    VIGIL_SECRET_INTERNAL: 'http://10.255.255.1/hook',
  });
  const target = new URL(vigil.url).host;
  prometheus = await startPrometheus(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: ['${target}']
`);
}, 60_000);

afterAll(async () => {
  if (vigil) {
    vigil.child.kill('SIGTERM');
    await vigil.exited;
  }
  await prometheus?.stop();
  await broker?.close();
  await ok?.close();
  await failing?.close();
  removeTempDirs();
});

describe('a real Prometheus scraping vigil serve', () => {
  test('scrapes it, and every dashboard query is accepted and has data under traffic', async () => {
    // Prometheus sees the target up, with no scrape error.
    await eventually('target up', async () => {
      const t = (await (await fetch(`${prometheus.url}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
      const vt = t.data.activeTargets[0];
      return vt?.health === 'up' ? vt : undefined;
    }).then((vt) => expect(vt.lastError).toBe(''));

    // Traffic. Event time near now; the watermark follows the largest time seen.
    const t0 = Date.now() - 60_000;
    expect(await postEvents([{ k: 'u1', type: 'a', ts: t0 }, { k: 'u1', type: 'b', ts: t0 + 100 }])).toBe(202); // match → ok webhook
    expect(await postEvents([{ k: 'u1', type: 'a', ts: t0 + 200 }, { k: 'u1', type: 'b', ts: t0 + 300 }])).toBe(202); // match, throttled
    expect(await postEvents([{ k: 'u2', type: 'a', ts: t0 + 400 }, { k: 'u2', type: 'a', ts: t0 + 500 }, { k: 'u2', type: 'a', ts: t0 + 600 }])).toBe(202); // max partials 2: one dropped
    expect(await postEvents([{ k: 'u3', type: 'x', ts: t0 + 700 }])).toBe(202); // refused webhook
    expect(await postEvents([{ k: 'u4', type: 'a', ts: t0 + 800 }])).toBe(202); // partial match left open
    expect(await postEvents([{ k: 'u9', type: 'c', ts: t0 + 5_000 }])).toBe(202); // watermark past `within 1s`: timeouts → failing webhook
    expect(await postEvents([{ k: 'u9', type: 'c', ts: t0 }])).toBe(202); // late
    expect(await postEvents([{ k: 'u9', type: 'c', ts: 'not a time' }])).toBe(202); // rejected (counted, reported in the answer)
    const validate = await fetch(`${vigil.url}/rules/validate`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'rule v {\n  from s\n  match a: type == "a"\n}\n' });
    expect(validate.status).toBe(200);
    // A rule load refused for a compile error (vigil_rule_load_errors_total). The broken file
    // in the rules dir is refused at start, before the metrics exist, and is not counted.
    const bad = await fetch(`${vigil.url}/rules/bad`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'rule bad {\n  from s\n  match a: type ==\n}\n' });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    const client = await mqtt.connectAsync(broker.url, { clientId: `vigil-prom-test-${process.pid}` });
    try {
      await client.publishAsync(`${TOPIC}/s`, JSON.stringify({ k: 'm1', type: 'c', ts: t0 + 6_000 }), { qos: 1 });
      await client.publishAsync(`${TOPIC}/s`, 'not json', { qos: 1 });
    } finally {
      await client.endAsync();
    }

    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThanOrEqual(38);
    const empty: string[] = [];
    for (const { file, expr } of queries) {
      const q = asGrafanaWould(expr);
      // Accepted: a syntax or type error is status "error".
      const first = await query(q);
      expect(first.error, `${file}: ${expr}`).toBeUndefined();
      expect(first.status, `${file}: ${expr}`).toBe('success');
      if (expr in EXPECTED_EMPTY) {
        expect(first.data!.result, `${file}: ${expr} (${EXPECTED_EMPTY[expr]})`).toEqual([]);
        continue;
      }
      try {
        await eventually(`${file}: ${expr}`, async () => {
          const a = await query(q);
          return a.data!.result.length > 0 ? a : undefined;
        }, 20_000);
      } catch {
        empty.push(`${file}: ${expr}`);
      }
    }
    expect(empty).toEqual([]);

    // The traffic did what it was meant to: counters that exist at 0 from the start moved.
    for (const expr of ['sum(vigil_webhook_refused_total)', 'sum(vigil_deliveries_total{outcome="retried"})', 'sum(vigil_mqtt_messages_total)', 'sum(vigil_rule_load_errors_total)', 'sum(vigil_rule_throttled_total)']) {
      await eventually(`${expr} > 0`, async () => {
        const a = (await query(expr)) as QueryAnswer & { data: { result: { value: [number, string] }[] } };
        return Number(a.data.result[0]?.value[1] ?? 0) > 0 ? true : undefined;
      });
    }

    // The rule variable of vigil-rule.json (`label_values(vigil_rule_matches_total, rule)`).
    const values = (await (await fetch(`${prometheus.url}/api/v1/label/rule/values?match[]=vigil_rule_matches_total`)).json()) as { data: string[] };
    expect(values.data).toEqual(expect.arrayContaining(['ab', 'refused']));
  }, 240_000);

  test('promtool check metrics passes on what vigil exports', async () => {
    const text = await (await fetch(`${vigil.url}/metrics`)).text();
    expect(text).toContain('vigil_deliveries_total');
    const result = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(PROMTOOL_BIN, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += String(d)));
      child.stderr.on('data', (d) => (out += String(d)));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, out }));
      child.stdin.end(text);
    });
    expect(result.out).toBe('');
    expect(result.code).toBe(0);
  });
});
