// A real HTTP server on 127.0.0.1 (a free port) that records every request and answers
// from a script: the stand-in for a webhook receiver in tests. No mocks: the code under
// test talks TCP to it.
//
//   const receiver = await startHttpReceiver((req, i) => (i < 2 ? { status: 500 } : { status: 204 }));
//   ... POST to receiver.url ...
//   receiver.requests[0].headers['idempotency-key'];
//   await receiver.close();   // in afterAll: closes every socket, keep-alive ones included
//
// A reply of `'hang'` never answers (for timeout tests); the socket is destroyed by close().

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookAddressPolicy } from '../../src/core/webhook-address-policy.js';

/**
 * Receivers listen on loopback, which webhooks may not reach unless allowed: every test that
 * delivers to a receiver allows exactly this (VIGIL_WEBHOOK_ALLOW / --webhook-allow).
 */
export const TEST_WEBHOOK_ALLOW = '127.0.0.1';

/** The address policy of tests: 127.0.0.1 allowed (the service's own endpoint still refused when `self` is given). */
export function testWebhookPolicy(self?: () => { port: number } | null): WebhookAddressPolicy {
  return new WebhookAddressPolicy([TEST_WEBHOOK_ALLOW], self);
}

export interface ReceivedRequest {
  method: string;
  /** Path and query, e.g. `/hook?x=1`. */
  url: string;
  /** Lower-case names, as node gives them. */
  headers: http.IncomingHttpHeaders;
  /** The raw body, exactly as received (what a signature covers). */
  body: Buffer;
  /** `body` as UTF-8. */
  text: string;
}

export interface ScriptedReply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Decides the reply to request number `index` (0-based, counting every request). */
export type ReplyScript = (request: ReceivedRequest, index: number) => ScriptedReply | 'hang';

export interface HttpReceiver {
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** Every request received, in order of arrival. */
  requests: ReceivedRequest[];
  /** Replaces the reply script (requests already received are unaffected). */
  reply(script: ReplyScript): void;
  /** TCP connections open to the server right now (keep-alive ones included). */
  openConnections(): Promise<number>;
  /** Stops listening and destroys every open socket. */
  close(): Promise<void>;
}

export async function startHttpReceiver(script: ReplyScript = () => ({ status: 200 })): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  let current = script;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const received: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        text: body.toString('utf8'),
      };
      const index = requests.length;
      requests.push(received);
      const reply = current(received, index);
      if (reply === 'hang') return;
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    reply(next) {
      current = next;
    },
    openConnections: () =>
      new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A URL on 127.0.0.1 where nothing listens (the port was free a moment ago). */
export async function refusedUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
