// The Alertmanager sink (language §4 `to alertmanager "URL" [, "URL"]...`, issue 13): one
// `POST <URL>/api/v2/alerts` per attempt, in Alertmanager's own shape (its OpenAPI
// `postableAlerts`), so Vigil feeds an existing routing tree, its silences, inhibition rules
// and receivers like any Prometheus does. Like the webhook sink it delivers once and says
// whether to retry; retrying lives in the dispatcher. Several URLs (an HA pair) are several
// deliveries, each with its own retries and state (../../runtime/deliveries.ts): Prometheus
// also posts every alert to every Alertmanager, and the pair deduplicates.
//
// The body, for one alert:
//   [{ "labels":      { "alertname": <rule>, "severity": <severity>, "key": <key> },
//      "annotations": { "summary": <rendered message>, "description": <kind, rule, version, time, key>,
//                       "vigil_alert_id": <alert id> },
//      "startsAt":    <alert time>,
//      "generatorURL": <VIGIL_PUBLIC_URL>/alerts?rule=<rule>&key=<key> }]
// `key` is the alert's key as the API's `?key=` filter reads it (a string as is, anything
// else as JSON); a rule without a key has no `key` label. `generatorURL` is where the
// alert and its delivery states are shown (the same query the status page makes).
//
// No `endsAt`: a Vigil alert is one event, not a state that stays firing, so Alertmanager
// resolves it by itself after its `resolve_timeout` (5 m by default). Re-sending a firing
// alert and sending `endsAt` on resolution come with the "resolved" of the on-call issue.
// Alertmanager deduplicates by labels: two matches of one rule and key within that time are
// one Alertmanager alert (its startsAt the first, annotations the last), as with Prometheus.
//
// URL: the Alertmanager's base URL, as in Prometheus's `alertmanagers` config
// (`http://am:9093`, or with a path prefix `http://host/am`); `/api/v2/alerts` is appended
// unless the URL already ends with it. Reach, redirects, classification (2xx delivered; 408,
// 429, 5xx, connection errors retryable; other 4xx — a 400 for a body it rejects — failed for
// good) and redaction are the webhook sink's (../webhook/webhook-sink.ts `post`): the same
// address policy (VIGIL_WEBHOOK_ALLOW) judges Alertmanager targets.
//
// Must not: retry, put URL credentials in an error text, or leave sockets open after close().

import type { AlertRecord, Delivery } from '../../core/alert.js';
import type { Json } from '../../core/event.js';
import { permanent, wrongKind, type DeliveryOutcome, type Sink } from '../sink.js';
import { WebhookSink, type WebhookSinkOptions } from '../webhook/webhook-sink.js';

export const ALERTS_PATH = '/api/v2/alerts';

export interface AlertmanagerSinkOptions extends WebhookSinkOptions {
  /**
   * The service's public URL (VIGIL_PUBLIC_URL, default http://HOST:PORT), for the
   * `generatorURL` link back to the alert; a function, since the port is known only once the
   * service listens. Default: no link.
   */
  publicUrl?: (() => string | null) | string | null;
}

/** One alert of Alertmanager's `postableAlerts` (API v2). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

/** The key as the API's `?key=` filter reads it: a string as is, anything else as JSON. */
export function keyText(key: Json): string {
  return typeof key === 'string' ? key : JSON.stringify(key);
}

/** The body Vigil posts for one alert (see the file comment). */
export function alertmanagerPayload(alert: AlertRecord, publicUrl: string | null): PostableAlert[] {
  const labels: Record<string, string> = { alertname: alert.rule, severity: alert.severity };
  const key = alert.key === null ? null : keyText(alert.key);
  // An empty label value is no label to Alertmanager: a rule keyed by "" shows no key.
  if (key !== null && key !== '') labels.key = key;
  const what = alert.kind === 'timeout' ? 'Timeout' : 'Match';
  const annotations: Record<string, string> = {
    summary: alert.message,
    description: `${what} of Vigil rule ${alert.rule} (version ${alert.version}) at ${alert.time}${key === null ? '' : `, key ${key}`}.`,
    vigil_alert_id: alert.id,
  };
  const out: PostableAlert = { labels, annotations, startsAt: alert.time };
  if (publicUrl !== null) {
    const link = new URL('alerts', publicUrl.endsWith('/') ? publicUrl : `${publicUrl}/`);
    link.searchParams.set('rule', alert.rule);
    if (key !== null) link.searchParams.set('key', key);
    out.generatorURL = link.toString();
  }
  return [out];
}

/** `base` with `/api/v2/alerts` appended (unless it ends with it already). */
export function alertsUrl(base: URL): URL {
  const url = new URL(base.toString());
  const path = url.pathname.replace(/\/+$/, '');
  if (!path.endsWith(ALERTS_PATH)) url.pathname = `${path}${ALERTS_PATH}`;
  return url;
}

export class AlertmanagerSink implements Sink {
  readonly kind = 'alertmanager' as const;
  readonly #http: WebhookSink;
  readonly #publicUrl: () => string | null;

  constructor(options: AlertmanagerSinkOptions = {}) {
    const { publicUrl, ...http } = options;
    this.#http = new WebhookSink(http);
    this.#publicUrl = typeof publicUrl === 'function' ? publicUrl : () => publicUrl ?? null;
  }

  async deliver(alert: AlertRecord, delivery: Delivery, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (delivery.kind !== 'alertmanager') return wrongKind(this.kind, delivery);
    let base: URL;
    try {
      base = new URL(delivery.url);
    } catch {
      return permanent('alertmanager: invalid URL');
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') return permanent(`alertmanager: unsupported URL scheme ${base.protocol}`);
    const url = alertsUrl(base);
    const body = Buffer.from(JSON.stringify(alertmanagerPayload(alert, this.#publicUrl())), 'utf8');
    const headers = { 'Content-Type': 'application/json', 'Content-Length': String(body.length), 'User-Agent': 'vigil' };
    return this.#http.post(url, body, headers, [url.username, url.password], 'alertmanager', signal);
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}
