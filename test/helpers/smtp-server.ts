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
// `decodeBase64Parts` helps for base64-encoded attachments.
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
}

export interface TestSmtpServer {
  /** `smtp://127.0.0.1:<port>` — plain SMTP, for nodemailer. */
  url: string;
  port: number;
  /** Every accepted message, in order. */
  messages: ReceivedMail[];
  /** Replaces the RCPT TO script. */
  setRcptReply(reply: TestSmtpServerOptions['rcptReply']): void;
  /** Stops listening; open client connections are closed within a second. */
  close(): Promise<void>;
}

export async function startTestSmtpServer(options: TestSmtpServerOptions = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMail[] = [];
  let rcptReply = options.rcptReply;
  const serverOptions: SMTPServerOptions = {
    authOptional: true,
    disabledCommands: ['STARTTLS'],
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
        callback();
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
    url: `smtp://127.0.0.1:${port}`,
    port,
    messages,
    setRcptReply(reply) {
      rcptReply = reply;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Decodes every base64 MIME part of a raw message, for checking attachment contents. */
export function decodeBase64Parts(raw: string): string[] {
  const parts = raw.split(/\r?\n--[^\r\n]+\r?\n/);
  const out: string[] = [];
  for (const part of parts) {
    const split = part.search(/\r?\n\r?\n/);
    if (split < 0) continue;
    const head = part.slice(0, split);
    if (!/content-transfer-encoding:\s*base64/i.test(head)) continue;
    const body = part.slice(split).replace(/\r?\n--[\s\S]*$/, '').replace(/\s+/g, '');
    out.push(Buffer.from(body, 'base64').toString('utf8'));
  }
  return out;
}
