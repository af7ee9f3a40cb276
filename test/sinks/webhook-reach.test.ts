// Where a webhook may post (issue 15, case 12 and 13) against real HTTP servers on 127.0.0.1:
// internal targets refused unless allowed — IP literals before connecting, names after DNS
// (`localhost`), the service's own endpoint even when its address is allowed — and redirects
// followed within a limit, re-checked at every hop, keeping POST and body for 307/308, with the
// configured headers dropped when the origin changes.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/alert.js';
import { WebhookAddressPolicy } from '../../src/core/webhook-address-policy.js';
import { signPayload, WebhookSink, MAX_REDIRECTS } from '../../src/sinks/webhook/webhook-sink.js';
import { sampleAlert } from '../helpers/alert-fixture.js';
import { startHttpReceiver, testWebhookPolicy, type HttpReceiver } from '../helpers/http-receiver.js';

const never = new AbortController().signal;
const TOKEN_HEADER = { name: 'Authorization', value: 'Bearer reach-token-123' };

function webhook(url: string, extra: Partial<Extract<Delivery, { kind: 'webhook' }>> = {}): Delivery {
  return { kind: 'webhook', url, headers: [], secret: null, ...extra };
}

const portOf = (r: HttpReceiver) => Number(new URL(r.url).port);

let a: HttpReceiver;
let b: HttpReceiver;
const sinks: WebhookSink[] = [];
function sinkWith(policy: WebhookAddressPolicy): WebhookSink {
  const s = new WebhookSink({ policy });
  sinks.push(s);
  return s;
}

beforeAll(async () => {
  a = await startHttpReceiver();
  b = await startHttpReceiver();
});
afterEach(() => {
  for (const r of [a, b]) {
    r.requests.length = 0;
    r.reply(() => ({ status: 200 }));
  }
});
afterAll(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  await a.close();
  await b.close();
});

describe('address policy', () => {
  it('refuses internal ranges and localhost names unless allowed; allows CIDR blocks, names and self', () => {
    const strict = new WebhookAddressPolicy();
    for (const ip of ['127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '0.0.0.0', '::1', '::', 'fe80::1', 'fd12::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:a00:1']) {
      expect(strict.checkAddress(ip), ip).not.toBeNull();
    }
    for (const ip of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '2001:db8::1', '1.1.1.1']) expect(strict.checkAddress(ip), ip).toBeNull();
    expect(strict.checkHost('localhost')).toMatch(/loopback/);
    expect(strict.checkHost('api.localhost')).toMatch(/loopback/);
    expect(strict.checkHost('[::1]')).toMatch(/loopback/);
    expect(strict.checkHost('example.com')).toBeNull();

    const allow = new WebhookAddressPolicy(['10.0.0.0/8', '192.168.1.7', 'hooks.internal', 'fd00::/8'], () => ({ port: 8080 }));
    expect(allow.checkAddress('10.200.0.1')).toBeNull();
    expect(allow.checkAddress('192.168.1.7')).toBeNull();
    expect(allow.checkAddress('192.168.1.8')).toMatch(/private/);
    expect(allow.checkAddress('fd00::5')).toBeNull();
    expect(allow.allowsName('HOOKS.internal')).toBe(true);
    // The own endpoint: a local address at the listen port, refused even where the address is allowed.
    const loop = new WebhookAddressPolicy(['127.0.0.1'], () => ({ port: 8080 }));
    expect(loop.checkAddress('127.0.0.1', 8081)).toBeNull();
    expect(loop.checkAddress('127.0.0.1', 8080)).toMatch(/own endpoint/);
    expect(new WebhookAddressPolicy(['127.0.0.1', 'self'], () => ({ port: 8080 })).checkAddress('127.0.0.1', 8080)).toBeNull();
  });
});

describe('webhook reach', () => {
  it('an internal IP literal is refused before connecting: permanent, nothing received', async () => {
    const outcome = await sinkWith(new WebhookAddressPolicy()).deliver(sampleAlert(), webhook(`${a.url}/hook/secret-path-1`), never);
    expect(outcome).toMatchObject({ ok: false, retryable: false });
    if (!outcome.ok) {
      expect(outcome.error).toContain('target refused: 127.0.0.1 is a loopback address');
      expect(outcome.error).toContain('VIGIL_WEBHOOK_ALLOW');
      expect(outcome.error).not.toContain('secret-path-1');
    }
    expect(a.requests).toHaveLength(0);
    // Other spellings of loopback (decimal, hex, short, IPv4 inside IPv6) are the same address.
    for (const host of ['2130706433', '0x7f.1', '127.1', '[::ffff:7f00:1]']) {
      const other = await sinkWith(new WebhookAddressPolicy()).deliver(sampleAlert(), webhook(`http://${host}:${portOf(a)}/hook`), never);
      expect(other, host).toMatchObject({ ok: false, retryable: false });
      if (!other.ok) expect(other.error, host).toContain('is a loopback address');
    }
    expect(a.requests).toHaveLength(0);
  });

  it('a host name that resolves to a refused address (localhost) is refused at delivery, after DNS', async () => {
    const url = `http://localhost:${portOf(a)}/hook`;
    const outcome = await sinkWith(new WebhookAddressPolicy()).deliver(sampleAlert(), webhook(url, { headers: [TOKEN_HEADER] }), never);
    expect(outcome).toMatchObject({ ok: false, retryable: false });
    if (!outcome.ok) expect(outcome.error).toMatch(/target refused: localhost resolves to 127\.0\.0\.1 is a loopback address/);
    expect(a.requests).toHaveLength(0);
    // Allowed (the test allowance, 127.0.0.1): the same name is delivered to the checked address.
    expect(await sinkWith(testWebhookPolicy()).deliver(sampleAlert(), webhook(url), never)).toEqual({ ok: true });
    expect(a.requests).toHaveLength(1);
  });

  it("the service's own endpoint is refused even when 127.0.0.1 is allowed, unless 'self' is", async () => {
    const self = () => ({ port: portOf(a) });
    const outcome = await sinkWith(new WebhookAddressPolicy(['127.0.0.1'], self)).deliver(sampleAlert(), webhook(`${a.url}/admin/savepoints`), never);
    expect(outcome).toMatchObject({ ok: false, retryable: false });
    if (!outcome.ok) expect(outcome.error).toContain("this service's own endpoint");
    expect(a.requests).toHaveLength(0);
    expect(await sinkWith(new WebhookAddressPolicy(['127.0.0.1', 'self'], self)).deliver(sampleAlert(), webhook(`${a.url}/admin/savepoints`), never)).toEqual({ ok: true });
    expect(a.requests).toHaveLength(1);
  });

  it('307/308 are followed with POST, the same body and signature; another origin does not get the configured headers', async () => {
    const sink = sinkWith(testWebhookPolicy());
    for (const status of [307, 308]) {
      a.requests.length = 0;
      b.requests.length = 0;
      a.reply((req) => (req.url === '/first' ? { status, headers: { location: '/second' } } : { status, headers: { location: `${b.url}/final?x=1` } }));
      const alert = sampleAlert();
      const outcome = await sink.deliver(alert, webhook(`${a.url}/first`, { headers: [TOKEN_HEADER], secret: 'sig-secret-1234' }), never);
      expect(outcome, String(status)).toEqual({ ok: true });
      expect(a.requests.map((r) => [r.method, r.url])).toEqual([['POST', '/first'], ['POST', '/second']]);
      expect(b.requests.map((r) => [r.method, r.url])).toEqual([['POST', '/final?x=1']]);
      const body = JSON.stringify(alert);
      for (const r of [...a.requests, ...b.requests]) {
        expect(r.text).toBe(body);
        expect(r.headers['idempotency-key']).toBe(alert.id);
        expect(r.headers['x-vigil-signature']).toBe(signPayload('sig-secret-1234', r.headers['x-vigil-timestamp'] as string, body));
      }
      // Same origin keeps the bearer header; the other origin does not get it.
      expect(a.requests[1]!.headers.authorization).toBe(TOKEN_HEADER.value);
      expect(b.requests[0]!.headers.authorization).toBeUndefined();
    }
  });

  it('301/302/303 are followed as a GET without body', async () => {
    const sink = sinkWith(testWebhookPolicy());
    for (const status of [301, 302, 303]) {
      b.requests.length = 0;
      a.reply(() => ({ status, headers: { location: `${b.url}/moved` } }));
      expect(await sink.deliver(sampleAlert(), webhook(`${a.url}/old`), never), String(status)).toEqual({ ok: true });
      expect(b.requests).toHaveLength(1);
      expect(b.requests[0]).toMatchObject({ method: 'GET', url: '/moved', text: '' });
    }
  });

  it('a redirect to a refused target is a permanent failure and nothing is sent there; too many redirects too', async () => {
    const sink = sinkWith(new WebhookAddressPolicy(['127.0.0.1'], () => ({ port: portOf(b) })));
    for (const location of ['http://169.254.169.254/latest/meta-data/iam', 'http://10.0.0.1/x', `${b.url}/admin/savepoints`, `http://localhost:${portOf(b)}/admin`]) {
      a.reply(() => ({ status: 307, headers: { location } }));
      const outcome = await sink.deliver(sampleAlert(), webhook(`${a.url}/hook`), never);
      expect(outcome, location).toMatchObject({ ok: false, retryable: false });
      if (!outcome.ok) {
        expect(outcome.error).toContain('target refused');
        expect(outcome.error).not.toMatch(/meta-data|admin/);
      }
    }
    expect(b.requests).toHaveLength(0);

    a.reply((req, i) => ({ status: 302, headers: { location: `/loop${i}` } }));
    a.requests.length = 0;
    const loop = await sink.deliver(sampleAlert(), webhook(`${a.url}/loop`), never);
    expect(loop).toMatchObject({ ok: false, retryable: false });
    if (!loop.ok) expect(loop.error).toContain(`more than ${MAX_REDIRECTS} redirects`);
    expect(a.requests).toHaveLength(MAX_REDIRECTS + 1);

    a.reply(() => ({ status: 308, headers: { location: 'ftp://example.com/x' } }));
    const ftp = await sink.deliver(sampleAlert(), webhook(`${a.url}/hook`), never);
    expect(ftp).toMatchObject({ ok: false, retryable: false });
  });
});
