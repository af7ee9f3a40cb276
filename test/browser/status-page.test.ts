// The status page (`GET /`) in a real browser: headless Chromium (chromium.ts: the system's, or the
// npm package's build) driven by playwright-core, against a real service in this process
// (DurableEngine on a temp dir, fastify listening on 127.0.0.1:0). The page starts empty; a rule
// PUT over HTTP and the alert raised by posted events show up by themselves (the page refreshes); a
// late event shows on the late side output; the backtest box shows a compile error at its line and
// column with a caret, then the alert of a correct rule. Values reach the DOM as text (a message
// with markup in it stays text). The page loads nothing but its own files and the JSON API.
//
// When Chromium is missing or cannot start, these tests fail with the reason (never skipped).

import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { launchChromium } from './chromium.js';

const WAIT_MS = 10_000;

const STREAM_DOORS = `stream doors {
  key door
  time ts
  fields {
    door: string
    ts: number
    type: string
  }
}
`;

const RULE_DOOR = `rule door_alarm {
  from doors
  match
    o: type == "open"
    then a: type == "alarm"
  within 1h
  alert warning "door <b>{door}</b> alarm after open"
}
`;

/** A rule with a stray ')' after the first condition: the compile error is at that ')'. */
const BAD_RULE = `${STREAM_DOORS}rule broken {
  from doors
  match
    o: type == "open" )
    then a: type == "alarm"
  within 1h
  alert info "never"
}
`;

const GOOD_RULE = `${STREAM_DOORS}rule bt_rule {
  from doors
  match
    o: type == "open"
    then c: type == "close"
  within 10m
  alert info "door {door} opened and closed"
}
`;

let service: TestService;
let base: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const requested: string[] = [];
const pageErrors: string[] = [];

async function http(method: string, path: string, body?: string, contentType?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(base + path, {
    method,
    ...(body !== undefined ? { body, headers: { 'content-type': contentType ?? 'text/plain' } } : {}),
  });
  return { status: res.status, text: await res.text() };
}

/** The page's DOM as the in-page functions below use it (the tests compile without the DOM lib). */
type PageDoc = { querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };

/** Waits until an element matching `selector` is on the page, with exactly `text` when given. */
async function waitFor(what: string, selector: string, text: string | null = null): Promise<void> {
  try {
    await page.waitForFunction(
      ({ selector, text }) => {
        const doc = (globalThis as unknown as { document: PageDoc }).document;
        return Array.from(doc.querySelectorAll(selector)).some((e) => text === null || e.textContent === text);
      },
      { selector, text },
      { timeout: WAIT_MS, polling: 100 },
    );
  } catch (err) {
    throw new Error(`status page: timed out waiting for ${what}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
}

beforeAll(async () => {
  browser = await launchChromium();
  // As `vigil serve` without VIGIL_SMTP_URL and VIGIL_MQTT_URL: no email or MQTT sink is configured.
  service = await startService({ core: { configuredSinks: { email: false, mqtt: false } } });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
  context = await browser.newContext();
  page = await context.newPage();
  page.on('request', (r) => requested.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
  // The first run unpacks the npm Chromium (tens of seconds on a loaded machine).
}, 120_000);

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await service?.close();
  removeTempDirs();
});

describe('status page in headless Chromium', () => {
  test('the page and its assets are served with their content types', async () => {
    const expected: [string, string][] = [
      ['/', 'text/html; charset=utf-8'],
      ['/status/page.js', 'text/javascript; charset=utf-8'],
      ['/status/page.css', 'text/css; charset=utf-8'],
    ];
    for (const [path, type] of expected) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe(type);
      expect(res.headers.get('content-security-policy'), path).toContain("default-src 'none'");
      expect((await res.text()).length, path).toBeGreaterThan(100);
    }
  });

  test('loads with its title and the empty state', async () => {
    const res = await page.goto(base + '/');
    expect(res?.status()).toBe(200);
    expect(await page.title()).toBe('Vigil status');
    await page.locator('[data-testid="rules-empty"]').waitFor({ timeout: WAIT_MS });
    expect(await page.locator('[data-testid="rules-empty"]').textContent()).toBe('No rules loaded.');
    expect(await page.locator('[data-testid="alerts-empty"]').textContent()).toBe('No alerts yet.');
    expect(await page.locator('[data-testid="streams-empty"]').textContent()).toBe('No streams yet.');
    expect(await page.locator('[data-testid="late-empty"]').textContent()).toBe('No late events.');
    await waitFor('the connection indicator to say connected', '[data-testid="conn"][data-state="ok"]');
  });

  test('a rule PUT over HTTP appears in the Rules table', async () => {
    const put = await http('PUT', '/rules/door_alarm', STREAM_DOORS + RULE_DOOR);
    expect(put.status, put.text).toBe(201);
    await waitFor('rule door_alarm in the Rules table', '[data-testid="rule-row"][data-rule="door_alarm"]');
    const row = page.locator('[data-testid="rule-row"][data-rule="door_alarm"]');
    expect(await row.locator('[data-testid="rule-id"]').textContent()).toBe('door_alarm');
    expect(await row.locator('[data-testid="rule-version"]').textContent()).toBe('1');
    expect(await row.locator('[data-testid="rule-origin"]').textContent()).toBe('api');
    expect(await row.locator('[data-testid="rule-status"]').textContent()).toBe('running');
    expect(await row.locator('[data-testid="rule-matches"]').textContent()).toBe('0');
    expect(await page.locator('[data-testid="rules-empty"]').count()).toBe(0);
  });

  test('a rule whose sink the service has no configuration for shows its warning in the Rules table', async () => {
    const text = `${STREAM_DOORS}rule door_mail {
  from doors
  match o: type == "never-sent"
  alert info "door {door}" to email "ops@example.com"
}
`;
    const put = await http('PUT', '/rules/door_mail', text);
    expect(put.status, put.text).toBe(201);
    const warning = JSON.parse(put.text).warnings[0];
    expect(warning).toMatchObject({ code: 'compile/sink-not-configured', line: 13, col: 28 });
    await waitFor('the warning on rule door_mail', '[data-testid="rule-row"][data-rule="door_mail"] [data-testid="rule-warnings"] li');
    const row = page.locator('[data-testid="rule-row"][data-rule="door_mail"]');
    expect(await row.locator('[data-testid="rule-warnings"] li').textContent()).toBe(
      "request:13:28: warning: 'to email' needs VIGIL_SMTP_URL, which this service does not set: every email delivery of this rule will fail",
    );
    expect(await row.locator('[data-testid="rule-errors"]').count()).toBe(0);
    // A rule with nothing to warn about shows no warning list.
    expect(await page.locator('[data-testid="rule-row"][data-rule="door_alarm"] [data-testid="rule-warnings"]').count()).toBe(0);
    // Leave the service as the later tests expect it: one rule.
    expect((await http('DELETE', '/rules/door_mail')).status).toBe(204);
    await page.locator('[data-testid="rule-row"][data-rule="door_mail"]').waitFor({ state: 'detached', timeout: WAIT_MS });
  });

  test('posted events raise an alert that appears with its message and delivery state; the late event shows', async () => {
    const events = [
      { door: 'd1', ts: 1000, type: 'open' },
      { door: 'd1', ts: 2000, type: 'alarm' },
      { door: 'd2', ts: 10, type: 'open' }, // behind the watermark: late
    ];
    const post = await http('POST', '/streams/doors/events', events.map((e) => JSON.stringify(e)).join('\n') + '\n', 'application/x-ndjson');
    expect(post.status, post.text).toBe(202);
    expect(JSON.parse(post.text)).toMatchObject({ accepted: 2, late: 1 });

    const message = 'door <b>d1</b> alarm after open';
    await waitFor('the alert in Recent alerts', '[data-testid="alert-message"]', message);
    const row = page.locator('[data-testid="alert-row"]').first();
    expect(await row.locator('[data-testid="alert-rule"]').textContent()).toBe('door_alarm v1');
    expect(await row.locator('[data-testid="alert-key"]').textContent()).toBe('d1');
    expect(await row.locator('[data-testid="alert-severity"]').textContent()).toBe('warning');
    expect(await row.locator('[data-testid="alert-time"]').textContent()).toBe('1970-01-01T00:00:02.000Z');
    // The markup in the message is text, not elements.
    expect(await row.locator('[data-testid="alert-message"] b').count()).toBe(0);
    const delivery = row.locator('[data-testid="delivery"]');
    expect(await delivery.count()).toBe(1);
    expect(await delivery.getAttribute('data-sink')).toBe('0:log');
    expect(await delivery.textContent()).toMatch(/^0:log (pending|delivered|retrying|failed) ×\d+$/);

    // The rule's counters and the stream follow.
    await waitFor('matches = 1 on the rule', '[data-testid="rule-row"][data-rule="door_alarm"] [data-testid="rule-matches"]', '1');
    await waitFor('the stream row', '[data-testid="stream-row"][data-stream="doors"]');
    const stream = page.locator('[data-testid="stream-row"][data-stream="doors"]');
    expect(await stream.locator('[data-testid="stream-watermark"]').textContent()).toBe('1970-01-01T00:00:02.000Z');
    expect(await stream.locator('[data-testid="stream-accepted"]').textContent()).toBe('2');
    expect(await stream.locator('[data-testid="stream-late"]').textContent()).toBe('1');
    expect(await stream.locator('[data-testid="stream-rejected"]').textContent()).toBe('0');

    await waitFor('the late event', '[data-testid="late-event"]');
    const late = JSON.parse((await page.locator('[data-testid="late-event"]').first().textContent()) ?? 'null');
    expect(late).toEqual({ door: 'd2', ts: 10, type: 'open' });
  });

  test('backtest of a rule with an error shows line:col and the caret under the mistake', async () => {
    const lines = BAD_RULE.split('\n');
    const lineIndex = lines.findIndex((l) => l.includes(')'));
    const line = lineIndex + 1;
    const col = lines[lineIndex]!.indexOf(')') + 1;
    expect(line).toBe(13); // 10 lines of stream declaration + rule, from, match

    await page.locator('[data-testid="bt-rule"]').fill(BAD_RULE);
    await page.locator('[data-testid="bt-events"]').fill('{"door":"d1","ts":1,"type":"open"}\n');
    await page.locator('[data-testid="bt-run"]').click();
    await page.locator('[data-testid="bt-diagnostic"]').first().waitFor({ timeout: WAIT_MS });

    const diag = page.locator('[data-testid="bt-diagnostic"]').first();
    expect(await diag.getAttribute('data-line')).toBe(String(line));
    expect(await diag.getAttribute('data-col')).toBe(String(col));
    expect(await diag.getAttribute('data-severity')).toBe('error');
    const pos = (await diag.locator('[data-testid="bt-diagnostic-pos"]').textContent()) ?? '';
    expect(pos.startsWith(`${line}:${col}: error: unexpected ')'`), pos).toBe(true);
    const caret = (await diag.locator('[data-testid="bt-caret"]').textContent()) ?? '';
    expect(caret).toBe(`${lines[lineIndex]}\n${' '.repeat(col - 1)}^`);
    expect(await page.locator('[data-testid="bt-records"]').count()).toBe(0);

    // Clicking the position selects the mistake in the rule text.
    await diag.locator('[data-testid="bt-diagnostic-pos"]').click();
    const selected = await page.locator('[data-testid="bt-rule"]').evaluate((node) => {
      const t = node as unknown as { value: string; selectionStart: number; selectionEnd: number };
      return t.value.slice(t.selectionStart, t.selectionEnd);
    });
    expect(selected).toBe(')');
  });

  test('backtest of a correct rule shows the alert it would raise, and nothing is delivered', async () => {
    const events = [
      { door: 'x1', ts: 1000, type: 'open' },
      { door: 'x1', ts: 5000, type: 'close' },
      { door: 'x2', ts: 6000, type: 'open' },
    ];
    await page.locator('[data-testid="bt-rule"]').fill(GOOD_RULE);
    await page.locator('[data-testid="bt-events"]').fill(events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await page.locator('[data-testid="bt-run"]').click();
    await page.locator('[data-testid="bt-record"]').first().waitFor({ timeout: WAIT_MS });
    expect(await page.locator('[data-testid="bt-diagnostic"]').count()).toBe(0);
    expect(await page.locator('[data-testid="bt-summary"]').textContent()).toBe('1 alert, 0 late events');
    expect(await page.locator('[data-testid="bt-record-message"]').allTextContents()).toEqual(['door x1 opened and closed']);

    // The backtest raised nothing live: still the one alert, and no rule bt_rule.
    const alerts = JSON.parse((await http('GET', '/alerts')).text) as { alerts: unknown[] };
    expect(alerts.alerts).toHaveLength(1);
    const rules = JSON.parse((await http('GET', '/rules')).text) as { rules: { id: string }[] };
    expect(rules.rules.map((r) => r.id)).toEqual(['door_alarm']);
  });

  test('"try an edit" puts a loaded rule in the backtest box; the backtest runs the edit in its place', async () => {
    await page.locator('[data-testid="rule-row"][data-rule="door_alarm"] [data-testid="rule-backtest"]').click();
    await page.waitForFunction(() => {
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { value: string } | null } }).document;
      return (doc.querySelector('[data-testid="bt-rule"]')?.value ?? '').includes('rule door_alarm');
    }, undefined, { timeout: WAIT_MS, polling: 100 });
    const box = page.locator('[data-testid="bt-rule"]');
    const text = await box.inputValue();
    expect(text).toBe(STREAM_DOORS + RULE_DOOR);
    await box.fill(text.replace('alarm after open', 'EDITED alarm'));
    const events = [{ door: 'x1', ts: 1000, type: 'open' }, { door: 'x1', ts: 2000, type: 'alarm' }];
    await page.locator('[data-testid="bt-events"]').fill(events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await page.locator('[data-testid="bt-run"]').click();
    // The box still shows the previous backtest until this one answers.
    await waitFor('the edited rule\'s alert', '[data-testid="bt-record-message"]', 'door <b>x1</b> EDITED alarm');
    expect(await page.locator('[data-testid="bt-diagnostic"]').count()).toBe(0);
    expect(await page.locator('[data-testid="bt-record-message"]').allTextContents()).toEqual(['door <b>x1</b> EDITED alarm']);
    // The loaded rule is unchanged.
    const rule = JSON.parse((await http('GET', '/rules/door_alarm')).text) as { text: string; version: number };
    expect(rule.text).toBe(STREAM_DOORS + RULE_DOOR);
    expect(rule.version).toBe(1);
  });

  test('the page loaded nothing but its own files and the API, without errors', () => {
    expect(requested.length).toBeGreaterThan(3);
    const foreign = requested.filter((u) => !u.startsWith(base + '/') && !u.startsWith('data:'));
    expect(foreign).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
