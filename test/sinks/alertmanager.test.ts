// The `to alertmanager` sink (issue 13) against a real HTTP server on 127.0.0.1: the body in
// Alertmanager's `postableAlerts` shape at `<URL>/api/v2/alerts`, the classification of the
// answer (one attempt, retrying is the dispatcher's), the webhook address policy; and the
// language side: the clause parses with several URLs (one delivery each), bad and refused
// URLs do not compile, the rule text shown to readers hides URL credentials and paths.
// The real Alertmanager is exercised in test/neighbours/alertmanager.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/alert.js';
import { compileSources } from '../../src/compiler/rule.js';
import { WebhookAddressPolicy } from '../../src/core/webhook-address-policy.js';
import { redactRuleText } from '../../src/dsl/redact.js';
import { renderDeliveries, deliveryName } from '../../src/runtime/deliveries.js';
import { AlertmanagerSink, alertmanagerPayload, alertsUrl } from '../../src/sinks/alertmanager/alertmanager-sink.js';
import { sampleAlert } from '../helpers/alert-fixture.js';
import { refusedUrl, startHttpReceiver, testWebhookPolicy, type HttpReceiver } from '../helpers/http-receiver.js';

const never = new AbortController().signal;

describe('alertmanager sink: the request', () => {
  let receiver: HttpReceiver;
  let sink: AlertmanagerSink;
  beforeAll(async () => {
    receiver = await startHttpReceiver(() => ({ status: 200 }));
    sink = new AlertmanagerSink({ policy: testWebhookPolicy(), publicUrl: () => 'https://vigil.example.com/base' });
  });
  afterAll(async () => {
    await sink.close();
    await receiver.close();
  });

  it('posts one alert in postableAlerts shape to <URL>/api/v2/alerts', async () => {
    const alert = sampleAlert();
    const d: Delivery = { kind: 'alertmanager', url: receiver.url };
    expect(await sink.deliver(alert, d, never)).toEqual({ ok: true });
    const req = receiver.requests.at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/api/v2/alerts');
    expect(req.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req.text)).toEqual([
      {
        labels: { alertname: 'card_testing', severity: 'high', key: 'c123' },
        annotations: {
          summary: 'Card c123: 3 small charges, then 900 at shop-b',
          description: 'Match of Vigil rule card_testing (version 3) at 2026-11-20T10:00:07.000Z, key c123.',
          vigil_alert_id: alert.id,
        },
        startsAt: '2026-11-20T10:00:07.000Z',
        generatorURL: 'https://vigil.example.com/base/alerts?rule=card_testing&key=c123',
      },
    ]);
  });

  it('keeps a path prefix, and does not append the API path twice', async () => {
    await sink.deliver(sampleAlert(), { kind: 'alertmanager', url: `${receiver.url}/am/` }, never);
    expect(receiver.requests.at(-1)!.url).toBe('/am/api/v2/alerts');
    await sink.deliver(sampleAlert(), { kind: 'alertmanager', url: `${receiver.url}/api/v2/alerts` }, never);
    expect(receiver.requests.at(-1)!.url).toBe('/api/v2/alerts');
    expect(alertsUrl(new URL('http://am:9093')).toString()).toBe('http://am:9093/api/v2/alerts');
  });

  it('an unkeyed rule has no key label; a non-string key is its JSON; a timeout says so; no public URL, no link', () => {
    const [unkeyed] = alertmanagerPayload(sampleAlert({ key: null, kind: 'timeout' }), null);
    expect(unkeyed!.labels).toEqual({ alertname: 'card_testing', severity: 'high' });
    expect(unkeyed!.annotations.description).toMatch(/^Timeout of Vigil rule card_testing/);
    expect(unkeyed!.generatorURL).toBeUndefined();
    expect(unkeyed!.endsAt).toBeUndefined();
    const [numeric] = alertmanagerPayload(sampleAlert({ key: 42 }), 'http://127.0.0.1:8080');
    expect(numeric!.labels.key).toBe('42');
    expect(numeric!.generatorURL).toBe('http://127.0.0.1:8080/alerts?rule=card_testing&key=42');
  });
});

describe('alertmanager sink: classification', () => {
  let receiver: HttpReceiver;
  let sink: AlertmanagerSink;
  beforeAll(async () => {
    receiver = await startHttpReceiver();
    sink = new AlertmanagerSink({ policy: testWebhookPolicy() });
  });
  afterAll(async () => {
    await sink.close();
    await receiver.close();
  });

  it('400 (a body Alertmanager rejects) fails for good, with its answer', async () => {
    receiver.reply(() => ({ status: 400, body: '{"code":400,"message":"invalid label set"}' }));
    const out = await sink.deliver(sampleAlert(), { kind: 'alertmanager', url: receiver.url }, never);
    expect(out).toMatchObject({ ok: false, retryable: false });
    expect(!out.ok && out.error).toMatch(/^alertmanager http:\/\/127\.0\.0\.1:\d+ answered 400: .*invalid label set/);
  });

  it('503 with Retry-After and 500 are retryable', async () => {
    receiver.reply(() => ({ status: 503, headers: { 'retry-after': '7' } }));
    expect(await sink.deliver(sampleAlert(), { kind: 'alertmanager', url: receiver.url }, never)).toMatchObject({ ok: false, retryable: true, retryAfterMs: 7000 });
    receiver.reply(() => ({ status: 500 }));
    expect(await sink.deliver(sampleAlert(), { kind: 'alertmanager', url: receiver.url }, never)).toMatchObject({ ok: false, retryable: true });
  });

  it('an Alertmanager that is down is retryable; credentials stay out of the error', async () => {
    const down = (await refusedUrl()).replace('http://', 'http://user:hunter22@');
    const out = await sink.deliver(sampleAlert(), { kind: 'alertmanager', url: down }, never);
    expect(out).toMatchObject({ ok: false, retryable: true });
    expect(!out.ok && out.error).toMatch(/^alertmanager http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    expect(!out.ok && out.error).not.toContain('hunter22');
  });

  it('the webhook address policy applies: loopback refused unless allowed, counted, nothing sent', async () => {
    let refused = 0;
    const strict = new AlertmanagerSink({ policy: new WebhookAddressPolicy(), onRefused: () => refused++ });
    const before = receiver.requests.length;
    try {
      const out = await strict.deliver(sampleAlert(), { kind: 'alertmanager', url: receiver.url }, never);
      expect(out).toMatchObject({ ok: false, retryable: false });
      expect(!out.ok && out.error).toMatch(/target refused: .*VIGIL_WEBHOOK_ALLOW/);
      expect(refused).toBe(1);
      expect(receiver.requests.length).toBe(before);
    } finally {
      await strict.close();
    }
  });

  it('a bad URL or scheme, or another kind of delivery, fails for good', async () => {
    expect(await sink.deliver(sampleAlert(), { kind: 'alertmanager', url: 'not a url' }, never)).toMatchObject({ ok: false, retryable: false, error: 'alertmanager: invalid URL' });
    expect(await sink.deliver(sampleAlert(), { kind: 'alertmanager', url: 'ftp://x/' }, never)).toMatchObject({ ok: false, retryable: false });
    expect(await sink.deliver(sampleAlert(), { kind: 'log' }, never)).toMatchObject({ ok: false, retryable: false });
  });
});

describe('to alertmanager in the language', () => {
  const rule = (sink: string) => `stream s {\n  key k\n  time ts\n}\nrule r {\n  from s\n  match a: x == 1\n  alert critical "x {k}" ${sink}\n}\n`;

  it('several URLs: one delivery each, each with its own state name', () => {
    const p = compileSources([{ file: 'r.vigil', text: rule('to alertmanager "http://am-1:9093", "http://am-2:9093" to log') }]);
    expect(p.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const compiled = p.rules.find((r) => r.name === 'r')!;
    expect(compiled.alert.sinks).toEqual([{ kind: 'alertmanager', urls: ['http://am-1:9093', 'http://am-2:9093'] }, { kind: 'log' }]);
    const deliveries = renderDeliveries(sampleAlert(), compiled.alert, {} as never);
    expect(deliveries).toEqual([
      { kind: 'alertmanager', url: 'http://am-1:9093' },
      { kind: 'alertmanager', url: 'http://am-2:9093' },
      { kind: 'log' },
    ]);
    expect(deliveries.map((d, i) => deliveryName(d, i))).toEqual(['0:alertmanager', '1:alertmanager', '2:log']);
  });

  it('a URL that is not http(s), empty, or refused by the address policy does not compile (positioned)', () => {
    const codes = (sink: string, policy?: WebhookAddressPolicy) =>
      compileSources([{ file: 'r.vigil', text: rule(sink) }], policy ? { webhookPolicy: policy } : {}).diagnostics.filter((d) => d.severity === 'error').map((d) => ({ code: d.code, line: d.line, col: d.col, message: d.message }));
    expect(codes('to alertmanager "http://am:9093", "ftp://x"')).toMatchObject([{ code: 'compile/bad-url', line: 8, col: 60, message: 'the alertmanager URL is not an http(s) URL' }]);
    expect(codes('to alertmanager ""')).toMatchObject([{ code: 'compile/empty-url' }]);
    const refused = codes('to alertmanager "http://10.0.0.7:9093"', new WebhookAddressPolicy());
    expect(refused).toMatchObject([{ code: 'compile/webhook-refused', line: 8, col: 42 }]);
    expect(refused[0]!.message).toMatch(/^alertmanager target refused: .*VIGIL_WEBHOOK_ALLOW/);
    expect(codes('to alertmanager "http://10.0.0.7:9093"', new WebhookAddressPolicy(['10.0.0.0/8']))).toEqual([]);
  });

  it('rule texts shown to readers keep scheme and host of every URL, not credentials or paths', () => {
    const text = rule('to alertmanager "https://u:pw@am-1.example:9093/prefix", "http://am-2:9093"');
    const shown = redactRuleText(text);
    expect(shown).toContain('to alertmanager "https://<secret>@am-1.example:9093/<secret>", "http://am-2:9093"');
    expect(shown).not.toContain('pw@');
  });
});
