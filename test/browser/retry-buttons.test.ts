// The status page's retry buttons in headless Chromium, against a real service on 127.0.0.1
// with an API token, a real dispatcher and a webhook receiver that first refuses (400, a
// permanent failure) and then accepts: a failed delivery shows a "retry" button; clicking it asks
// for the token (prompt), queues the alert again and it shows delivered; the "retry all failed
// webhook deliveries" button does the rest without asking again (the token is kept for the tab).

import { testWebhookPolicy } from '../helpers/http-receiver.js';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { createSinkRegistry } from '../../src/sinks/registry.js';
import { retryPolicy } from '../../src/sinks/retry.js';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.js';
import { removeTempDirs, silent, startService, type TestService } from '../helpers/service.js';
import { launchChromium } from './chromium.js';

const TOKEN = 'page-token-42';
const WAIT_MS = 10_000;

let service: TestService;
let receiver: HttpReceiver;
let dispatcher: Dispatcher;
let registry: ReturnType<typeof createSinkRegistry>;
let browser: Browser;
let page: Page;
let base: string;
const prompts: string[] = [];

beforeAll(async () => {
  receiver = await startHttpReceiver(() => ({ status: 400 }));
  browser = await launchChromium();
  service = await startService({
    flags: ['--api-token', TOKEN],
    rules: {
      'hot.vigil': `stream readings {
  key device
  fields { device: string
           temp: number }
}
rule hot {
  from readings
  match x: temp > 50
  alert high "Device {device} hot"
    to webhook "${receiver.url}/hook"
}
`,
    },
  });
  registry = createSinkRegistry({ logger: silent, webhook: { policy: testWebhookPolicy() } });
  dispatcher = new Dispatcher(service.core, registry, { policy: retryPolicy({ baseDelayMs: 10, maxDelayMs: 50, maxAgeMs: 60_000, timeoutMs: 2000 }) });
  dispatcher.start();
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
  page = await (await browser.newContext()).newPage();
  page.on('dialog', (d) => {
    prompts.push(d.message());
    void d.accept(TOKEN);
  });
}, 30_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await dispatcher?.stop();
  await registry?.close();
  await service?.close();
  await receiver?.close();
  removeTempDirs();
});

const states = (): Promise<string[]> => page.locator('[data-testid="delivery"]').evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { state: string } }).dataset.state));

async function waitStates(what: string, check: (s: string[]) => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (check(await states())) return;
    if (Date.now() > deadline) throw new Error(`status page: timed out waiting for ${what}; states ${JSON.stringify(await states())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('status page: retry failed deliveries', () => {
  test('one alert, then all failed of the sink, with the token asked once', async () => {
    await service.core.ingest('readings', [1, 2, 3].map((i) => ({ device: `d${i}`, temp: 60 + i })), Date.now());
    await page.goto(base + '/');
    await waitStates('three failed deliveries', (s) => s.length === 3 && s.every((x) => x === 'failed'));
    expect(await page.locator('[data-testid="retry-alert"]').count()).toBe(3);
    expect(await page.locator('[data-testid="retry-sink"]').textContent()).toBe('retry all failed webhook deliveries');
    receiver.reply(() => ({ status: 204 }));

    await page.locator('[data-testid="retry-alert"]').first().click();
    await waitStates('one delivered', (s) => s.filter((x) => x === 'delivered').length === 1 && s.filter((x) => x === 'failed').length === 2);
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toMatch(/API token/);
    expect(await page.locator('[data-testid="retry-state"]').textContent()).toMatch(/1 delivery\(ies\) queued again/);

    await page.locator('[data-testid="retry-sink"]').click();
    await waitStates('all delivered', (s) => s.length === 3 && s.every((x) => x === 'delivered'));
    expect(prompts).toHaveLength(1); // kept for the tab
    expect(receiver.requests.filter((r) => r.headers['idempotency-key']).length).toBe(6); // 3 refused + 3 delivered
    expect(await page.locator('[data-testid="retry-alert"]').count()).toBe(0);
  }, 40_000);
});
