// Retrying failed deliveries through the API, over a 127.0.0.1 socket: `POST /alerts/:id/retry`
// (one alert) and `POST /admin/sinks/:sink/retry` (every failed delivery of a sink kind), both
// behind the API token; the dispatcher then delivers them to a real receiver. And the backlog
// gauge and the new counters on GET /metrics.

import { testWebhookPolicy } from '../helpers/http-receiver.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { createSinkRegistry } from '../../src/sinks/registry.js';
import { retryPolicy } from '../../src/sinks/retry.js';
import { until } from '../dispatch/helpers.js';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.js';
import { removeTempDirs, silent, startService, type TestService } from '../helpers/service.js';

const TOKEN = 'retry-token-123';

const rules = (url: string) => `stream readings {
  key device
  fields { device: string
           temp: number }
}
rule hot {
  from readings
  match x: temp > 50
  alert high "Device {device} at {x.temp}"
    to webhook "${url}/hook"
}
`;

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups = [];
});
afterAll(() => removeTempDirs());

describe('retry routes', () => {
  let receiver: HttpReceiver;
  beforeAll(async () => {
    receiver = await startHttpReceiver(() => ({ status: 400 }));
  });
  afterAll(async () => {
    await receiver.close();
  });

  async function setup(): Promise<{ s: TestService; base: string; metrics: () => Promise<string> }> {
    let s!: TestService;
    const metricsRef: { fn: () => Promise<string> } = { fn: async () => '' };
    s = await startService({
      rules: { 'hot.vigil': rules(receiver.url) },
      flags: ['--api-token', TOKEN],
      server: { metrics: async () => ({ contentType: 'text/plain', body: await metricsRef.fn() }) },
    });
    const m = createMetrics({ engine: s.core.engine, outboxBacklog: () => s.core.outboxBacklog(), givenUp: () => s.core.givenUp, pruned: () => s.core.pruned });
    metricsRef.fn = () => m.metrics();
    const registry = createSinkRegistry({ logger: silent, webhook: { policy: testWebhookPolicy() } });
    const dispatcher = new Dispatcher(s.core, registry, { policy: retryPolicy({ baseDelayMs: 10, maxDelayMs: 50, maxAgeMs: 60_000, timeoutMs: 2000 }) });
    dispatcher.start();
    cleanups.push(() => s.close(), () => registry.close(), () => dispatcher.stop());
    const base = await s.app.listen({ host: '127.0.0.1', port: 0 });
    return { s, base, metrics: () => fetch(`${base}/metrics`).then((r) => r.text()) };
  }

  const post = (url: string, token?: string) => fetch(url, { method: 'POST', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  type Alerts = { alerts: { id: string; delivery: Record<string, { state: string; attempts: number }> }[] };
  const alerts = async (base: string): Promise<Alerts['alerts']> => ((await (await fetch(`${base}/alerts?limit=1000`)).json()) as Alerts).alerts;

  it('one alert, and all failed of a sink: token required, then delivered', async () => {
    receiver.reply(() => ({ status: 400 }));
    const { base, metrics } = await setup();
    const ingest = await fetch(`${base}/streams/readings/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([1, 2, 3].map((i) => ({ device: `d${i}`, temp: 60 + i }))),
    });
    expect(ingest.status).toBe(202);
    await until(async () => (await alerts(base)).filter((a) => a.delivery['0:webhook']!.state === 'failed').length === 3, 5000, 'failed (400)');
    const [one, ...others] = await alerts(base);
    receiver.reply(() => ({ status: 204 }));
    const before = receiver.requests.length;

    // The token is required.
    expect((await post(`${base}/alerts/${one!.id}/retry`)).status).toBe(401);
    expect((await post(`${base}/alerts/${one!.id}/retry`, 'wrong')).status).toBe(401);
    expect((await post(`${base}/admin/sinks/webhook/retry`)).status).toBe(401);
    expect(receiver.requests.length).toBe(before);

    const missing = await post(`${base}/alerts/nope/retry`, TOKEN);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe('VIGIL_ERR_ALERT_NOT_FOUND');

    const res = await post(`${base}/alerts/${one!.id}/retry`, TOKEN);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ retried: 1 });
    await until(async () => (await alerts(base)).find((a) => a.id === one!.id)!.delivery['0:webhook']!.state === 'delivered', 5000, 'one delivered');
    expect(receiver.requests.length - before).toBe(1);
    expect((await alerts(base)).filter((a) => a.delivery['0:webhook']!.state === 'failed').map((a) => a.id).sort()).toEqual(others.map((a) => a.id).sort());
    // Retrying a delivered alert queues nothing.
    expect(await (await post(`${base}/alerts/${one!.id}/retry`, TOKEN)).json()).toEqual({ retried: 0 });

    const bad = await post(`${base}/admin/sinks/carrier-pigeon/retry`, TOKEN);
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/unknown sink 'carrier-pigeon': one of webhook, email, mqtt, log/);
    const all = await post(`${base}/admin/sinks/webhook/retry`, TOKEN);
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({ retried: 2 });
    await until(async () => (await alerts(base)).every((a) => a.delivery['0:webhook']!.state === 'delivered'), 5000, 'all delivered');
    expect(receiver.requests.length - before).toBe(3);
    expect(await metrics()).toMatch(/vigil_outbox_backlog/);
    expect(await metrics()).not.toMatch(/vigil_outbox_backlog\{sink="webhook"\} [1-9]/);
  });

  it('the backlog gauge and the given-up counter on /metrics', async () => {
    receiver.reply(() => 'hang');
    const { s, base, metrics } = await setup();
    await s.core.ingest('readings', [{ device: 'a', temp: 99 }, { device: 'b', temp: 99 }], Date.now());
    expect(await metrics()).toMatch(/vigil_outbox_backlog\{sink="webhook"\} 2/);
    s.core.countGivenUp('webhook', 'max_age');
    expect(await metrics()).toMatch(/vigil_deliveries_given_up_total\{sink="webhook",reason="max_age"\} 1/);
    expect(await metrics()).toMatch(/vigil_store_pruned_total\{store="idempotency"\} 0/);
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:/);
    receiver.reply(() => ({ status: 204 }));
  });
});
