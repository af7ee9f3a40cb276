// `vigil run --deliver`: sends each alert of a replay through the real sinks, with the same
// retry stage the service uses (in memory: a replay has no outbox). Settings come from the
// same VIGIL_* variables as the service. The log sink writes to standard error, so standard
// output still carries only the records.

import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import type { AlertRecord } from '../core/alert.js';
import type { EvalScope } from '../core/event.js';
import type { CompiledAlert } from '../compiler/rule.js';
import { renderDeliveries } from '../runtime/deliveries.js';
import { createSinkRegistry } from '../sinks/registry.js';
import { checkAllowEntry, WebhookAddressPolicy } from '../core/webhook-address-policy.js';
import { replayRetryPolicy, retryDelivery } from '../sinks/retry.js';

/**
 * The webhook address policy of `vigil run --deliver`: VIGIL_WEBHOOK_ALLOW as for the service
 * (there is no own endpoint to protect). Throws with a clear message on a malformed entry.
 */
export function replayWebhookPolicy(env: NodeJS.ProcessEnv = process.env): WebhookAddressPolicy {
  const entries = (env.VIGIL_WEBHOOK_ALLOW ?? '').split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const e of entries) {
    const why = checkAllowEntry(e);
    if (why !== null) throw new Error(`VIGIL_WEBHOOK_ALLOW: ${why}`);
  }
  return new WebhookAddressPolicy(entries);
}

export function createReplayDelivery(onError: (line: string) => void, policy: WebhookAddressPolicy = replayWebhookPolicy()): {
  onAlert: (record: AlertRecord, alert: CompiledAlert, scope: EvalScope) => void;
  finish: () => Promise<number>;
} {
  const logger = pino({ level: process.env.VIGIL_LOG_LEVEL ?? 'info' }, pino.destination(2));
  let mqtt: Promise<MqttClient | null> | null = null;
  const mqttUrl = process.env.VIGIL_MQTT_URL;
  const pending: Promise<void>[] = [];
  let failures = 0;
  const registryPromise = (async () => {
    let client: MqttClient | null = null;
    if (mqttUrl) {
      mqtt ??= connectAsync(mqttUrl, { connectTimeout: 5000, reconnectPeriod: 0 }).catch((err: Error) => {
        onError(`vigil run --deliver: cannot connect to ${mqttUrl}: ${err.message}`);
        return null;
      });
      client = await mqtt;
    }
    return createSinkRegistry({
      logger,
      smtpUrl: process.env.VIGIL_SMTP_URL ?? null,
      mailFrom: process.env.VIGIL_MAIL_FROM ?? null,
      mqttClient: client,
      webhook: { policy },
    });
  })();
  return {
    onAlert(record, alert, scope) {
      // Render now: the scope belongs to the engine and changes with the next event.
      const deliveries = renderDeliveries(record, alert, scope);
      for (const d of deliveries) {
        pending.push(
          (async () => {
            const registry = await registryPromise;
            const result = await retryDelivery(registry.sinkFor(d.kind), record, d, replayRetryPolicy);
            if (!result.outcome.ok) {
              failures++;
              onError(`vigil run --deliver: alert ${record.id} to ${d.kind} failed after ${result.attempts} attempt(s): ${result.outcome.error}`);
            }
          })(),
        );
      }
    },
    async finish() {
      await Promise.all(pending);
      const registry = await registryPromise;
      await registry.close();
      const client = mqtt ? await mqtt : null;
      await client?.endAsync();
      logger.flush();
      return failures > 0 ? 1 : 0;
    },
  };
}
