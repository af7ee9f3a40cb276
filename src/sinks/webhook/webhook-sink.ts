// The webhook sink (language §4 `to webhook "URL" [header "N" "v"]... [secret env("NAME")]`,
// service §5): one HTTP POST of the alert JSON per attempt, and the classification of its
// answer. Modelled on Alertmanager's `notify/webhook/webhook.go` (`Notify` returns whether
// to retry) and its `RetryStage`; like there, retrying lives elsewhere (`../retry.ts`).
//
// The request:
//   POST <url>
//   Content-Type: application/json
//   User-Agent: vigil
//   Idempotency-Key: <alert.id>          same on every attempt, so receivers drop duplicates
//   <configured headers>                 cannot override the four above or the two below
//   X-Vigil-Timestamp: <unix seconds>    only with a secret
//   X-Vigil-Signature: sha256=<hex>      only with a secret
//   body: JSON.stringify(alert)
//
// Classification: 2xx → delivered; 408, 429, 5xx, connection errors, timeouts → retryable
// (429/503 with `Retry-After`, in seconds or an HTTP-date, pass the hint on); other 4xx → not
// retryable. Redirects (301, 302, 303, 307, 308) are followed, at most MAX_REDIRECTS of them,
// as Alertmanager's Go client does: 307/308 repeat the POST with its body, 301/302/303 become
// a GET without body; a redirect to another origin drops the configured headers (they are
// often bearer tokens meant for the first receiver). A redirect with no usable Location, past
// the limit, or to a refused target is a permanent failure.
//
// Reach (../../core/webhook-address-policy.ts): the target of every request — the first and
// each redirect — is checked against the address policy: an IP literal before connecting, a
// host name inside the socket's `lookup`, so the address checked is the address connected to
// (no check-then-connect race). A refused target is a permanent failure that says why (the
// host only, never path or query).
//
// Verifying the signature, on the receiver (see `verifySignature` below, which does exactly
// this and may be copied):
//   1. Read the raw body bytes as received — before any JSON parsing or re-serialisation.
//   2. t = header X-Vigil-Timestamp; reject when |now − t| > 300 s (replay window).
//   3. expected = "sha256=" + hex(HMAC-SHA256(key = secret, message = t + "." + body)).
//   4. Compare expected with header X-Vigil-Signature in constant time.
//   5. Drop duplicates by Idempotency-Key (delivery is at least once).
//   e.g. shell: printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$secret"
//
// Must not: retry, follow redirects beyond the limit or to a refused address, leave sockets
// open after close(), or let the secret, a configured header value or a signature reach an
// error text or a log line (errors are stored and served by the API).

import { createHmac, timingSafeEqual } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http from 'node:http';
import { isIP } from 'node:net';
import https from 'node:https';
import { AddressRefused, ALLOW_HINT, WebhookAddressPolicy } from '../../core/webhook-address-policy.js';
import type { AlertRecord, Delivery } from '../../core/alert.js';
import {
  abortText,
  delivered,
  errorText,
  permanent,
  redact,
  redactAndTruncate,
  retryable,
  wrongKind,
  type DeliveryOutcome,
  type Sink,
} from '../sink.js';

export const SIGNATURE_HEADER = 'X-Vigil-Signature';
export const TIMESTAMP_HEADER = 'X-Vigil-Timestamp';
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** The default replay window of `verifySignature`. */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

/** Headers the sink owns; configured headers with these names are ignored. */
const RESERVED_HEADERS = new Set(
  ['content-type', 'content-length', 'user-agent', 'idempotency-key', 'x-vigil-timestamp', 'x-vigil-signature', 'host', 'connection', 'transfer-encoding'],
);

/** Characters of a failed response's body shown in the error text. */
const ERROR_SNIPPET_CHARS = 256;
/**
 * Bytes of a failed response's body read for the snippet. More than the snippet: secrets
 * are redacted in the whole of it before it is cut (a receiver may echo our headers).
 */
const ERROR_BODY_BYTES = 8192;
/** A response body larger than this is not drained for keep-alive: the socket is dropped. */
const MAX_DRAIN_BYTES = 1 << 20;
/** Redirects followed per attempt (Go's client stops at 10; a webhook needs few). */
export const MAX_REDIRECTS = 3;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface WebhookSinkOptions {
  /** Sockets kept open per origin between deliveries (keep-alive). Default 4. */
  maxFreeSockets?: number;
  /** Clock for the signature timestamp, epoch ms; for tests. */
  now?: () => number;
  /**
   * Where deliveries may go (VIGIL_WEBHOOK_ALLOW, the service's own endpoint). Default: no
   * internal address allowed.
   */
  policy?: WebhookAddressPolicy;
  /** Called once per delivery refused by the policy (for vigil_webhook_refused_total). */
  onRefused?: () => void;
}

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
export function signPayload(secret: string, timestamp: string | number, body: string | Buffer): string {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return `sha256=${mac.digest('hex')}`;
}

/**
 * True when `signatureHeader` is the signature of `body` at `timestamp` under `secret`, and
 * the timestamp lies within `toleranceSeconds` of `nowMs` (default 300 s). Constant-time
 * comparison; false (never a throw) for a missing, malformed or stale header.
 */
export function verifySignature(
  secret: string,
  timestamp: string | number | undefined | null,
  body: string | Buffer,
  signatureHeader: string | undefined | null,
  toleranceSeconds: number = DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  nowMs: number = Date.now(),
): boolean {
  if (timestamp === undefined || timestamp === null || !signatureHeader) return false;
  const ts = String(timestamp);
  if (!/^\d{1,15}$/.test(ts)) return false;
  if (Math.abs(nowMs / 1000 - Number(ts)) > toleranceSeconds) return false;
  const expected = Buffer.from(signPayload(secret, ts, body));
  const given = Buffer.from(signatureHeader.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Milliseconds to wait from a `Retry-After` value: delay-seconds or an HTTP-date
 * (RFC 9110 §10.2.3). Undefined when absent or unreadable; 0 for a date in the past.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

export class WebhookSink implements Sink {
  readonly kind = 'webhook' as const;
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;
  readonly #now: () => number;
  readonly #policy: WebhookAddressPolicy;
  readonly #onRefused: () => void;
  #closed = false;

  constructor(options: WebhookSinkOptions = {}) {
    this.#policy = options.policy ?? new WebhookAddressPolicy();
    this.#onRefused = options.onRefused ?? (() => undefined);
    const agentOptions = { keepAlive: true, maxFreeSockets: options.maxFreeSockets ?? 4 };
    this.#httpAgent = new http.Agent(agentOptions);
    this.#httpsAgent = new https.Agent(agentOptions);
    this.#now = options.now ?? Date.now;
  }

  async deliver(alert: AlertRecord, delivery: Delivery, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (delivery.kind !== 'webhook') return wrongKind(this.kind, delivery);
    if (this.#closed) return retryable('webhook sink closed');
    if (signal.aborted) return retryable(abortText(signal));

    // 1. Target: only http(s). Error texts name the origin only: credentials, path and
    //    query stay out, since many hooks carry their token in the path (Slack-style URLs).
    let url: URL;
    try {
      url = new URL(delivery.url);
    } catch {
      return permanent('webhook: invalid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return permanent(`webhook: unsupported URL scheme ${url.protocol}`);
    }
    // 2. Body and headers; the signature covers the exact bytes sent.
    const body = Buffer.from(JSON.stringify(alert), 'utf8');
    const headers: Record<string, string> = {};
    for (const { name, value } of delivery.headers) {
      if (!RESERVED_HEADERS.has(name.toLowerCase())) headers[name] = value;
    }
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(body.length);
    headers['User-Agent'] = 'vigil';
    headers[IDEMPOTENCY_HEADER] = alert.id;
    let signature: string | null = null;
    if (delivery.secret !== null) {
      const timestamp = String(Math.floor(this.#now() / 1000));
      signature = signPayload(delivery.secret, timestamp, body);
      headers[TIMESTAMP_HEADER] = timestamp;
      headers[SIGNATURE_HEADER] = signature;
    }
    // Everything that must never be shown: the secret, the signature (and its hex), the
    // configured header values (often bearer tokens) and URL credentials.
    const secrets = [
      delivery.secret,
      signature,
      signature?.slice('sha256='.length),
      ...delivery.headers.map((h) => h.value),
      url.username,
      url.password,
    ];
    return this.post(url, body, headers, secrets, 'webhook', signal);
  }

  /**
   * One POST of `body` to `url` (http or https), with the reach checks, redirects and
   * classification described at the top of this file; `what` names the sink in error texts
   * and `secrets` are redacted from them. The Alertmanager sink posts through this too.
   */
  async post(
    url: URL,
    body: Buffer,
    headers: Record<string, string>,
    secrets: (string | null | undefined)[],
    what: string,
    signal: AbortSignal,
  ): Promise<DeliveryOutcome> {
    if (this.#closed) return retryable(`${what} sink closed`);
    if (signal.aborted) return retryable(abortText(signal));
    const fail = (make: (text: string) => DeliveryOutcome, text: string) => make(redact(text, secrets));

    // 3. The request, and the redirects it leads to.
    let method: 'POST' | 'GET' = 'POST';
    let sendHeaders = headers;
    let target = url.origin;
    try {
      for (let hop = 0; ; hop++) {
        const refused = this.#refusal(url);
        if (refused !== null) {
          this.#onRefused();
          return fail(permanent, `${what} ${target}: target refused: ${refused} (${ALLOW_HINT})`);
        }
        const response = await this.#send(url, method, sendHeaders, method === 'POST' ? body : null, signal);
        const { status } = response;
        if (status >= 200 && status < 300) return delivered;
        if (REDIRECTS.has(status)) {
          if (hop >= MAX_REDIRECTS) return fail(permanent, `${what} ${target} answered ${status}: more than ${MAX_REDIRECTS} redirects`);
          let next: URL;
          try {
            if (!response.location) throw new Error('no Location');
            next = new URL(response.location, url);
          } catch {
            return fail(permanent, `${what} ${target} answered ${status} without a usable Location`);
          }
          if (next.protocol !== 'http:' && next.protocol !== 'https:') {
            return fail(permanent, `${what} ${target} answered ${status}: redirect to unsupported URL scheme ${next.protocol}`);
          }
          if (next.origin !== url.origin) {
            // Configured headers (bearer tokens) stay with the receiver they were written for.
            sendHeaders = Object.fromEntries(Object.entries(sendHeaders).filter(([name]) => RESERVED_HEADERS.has(name.toLowerCase())));
          }
          if (status === 301 || status === 302 || status === 303) {
            method = 'GET';
            sendHeaders = Object.fromEntries(Object.entries(sendHeaders).filter(([name]) => !/^content-(type|length)$/i.test(name)));
          }
          secrets.push(next.username, next.password);
          url = next;
          target = `${target} → ${url.origin}`;
          continue;
        }
        const shown = redactAndTruncate(response.body.replace(/\s+/g, ' ').trim(), ERROR_SNIPPET_CHARS, secrets);
        const snippet = shown ? `: ${shown}` : '';
        const text = `${what} ${target} answered ${status}${snippet}`;
        if (status === 408 || status === 429 || status >= 500) {
          const hint = status === 429 || status === 503 ? parseRetryAfter(response.retryAfter) : undefined;
          return fail((t) => retryable(t, hint), text);
        }
        return fail(permanent, text);
      }
    } catch (err) {
      if (signal.aborted) return fail(retryable, `${what} ${target}: ${abortText(signal)}`);
      if (err instanceof AddressRefused) {
        this.#onRefused();
        return fail(permanent, `${what} ${target}: target refused: ${err.message} (${ALLOW_HINT})`);
      }
      const code = (err as NodeJS.ErrnoException).code;
      const text = `${what} ${target}: ${code && !errorText(err).includes(code) ? `${code} ` : ''}${errorText(err)}`;
      // Headers with forbidden characters are a configuration error: no retry mends them.
      if (code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN' || code === 'ERR_HTTP_INVALID_HEADER_VALUE') {
        return fail(permanent, text);
      }
      return fail(retryable, text);
    }
  }

  /** Why an IP-literal target is refused (no lookup happens for it), or null. Names are judged after DNS. */
  #refusal(url: URL): string | null {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) === 0 || this.#policy.allowsName(url.hostname)) return null;
    return this.#policy.checkAddress(host, portOf(url));
  }

  async close(): Promise<void> {
    this.#closed = true;
    // destroy() ends pooled keep-alive sockets and any request still in flight.
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  /** Sends the request; resolves with the status once the head arrives and the body is read. */
  #send(
    url: URL,
    method: 'POST' | 'GET',
    headers: Record<string, string>,
    body: Buffer | null,
    signal: AbortSignal,
  ): Promise<{ status: number; retryAfter: string | undefined; location: string | undefined; body: string }> {
    return new Promise((resolve, reject) => {
      const client = url.protocol === 'https:' ? https : http;
      const request = client.request(url, {
        method,
        headers,
        agent: url.protocol === 'https:' ? this.#httpsAgent : this.#httpAgent,
        // The address policy judges what the name resolves to, inside the connect itself.
        lookup: checkedLookup(this.#policy, url.hostname, portOf(url)),
        signal,
      });
      request.on('error', reject);
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        let total = 0;
        response.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (kept < ERROR_BODY_BYTES) {
            chunks.push(chunk);
            kept += chunk.length;
          }
          // Do not read an endless body for the sake of keep-alive: drop the socket.
          if (total > MAX_DRAIN_BYTES) response.destroy();
        });
        const settle = () =>
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: headerValue(response.headers['retry-after']),
            location: headerValue(response.headers.location),
            body: Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString('utf8'),
          });
        response.on('end', settle);
        // A body cut short still carries a status: the head is what classifies.
        response.on('close', settle);
        response.on('error', () => undefined);
      });
      if (body === null) request.end();
      else request.end(body);
    });
  }
}

function portOf(url: URL): number {
  return url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the socket: resolves like `dns.lookup`, then hands the connect only the
 * addresses the policy allows, and fails with AddressRefused when none is left. A name
 * allowed as such is not checked.
 */
function checkedLookup(policy: WebhookAddressPolicy, hostname: string, port: number) {
  return (name: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(name, { ...options, all: true }, (err, resolved) => {
      if (err) return callback(err, []);
      let addresses = resolved;
      if (!policy.allowsName(hostname)) {
        let first: string | null = null;
        addresses = resolved.filter((a) => {
          const why = policy.checkAddress(a.address, port);
          first ??= why;
          return why === null;
        });
        if (addresses.length === 0) return callback(new AddressRefused(`${hostname} resolves to ${first ?? 'no address'}`), []);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${name}: no address`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
