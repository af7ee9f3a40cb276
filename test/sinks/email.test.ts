// The email sink against a real SMTP server (smtp-server on 127.0.0.1): message shape,
// Message-ID, attachment, and the classification of SMTP rejections.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/alert.js';
import { classifySmtpError, defaultSubject, EmailSink } from '../../src/sinks/email/email-sink.js';
import { deliverWithTimeout, retryDelivery } from '../../src/sinks/retry.js';
import { sampleAlert } from '../helpers/alert-fixture.js';
import { refusedUrl } from '../helpers/http-receiver.js';
import { mimeParts, startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const never = new AbortController().signal;

function email(to: string[], subject = ''): Delivery {
  return { kind: 'email', to, subject };
}

/** The value of a header in a raw message, unfolded. */
function header(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.search(/\r?\n\r?\n/));
  const match = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return match?.[1]!.replace(/\r?\n[ \t]+/g, ' ');
}

let smtp: TestSmtpServer;
let sink: EmailSink;

beforeAll(async () => {
  smtp = await startTestSmtpServer();
  sink = new EmailSink({ url: smtp.url, from: 'vigil@alerts.test' });
});

afterEach(() => {
  smtp.messages.length = 0;
  smtp.setRcptReply(undefined);
  smtp.setDataDelay(0);
});

afterAll(async () => {
  await sink.close();
  await smtp.close();
});

describe('email sink', () => {
  it('sends a readable message with Message-ID, default subject and alert.json attached', async () => {
    const alert = sampleAlert();
    const outcome = await sink.deliver(alert, email(['fraud-ops@example.com', 'oncall@example.com']), never);
    expect(outcome).toEqual({ ok: true });
    expect(smtp.messages).toHaveLength(1);
    const mail = smtp.messages[0]!;
    expect(mail.from).toBe('vigil@alerts.test');
    expect(mail.to).toEqual(['fraud-ops@example.com', 'oncall@example.com']);

    const raw = mail.raw;
    expect(header(raw, 'Subject')).toBe(`[high] card_testing: ${alert.message}`);
    expect(header(raw, 'Subject')).toBe(defaultSubject(alert));
    expect(header(raw, 'Message-ID')).toBe(`<${alert.id}@vigil>`);
    expect(header(raw, 'From')).toBe('vigil@alerts.test');
    expect(header(raw, 'X-Vigil-Alert-Id')).toBe(alert.id);

    // The text body, decoded, by string search.
    const parts = mimeParts(raw);
    const body = parts.find((p) => /content-type:\s*text\/plain/i.test(p.head));
    expect(body).toBeDefined();
    for (const fragment of [
      alert.message,
      'rule:     card_testing (version 3)',
      'key:      "c123"',
      'kind:     match',
      'time:     2026-11-20T10:00:07.000Z',
      'small (3 events):',
      JSON.stringify(alert.events.small![1]),
      'big (1 event):',
      JSON.stringify(alert.events.big![0]),
    ]) {
      expect(body!.text).toContain(fragment);
    }
    // The text comes first: message, then rule, then the evidence.
    expect(body!.text.indexOf(alert.message)).toBeLessThan(body!.text.indexOf('rule:'));
    expect(body!.text.indexOf('rule:')).toBeLessThan(body!.text.indexOf('small ('));

    const attachment = parts.find((p) => /filename="?alert\.json"?/.test(p.head));
    expect(attachment?.head).toMatch(/content-type:\s*application\/json/i);
    expect(attachment?.head).toMatch(/content-disposition:\s*attachment/i);
    const attached = JSON.parse(attachment!.text) as unknown;
    expect(attached).toEqual(alert);
  });

  it('uses the rendered subject when the rule gave one, and the same Message-ID on a retry', async () => {
    const alert = sampleAlert();
    const delivery = email(['fraud-ops@example.com'], 'Card testing on c123');
    expect(await sink.deliver(alert, delivery, never)).toEqual({ ok: true });
    expect(await sink.deliver(alert, delivery, never)).toEqual({ ok: true });
    expect(smtp.messages.map((m) => header(m.raw, 'Subject'))).toEqual(['Card testing on c123', 'Card testing on c123']);
    expect(new Set(smtp.messages.map((m) => header(m.raw, 'Message-ID')))).toEqual(new Set([`<${alert.id}@vigil>`]));
  });

  it('treats a 451 to RCPT as retryable and a 550 as final', async () => {
    smtp.setRcptReply((address) =>
      address.startsWith('busy@')
        ? { code: 451, message: 'Try again later' }
        : address.startsWith('nobody@')
          ? { code: 550, message: 'No such user' }
          : null,
    );
    const busy = await sink.deliver(sampleAlert(), email(['busy@example.com']), never);
    expect(busy).toMatchObject({ ok: false, retryable: true });
    if (!busy.ok) expect(busy.error).toContain('451');

    const nobody = await retryDelivery(sink, sampleAlert(), email(['nobody@example.com']), {
      maxAttempts: 4,
      baseDelayMs: 5,
      maxDelayMs: 10,
      timeoutMs: 2000,
    });
    expect(nobody.attempts).toBe(1);
    expect(nobody.outcome).toMatchObject({ ok: false, retryable: false });
    if (!nobody.outcome.ok) expect(nobody.outcome.error).toContain('550');
    expect(smtp.messages).toHaveLength(0);

    // The pool is still usable after the rejections.
    expect(await sink.deliver(sampleAlert(), email(['ok@example.com']), never)).toEqual({ ok: true });
  });

  it('classifies SMTP errors by reply code, then by connection failure', () => {
    expect(classifySmtpError({ responseCode: 421 })).toEqual({ retryable: true });
    expect(classifySmtpError({ responseCode: 452 })).toEqual({ retryable: true });
    expect(classifySmtpError({ responseCode: 503 })).toEqual({ retryable: true });
    expect(classifySmtpError({ responseCode: 535, code: 'EAUTH' })).toEqual({ retryable: false });
    expect(classifySmtpError({ responseCode: 554 })).toEqual({ retryable: false });
    expect(classifySmtpError({ code: 'ECONNECTION' })).toEqual({ retryable: true });
    expect(classifySmtpError({ code: 'ETIMEDOUT' })).toEqual({ retryable: true });
    expect(classifySmtpError({ code: 'ECONFIG' })).toEqual({ retryable: false });
  });

  it('reports an unreachable server as retryable, without the password', async () => {
    const port = new URL(await refusedUrl()).port;
    const password = 'smtp-pa55word-xyz';
    const down = new EmailSink({ url: `smtp://alerts:${password}@127.0.0.1:${port}`, from: 'vigil@alerts.test' });
    try {
      const outcome = await deliverWithTimeout(down, sampleAlert(), email(['a@example.com']), 5000);
      expect(outcome).toMatchObject({ ok: false, retryable: true });
      if (!outcome.ok) {
        expect(outcome.error).not.toContain(password);
        expect(outcome.error).not.toBe('timeout after 5000 ms');
      }
    } finally {
      await down.close();
    }
  });

  it('aborts a send stalled by the server, and the pool keeps working', async () => {
    smtp.setDataDelay(5000);
    const started = Date.now();
    const outcome = await deliverWithTimeout(sink, sampleAlert(), email(['slow@example.com']), 150);
    expect(outcome).toEqual({ ok: false, retryable: true, error: 'timeout after 150 ms' });
    // Well under the server's 5 s stall: the attempt was aborted, not waited out.
    expect(Date.now() - started).toBeLessThan(3000);
    smtp.setDataDelay(0);
    expect(await sink.deliver(sampleAlert(), email(['after@example.com']), never)).toEqual({ ok: true });
  });

  it('fails a delivery with no recipients at once', async () => {
    expect(await sink.deliver(sampleAlert(), email([]), never)).toMatchObject({ ok: false, retryable: false });
  });
});
