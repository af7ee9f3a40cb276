// The webhook sink against a real HTTP server on 127.0.0.1: request shape, classification
// of answers, retries through `retryDelivery`, timeouts, signatures and secret hygiene.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/alert.js';
import { deliverWithTimeout, retryDelivery, type AttemptReport, type RetryPolicy } from '../../src/sinks/retry.js';
import {
  parseRetryAfter,
  signPayload,
  verifySignature,
  WebhookSink,
} from '../../src/sinks/webhook/webhook-sink.js';
import { redactAndTruncate } from '../../src/sinks/sink.js';
import { sampleAlert } from '../helpers/alert-fixture.js';
import { refusedUrl, startHttpReceiver, testWebhookPolicy, type HttpReceiver } from '../helpers/http-receiver.js';

const SECRET = 'whsec-0123456789-very-secret';

function webhook(url: string, extra: Partial<Extract<Delivery, { kind: 'webhook' }>> = {}): Delivery {
  return { kind: 'webhook', url, headers: [], secret: null, ...extra };
}

const never = new AbortController().signal;
const fast: RetryPolicy = { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 1000 };

let receiver: HttpReceiver;
let sink: WebhookSink;

beforeAll(async () => {
  receiver = await startHttpReceiver();
  sink = new WebhookSink({ policy: testWebhookPolicy() });
});

afterEach(() => {
  receiver.requests.length = 0;
  receiver.reply(() => ({ status: 200 }));
});

afterAll(async () => {
  await sink.close();
  await receiver.close();
});

describe('webhook sink', () => {
  it('POSTs the alert JSON with the expected headers', async () => {
    const alert = sampleAlert();
    const outcome = await sink.deliver(
      alert,
      webhook(`${receiver.url}/hook?team=fraud`, {
        headers: [
          { name: 'X-Team', value: 'fraud' },
          { name: 'Idempotency-Key', value: 'spoofed' }, // reserved: ignored
        ],
      }),
      never,
    );
    expect(outcome).toEqual({ ok: true });
    expect(receiver.requests).toHaveLength(1);
    const req = receiver.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hook?team=fraud');
    expect(req.text).toBe(JSON.stringify(alert));
    expect(JSON.parse(req.text)).toEqual(alert);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toBe('vigil');
    expect(req.headers['idempotency-key']).toBe(alert.id);
    expect(req.headers['x-team']).toBe('fraud');
    expect(req.headers['x-vigil-signature']).toBeUndefined();
    expect(req.headers['x-vigil-timestamp']).toBeUndefined();
  });

  it('classifies answers: 2xx ok; 408, 429, 5xx retryable; 3xx without Location and other 4xx not', async () => {
    const cases: [number, boolean | 'ok'][] = [
      [200, 'ok'], [202, 'ok'], [204, 'ok'],
      [408, true], [429, true], [500, true], [502, true], [503, true],
      [301, false], [400, false], [401, false], [404, false], [422, false],
    ];
    for (const [status, expected] of cases) {
      receiver.reply(() => ({ status, body: `status ${status}` }));
      const outcome = await sink.deliver(sampleAlert(), webhook(receiver.url), never);
      if (expected === 'ok') expect(outcome, `status ${status}`).toEqual({ ok: true });
      else {
        expect(outcome, `status ${status}`).toMatchObject({ ok: false, retryable: expected });
        // A 3xx is followed now; without a Location it cannot be, and says so.
        if (!outcome.ok) expect(outcome.error).toContain(status === 301 ? 'answered 301 without a usable Location' : `answered ${status}: status ${status}`);
      }
    }
  });

  it('retries a receiver that fails N times with the same Idempotency-Key on every try', async () => {
    const failures = 3;
    receiver.reply((_req, i) => (i < failures ? { status: 500, body: 'db down' } : { status: 204 }));
    const alert = sampleAlert();
    const reports: AttemptReport[] = [];
    const result = await retryDelivery(sink, alert, webhook(receiver.url), fast, (r) => reports.push(r));
    expect(result).toEqual({ outcome: { ok: true }, attempts: failures + 1 });
    expect(receiver.requests).toHaveLength(failures + 1);
    expect(new Set(receiver.requests.map((r) => r.headers['idempotency-key']))).toEqual(new Set([alert.id]));
    expect(new Set(receiver.requests.map((r) => r.text)).size).toBe(1);
    expect(reports.slice(0, failures).every((r) => !r.outcome.ok && r.outcome.retryable)).toBe(true);
  });

  it('passes 429 Retry-After on and retryDelivery waits for it', async () => {
    receiver.reply((_req, i) => (i === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 }));
    const first = await sink.deliver(sampleAlert(), webhook(receiver.url), never);
    expect(first).toMatchObject({ ok: false, retryable: true, retryAfterMs: 1000 });

    receiver.requests.length = 0;
    receiver.reply((_req, i) => (i === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 }));
    const reports: AttemptReport[] = [];
    const started = Date.now();
    const result = await retryDelivery(sink, sampleAlert(), webhook(receiver.url), { ...fast, maxDelayMs: 2000 }, (r) =>
      reports.push(r),
    );
    expect(result).toEqual({ outcome: { ok: true }, attempts: 2 });
    expect(reports[0]!.nextDelayMs).toBe(1000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
  });

  it('reads Retry-After as seconds or an HTTP-date', () => {
    const now = Date.parse('2026-11-20T10:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Fri, 20 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Fri, 20 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('fails a 400 at once without retrying', async () => {
    receiver.reply(() => ({ status: 400, body: '{"error":"bad field"}' }));
    const result = await retryDelivery(sink, sampleAlert(), webhook(receiver.url), fast);
    expect(result.attempts).toBe(1);
    expect(result.outcome).toMatchObject({ ok: false, retryable: false });
    expect(receiver.requests).toHaveLength(1);
  });

  it('times out a receiver that never answers, and fails after maxAttempts', async () => {
    receiver.reply(() => 'hang');
    const policy: RetryPolicy = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 10, timeoutMs: 100 };
    const started = Date.now();
    const result = await retryDelivery(sink, sampleAlert(), webhook(receiver.url), policy);
    expect(result).toEqual({ outcome: { ok: false, retryable: true, error: 'timeout after 100 ms' }, attempts: 3 });
    expect(receiver.requests).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports connection refused as retryable', async () => {
    const outcome = await deliverWithTimeout(sink, sampleAlert(), webhook(`${await refusedUrl()}/hook`), 2000);
    expect(outcome).toMatchObject({ ok: false, retryable: true });
    if (!outcome.ok) expect(outcome.error).toMatch(/ECONNREFUSED/);
  });

  it('fails bad configuration without retrying', async () => {
    expect(await sink.deliver(sampleAlert(), webhook('ftp://example.com/x'), never)).toMatchObject({ ok: false, retryable: false });
    expect(await sink.deliver(sampleAlert(), webhook('not a url'), never)).toMatchObject({ ok: false, retryable: false });
    const badHeader = webhook(receiver.url, { headers: [{ name: 'X-Bad', value: 'a\r\nInjected: 1' }] });
    expect(await sink.deliver(sampleAlert(), badHeader, never)).toMatchObject({ ok: false, retryable: false });
    expect(receiver.requests).toHaveLength(0);
  });

  it('signs the body so that verifySignature accepts it, and only it', async () => {
    const alert = sampleAlert();
    expect(await sink.deliver(alert, webhook(receiver.url, { secret: SECRET }), never)).toEqual({ ok: true });
    const req = receiver.requests[0]!;
    const timestamp = req.headers['x-vigil-timestamp'] as string;
    const signature = req.headers['x-vigil-signature'] as string;
    expect(timestamp).toMatch(/^\d+$/);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(signature).toBe(signPayload(SECRET, timestamp, req.body));

    expect(verifySignature(SECRET, timestamp, req.body, signature)).toBe(true);
    expect(verifySignature(SECRET, timestamp, req.text, signature)).toBe(true);
    expect(verifySignature('other-secret', timestamp, req.body, signature)).toBe(false);
    expect(verifySignature(SECRET, timestamp, req.text.replace('c123', 'c124'), signature)).toBe(false);
    expect(verifySignature(SECRET, String(Number(timestamp) + 1), req.body, signature)).toBe(false);
    expect(verifySignature(SECRET, timestamp, req.body, signature, 300, Date.now() + 10 * 60_000)).toBe(false);
    expect(verifySignature(SECRET, undefined, req.body, signature)).toBe(false);
    expect(verifySignature(SECRET, timestamp, req.body, undefined)).toBe(false);
    expect(verifySignature(SECRET, timestamp, req.body, 'sha256=00')).toBe(false);
  });

  it('never puts the secret or the signature in an error text', async () => {
    // A receiver that echoes every request header back in its error body.
    receiver.reply((req) => ({ status: 500, body: JSON.stringify(req.headers) }));
    const token = 'Bearer tok-abcdef123456';
    const delivery = webhook(receiver.url, { secret: SECRET, headers: [{ name: 'Authorization', value: token }] });
    const outcome = await sink.deliver(sampleAlert(), delivery, never);
    expect(outcome.ok).toBe(false);
    const signature = receiver.requests[0]!.headers['x-vigil-signature'] as string;
    const hex = signature.slice('sha256='.length);
    if (!outcome.ok) {
      expect(outcome.error).toContain('answered 500');
      // Not even a piece of one: the echoed body is cut to a snippet, maybe mid-signature.
      for (const secret of [SECRET, signature, hex, token]) expect(outcome.error).not.toContain(secret);
      for (const secret of [SECRET, hex, token]) expect(outcome.error).not.toContain(secret.slice(0, 8));
    }

    const refused = await sink.deliver(sampleAlert(), webhook(`http://user:${SECRET}@127.0.0.1:1/x`, { secret: SECRET }), never);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error).not.toContain(SECRET);

    // A token in the path (Slack-style hook URLs) stays out too: errors name the origin.
    receiver.reply(() => ({ status: 404 }));
    const pathToken = 'T0001/B0002/pathtoken12345';
    const notFound = await sink.deliver(sampleAlert(), webhook(`${receiver.url}/services/${pathToken}?sig=qs-secret`), never);
    expect(notFound).toEqual({ ok: false, retryable: false, error: `webhook ${receiver.url} answered 404` });
  });

  it('redacts before cutting, so no secret is left half-shown at the cut', () => {
    const secret = 'abcdefghijklmnop';
    for (let cut = 1; cut < 40; cut++) {
      const text = redactAndTruncate(`${'x'.repeat(cut)}${secret}${'y'.repeat(40)}`, 20, [secret]);
      expect(text.length).toBeLessThanOrEqual(21);
      expect(text).not.toContain(secret.slice(0, 4));
    }
    expect(redactAndTruncate(`key=${secret}`, 100, [secret])).toBe('key=[redacted]');
  });

  it('leaves no socket open after close()', async () => {
    // Its own receiver: the shared sink keeps keep-alive sockets to the shared one.
    const alone = await startHttpReceiver();
    const own = new WebhookSink({ policy: testWebhookPolicy() });
    try {
      for (let i = 0; i < 3; i++) expect(await own.deliver(sampleAlert(), webhook(alone.url), never)).toEqual({ ok: true });
      expect(await alone.openConnections()).toBe(1); // one keep-alive socket, reused
      await own.close();
      const deadline = Date.now() + 2000;
      while ((await alone.openConnections()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(await alone.openConnections()).toBe(0);
      expect(await own.deliver(sampleAlert(), webhook(alone.url), never)).toMatchObject({ ok: false, retryable: true });
    } finally {
      await own.close();
      await alone.close();
    }
  });
});
