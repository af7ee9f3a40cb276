// A real SMTP server (the `smtp-server` package) on 127.0.0.1 (a free port) that keeps
// every message it accepts as raw text, for tests of code that sends mail. Plain SMTP, no
// STARTTLS, authentication optional (any user/password is accepted when given).
//
//   const smtp = await startTestSmtpServer();
//   ... send through smtp.url ...
//   smtp.messages[0].raw.includes('Subject: ...');
//   await smtp.close();   // in afterAll, after closing the sending transport
//
// `rcptReply` scripts RCPT TO answers (e.g. 451 temporary / 550 permanent rejections).
// Messages are checked by string search on the raw RFC 5322 text, no MIME parser needed;
// `mimeParts` decodes the parts (base64, quoted-printable) for checking bodies and attachments.
//
// Note: smtp-server pauses about 100 ms before greeting each new connection, so senders in
// tests should use a pooled transport.

import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface ReceivedMail {
  /** Envelope sender (MAIL FROM). */
  from: string;
  /** Envelope recipients (RCPT TO). */
  to: string[];
  /** The whole message as received: headers, blank line, body (CRLF line ends). */
  raw: string;
}

export interface SmtpReply {
  code: number;
  message: string;
}

export interface TestSmtpServerOptions {
  /** Answer to RCPT TO for an address; null/undefined accepts it. */
  rcptReply?: (address: string) => SmtpReply | null | undefined;
  /** Delay before the final reply to DATA (a stalling server, for timeout tests). */
  dataDelayMs?: number;
  /** TLS with this PEM certificate and key: implicit (smtps://, the default) or STARTTLS (smtp://, advertised). */
  tls?: { cert: Buffer; key: Buffer; starttls?: boolean };
}

export interface TestSmtpServer {
  /** `smtp://127.0.0.1:<port>` — plain SMTP, for nodemailer (`smtps://` with `tls`). */
  url: string;
  port: number;
  /** Every accepted message, in order. */
  messages: ReceivedMail[];
  /** Replaces the RCPT TO script. */
  setRcptReply(reply: TestSmtpServerOptions['rcptReply']): void;
  /** Sets the delay before the final reply to DATA; 0 answers at once. */
  setDataDelay(ms: number): void;
  /** Stops listening; open client connections are closed within a second. */
  close(): Promise<void>;
}

export async function startTestSmtpServer(options: TestSmtpServerOptions = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMail[] = [];
  let rcptReply = options.rcptReply;
  let dataDelayMs = options.dataDelayMs ?? 0;
  const serverOptions: SMTPServerOptions = {
    ...(options.tls ? { secure: options.tls.starttls !== true, cert: options.tls.cert, key: options.tls.key } : {}),
    authOptional: true,
    disabledCommands: options.tls?.starttls ? [] : ['STARTTLS'],
    logger: false,
    // close() waits this long for clients to hang up before it cuts them off.
    closeTimeout: 1000,
    onAuth(_auth, _session, callback) {
      callback(null, { user: 'test' });
    },
    onRcptTo(address, _session, callback) {
      const reply = rcptReply?.(address.address);
      if (!reply) return callback();
      const err = new Error(reply.message) as Error & { responseCode: number };
      err.responseCode = reply.code;
      callback(err);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const mailFrom = session.envelope.mailFrom;
        messages.push({
          from: mailFrom ? mailFrom.address : '',
          to: session.envelope.rcptTo.map((a) => a.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        if (dataDelayMs <= 0) return callback();
        // unref: a stalled reply must not keep the test process alive after close().
        setTimeout(() => callback(), dataDelayMs).unref();
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  // smtp-server re-emits socket errors; a client hanging up must not fail a test run.
  server.on('error', () => undefined);
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `${options.tls && !options.tls.starttls ? 'smtps' : 'smtp'}://127.0.0.1:${port}`,
    port,
    messages,
    setRcptReply(reply) {
      rcptReply = reply;
    },
    setDataDelay(ms) {
      dataDelayMs = ms;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface MimePart {
  /** The part's header block, raw. */
  head: string;
  /** The part's body, transfer-decoded (base64 and quoted-printable) as UTF-8. */
  text: string;
}

/**
 * The leaf parts of a (multipart) raw message, decoded: enough to check a text body or an
 * attachment by string search, without a MIME library. Not a general parser: one level of
 * multipart, as nodemailer writes it.
 */
export function mimeParts(raw: string): MimePart[] {
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1];
  const chunks = boundary ? raw.split(`--${boundary}`).slice(1, -1) : [raw];
  const out: MimePart[] = [];
  for (const chunk of chunks) {
    const split = chunk.search(/\r?\n\r?\n/);
    if (split < 0) continue;
    const head = chunk.slice(0, split).trim();
    const body = chunk.slice(split).replace(/^\r?\n\r?\n/, '').replace(/\r?\n$/, '');
    const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(head)?.[1]?.toLowerCase();
    let text: string;
    if (encoding === 'base64') text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    else if (encoding === 'quoted-printable') text = decodeQuotedPrintable(body);
    else text = body;
    out.push({ head, text });
  }
  return out;
}

/** RFC 2045 §6.7: drop soft line breaks, decode `=XX` bytes. */
export function decodeQuotedPrintable(body: string): string {
  const unfolded = body.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < unfolded.length; i++) {
    const hex = unfolded.slice(i + 1, i + 3);
    if (unfolded[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(unfolded[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
