// The email sink (language §4 `to email "addr"[, ...] [subject TEMPLATE]`, service §5): one
// message per attempt through the configured SMTP server (`VIGIL_SMTP_URL`, from
// `VIGIL_MAIL_FROM`), over a pooled nodemailer transport so that connections are reused
// (one TCP + TLS + AUTH handshake per connection, not per alert).
//
// The message: subject = the rendered subject, or `[<severity>] <rule>: <message>` when the
// rule gave none; a plain-text body (message, rule, version, key, kind, time, then each
// step's bound events as JSON); the alert JSON attached as `alert.json`; and
// `Message-ID: <alert.id@vigil>`, the same on every attempt, so that receivers and mail
// stores can drop the duplicates that at-least-once delivery produces.
//
// Classification (RFC 5321): 4yz replies and connection/timeouts → retryable; 5yz → not
// retryable (except 503, a session-state error that a fresh connection can pass).
//
// Must not: retry, or put the SMTP password in an error text.

import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { AlertRecord, Delivery } from '../../core/alert.js';
import { isTlsFailure, tlsFailure } from '../../core/tls-files.js';
import {
  abortText,
  delivered,
  errorText,
  permanent,
  redact,
  retryable,
  wrongKind,
  type DeliveryOutcome,
  type Sink,
} from '../sink.js';

export interface EmailSinkOptions {
  /**
   * An SMTP URL as nodemailer reads it: `smtp://user:pass@host:587`, `smtps://host:465`,
   * with options as query parameters (`?requireTLS=true`, `?tls.rejectUnauthorized=false`).
   */
  url: string;
  /** The sender address, `VIGIL_MAIL_FROM`. */
  from: string;
  /** Concurrent SMTP connections in the pool. Default 2. */
  maxConnections?: number;
  /**
   * TLS of smtps:// and STARTTLS: `ca` (PEM, from `VIGIL_SMTP_CA` at `caPath`) the server's
   * certificate must chain to, and `rejectUnauthorized` (default true).
   */
  tls?: { ca?: Buffer | null; caPath?: string | null; rejectUnauthorized?: boolean };
}

/** Nodemailer ≥ 10.5 cancels a send on `signal`; @types/nodemailer does not know it yet. */
type SendOptions = Mail.Options & { signal?: AbortSignal };

/** What nodemailer sets on its errors. */
interface SmtpError {
  code?: string;
  responseCode?: number;
  command?: string;
  permanent?: boolean;
}

/** `[<severity>] <rule>: <message>`, the subject when the rule gave none. */
export function defaultSubject(alert: AlertRecord): string {
  return `[${alert.severity}] ${alert.rule}: ${alert.message}`;
}

/** The plain-text body: what an on-call reader needs first, then the evidence. */
export function emailText(alert: AlertRecord): string {
  const lines = [
    alert.message,
    '',
    `rule:     ${alert.rule} (version ${alert.version})`,
    `severity: ${alert.severity}`,
    `key:      ${JSON.stringify(alert.key)}`,
    `kind:     ${alert.kind}`,
    `time:     ${alert.time}`,
    `detected: ${alert.detectedAt}`,
    `alert id: ${alert.id}`,
  ];
  for (const [step, events] of Object.entries(alert.events)) {
    lines.push('', `${step} (${events.length} event${events.length === 1 ? '' : 's'}):`);
    for (const event of events) lines.push(`  ${JSON.stringify(event)}`);
  }
  lines.push('', 'The full alert record is attached as alert.json.', '');
  return lines.join('\n');
}

/** `SMTP server host:port` of an SMTP URL, for messages. */
function smtpPeer(url: string): string {
  try {
    const u = new URL(url);
    return `SMTP server ${u.hostname}${u.port ? `:${u.port}` : ''}`;
  } catch {
    return 'SMTP server';
  }
}

/** Classifies a nodemailer error. Exported for the tests and the dispatcher's metrics. */
export function classifySmtpError(err: unknown): { retryable: boolean } {
  const e = (err ?? {}) as SmtpError;
  if (typeof e.responseCode === 'number') {
    // 503 "bad sequence of commands" is about the session, not the message.
    return { retryable: !(e.responseCode >= 500 && e.responseCode < 600 && e.responseCode !== 503) };
  }
  // No reply code: the connection failed, timed out or was aborted — or the configuration
  // is wrong (ECONFIG, missing credentials), which no retry mends.
  if (e.code === 'ECONFIG' || e.code === 'ENOAUTH' || e.code === 'EMAXRECIPIENTS') return { retryable: false };
  return { retryable: true };
}

export class EmailSink implements Sink {
  readonly kind = 'email' as const;
  readonly #transport: Mail;
  readonly #from: string;
  readonly #secrets: string[];
  readonly #tls: EmailSinkOptions['tls'];
  readonly #peer: string;
  #closed = false;

  constructor(options: EmailSinkOptions) {
    // The object's keys apply where the URL does not set them, so `?pool=false` still wins.
    this.#transport = nodemailer.createTransport({
      url: options.url,
      pool: true,
      maxConnections: options.maxConnections ?? 2,
      ...(options.tls && (options.tls.ca || options.tls.rejectUnauthorized === false)
        ? { tls: { ...(options.tls.ca ? { ca: options.tls.ca } : {}), ...(options.tls.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}) } }
        : {}),
    } as Parameters<typeof nodemailer.createTransport>[0]);
    this.#tls = options.tls;
    this.#peer = smtpPeer(options.url);
    this.#from = options.from;
    this.#secrets = urlSecrets(options.url);
  }

  async deliver(alert: AlertRecord, delivery: Delivery, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (delivery.kind !== 'email') return wrongKind(this.kind, delivery);
    if (this.#closed) return retryable('email sink closed');
    if (signal.aborted) return retryable(abortText(signal));
    if (delivery.to.length === 0) return permanent('email: no recipients');

    const message: SendOptions = {
      from: this.#from,
      to: delivery.to,
      subject: delivery.subject.trim() === '' ? defaultSubject(alert) : delivery.subject,
      messageId: `<${alert.id}@vigil>`,
      headers: {
        'X-Vigil-Alert-Id': alert.id,
        'X-Vigil-Rule': alert.rule,
        'X-Vigil-Severity': alert.severity,
      },
      text: emailText(alert),
      attachments: [
        { filename: 'alert.json', content: JSON.stringify(alert, null, 2), contentType: 'application/json' },
      ],
      signal,
    };
    try {
      await this.#transport.sendMail(message);
      return delivered;
    } catch (err) {
      const why = isTlsFailure(err) ? tlsFailure(err, { peer: this.#peer, caSetting: 'VIGIL_SMTP_CA', caPath: this.#tls?.caPath ?? null }) : errorText(err);
      const text = redact(`email to ${delivery.to.join(', ')}: ${why}`, this.#secrets);
      if (signal.aborted) return retryable(redact(`email: ${abortText(signal)}`, this.#secrets));
      return classifySmtpError(err).retryable ? retryable(text) : permanent(text);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // force (nodemailer ≥ 10.4, not in @types yet): a connection stalled mid-delivery must
    // not keep the process alive.
    const close: (options?: { force?: boolean }) => void = this.#transport.close.bind(this.#transport);
    close({ force: true });
  }
}

/** The password of an SMTP URL, for redaction; raw and URL-decoded. */
function urlSecrets(url: string): string[] {
  try {
    const raw = new URL(url).password;
    const out = [raw];
    try {
      out.push(decodeURIComponent(raw));
    } catch {
      // keep the raw form only
    }
    return out.filter((s) => s.length > 0);
  } catch {
    return [];
  }
}
