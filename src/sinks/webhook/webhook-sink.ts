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
// (429/503 with `Retry-After`, in seconds or an HTTP-date, pass the hint on); 3xx (redirects
// are not followed: a POST must not silently change target) and other 4xx → not retryable.
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
// Must not: retry, follow redirects, leave sockets open after close(), or let the secret or
// a signature reach an error text or a log line (errors are stored and served by the API).

import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
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

export interface WebhookSinkOptions {
  /** Sockets kept open per origin between deliveries (keep-alive). Default 4. */
  maxFreeSockets?: number;
  /** Clock for the signature timestamp, epoch ms; for tests. */
  now?: () => number;
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
  #closed = false;

  constructor(options: WebhookSinkOptions = {}) {
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
    const target = url.origin;

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
    const fail = (make: (text: string) => DeliveryOutcome, text: string) => make(redact(text, secrets));

    // 3. One request.
    try {
      const response = await this.#post(url, headers, body, signal);
      const { status } = response;
      if (status >= 200 && status < 300) return delivered;
      const shown = redactAndTruncate(response.body.replace(/\s+/g, ' ').trim(), ERROR_SNIPPET_CHARS, secrets);
      const snippet = shown ? `: ${shown}` : '';
      const text = `webhook ${target} answered ${status}${snippet}`;
      if (status === 408 || status === 429 || status >= 500) {
        const hint = status === 429 || status === 503 ? parseRetryAfter(response.retryAfter) : undefined;
        return fail((t) => retryable(t, hint), text);
      }
      return fail(permanent, text);
    } catch (err) {
      if (signal.aborted) return fail(retryable, `webhook ${target}: ${abortText(signal)}`);
      const code = (err as NodeJS.ErrnoException).code;
      const text = `webhook ${target}: ${code && !errorText(err).includes(code) ? `${code} ` : ''}${errorText(err)}`;
      // Headers with forbidden characters are a configuration error: no retry mends them.
      if (code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN' || code === 'ERR_HTTP_INVALID_HEADER_VALUE') {
        return fail(permanent, text);
      }
      return fail(retryable, text);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    // destroy() ends pooled keep-alive sockets and any request still in flight.
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  /** Sends the request; resolves with the status once the head arrives and the body is read. */
  #post(
    url: URL,
    headers: Record<string, string>,
    body: Buffer,
    signal: AbortSignal,
  ): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
    return new Promise((resolve, reject) => {
      const client = url.protocol === 'https:' ? https : http;
      const request = client.request(url, {
        method: 'POST',
        headers,
        agent: url.protocol === 'https:' ? this.#httpsAgent : this.#httpAgent,
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
            body: Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString('utf8'),
          });
        response.on('end', settle);
        // A body cut short still carries a status: the head is what classifies.
        response.on('close', settle);
        response.on('error', () => undefined);
      });
      request.end(body);
    });
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
