// The email sink over TLS (issue 12): smtps:// and STARTTLS (`?requireTLS=true`) to a real
// SMTP server holding a certificate from the test CA (test/helpers/tls-certs.ts); the sink
// trusts that CA through `VIGIL_SMTP_CA`'s file. A server certificate from another CA fails
// the delivery with a message naming VIGIL_SMTP_CA, its file and why.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/alert.js';
import { readPem } from '../../src/core/tls-files.js';
import { EmailSink } from '../../src/sinks/email/email-sink.js';
import { sampleAlert } from '../helpers/alert-fixture.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import { makeTestPki, type TestPki } from '../helpers/tls-certs.js';

const never = new AbortController().signal;
const email = (to: string[]): Delivery => ({ kind: 'email', to, subject: '' });

let pki: TestPki;
let smtps: TestSmtpServer;
let starttls: TestSmtpServer;
const sinks: EmailSink[] = [];

beforeAll(async () => {
  pki = makeTestPki();
  const files = { cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) };
  smtps = await startTestSmtpServer({ tls: files });
  starttls = await startTestSmtpServer({ tls: { ...files, starttls: true } });
}, 60_000);

afterAll(async () => {
  for (const s of sinks) await s.close();
  await smtps?.close();
  await starttls?.close();
  pki?.remove();
});

function sink(url: string, caPath: string): EmailSink {
  const s = new EmailSink({ url, from: 'vigil@alerts.test', tls: { ca: readPem('VIGIL_SMTP_CA', caPath, 'certificate'), caPath } });
  sinks.push(s);
  return s;
}

describe('email over TLS', () => {
  it('smtps:// with the CA from VIGIL_SMTP_CA delivers', async () => {
    expect(smtps.url).toMatch(/^smtps:\/\//);
    const alert = sampleAlert();
    expect(await sink(smtps.url, pki.ca).deliver(alert, email(['ops@example.com']), never)).toEqual({ ok: true });
    expect(smtps.messages.at(-1)!.raw).toContain(`Message-ID: <${alert.id}@vigil>`);
  });

  it('STARTTLS (?requireTLS=true) with the CA delivers', async () => {
    const alert = sampleAlert();
    expect(await sink(`${starttls.url}?requireTLS=true`, pki.ca).deliver(alert, email(['ops@example.com']), never)).toEqual({ ok: true });
    expect(starttls.messages.at(-1)!.raw).toContain(`Message-ID: <${alert.id}@vigil>`);
  });

  it('a server certificate from another CA fails the delivery, naming VIGIL_SMTP_CA, the file and why', async () => {
    const before = smtps.messages.length;
    const outcome = await sink(smtps.url, pki.otherCa).deliver(sampleAlert(), email(['ops@example.com']), never);
    expect(outcome.ok).toBe(false);
    const text = (outcome as { error: string }).error;
    expect(text).toMatch(/TLS handshake with SMTP server 127\.0\.0\.1:\d+ failed: .*(not signed by a trusted CA|not trusted)/);
    expect(text).toContain(`VIGIL_SMTP_CA (${pki.otherCa})`);
    expect(smtps.messages.length).toBe(before);
  });
});
