// Delivery across restarts of a real `vigil serve` process (built dist/), over 127.0.0.1:
// a webhook down (503) through a `kill -9` and a restart gets every alert once it is back, with
// the timings shortened through the settings (`--delivery-max-backoff-ms 200`,
// `--delivery-max-age-ms 60000`), far past the old 8-attempt window; a `to email` rule with no
// VIGIL_SMTP_URL leaves its delivery `waiting`, and the next start with VIGIL_SMTP_URL delivers it.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { until } from '../dispatch/helpers.js';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.js';
import { startServe, type ServiceProcess } from '../helpers/service-process.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
let running: ServiceProcess[] = [];
afterEach(async () => {
  for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(running.map((p) => p.exited));
  running = [];
});

function dataDirs(rule: string): { data: string; rules: string } {
  const d = mkdtempSync(join(tmpdir(), 'vigil-delivery-restart-'));
  dirs.push(d);
  const rules = join(d, 'rules');
  mkdirSync(rules);
  writeFileSync(join(rules, 'r.vigil'), `stream readings {
  key device
  fields { device: string
           temp: number }
}
${rule}`);
  return { data: join(d, 'data'), rules };
}

async function serve(args: string[], env: Record<string, string> = {}): Promise<ServiceProcess> {
  const p = await startServe(['--port', '0', ...args], { VIGIL_LOG_LEVEL: 'info', ...env });
  running.push(p);
  return p;
}

type Alerts = { alerts: { id: string; delivery: Record<string, { state: string; attempts: number; lastError: string | null }> }[] };
const alerts = async (url: string) => ((await (await fetch(`${url}/alerts?limit=1000`)).json()) as Alerts).alerts;

describe('delivery across restarts of vigil serve', () => {
  let receiver: HttpReceiver;
  let smtp: TestSmtpServer;
  afterAll(async () => {
    await receiver?.close();
    await smtp?.close();
  });

  it('a webhook down through a kill -9 and a restart receives every alert once back', async () => {
    let down = true;
    const ok = new Map<string, number>();
    receiver = await startHttpReceiver((req) => {
      if (down) return { status: 503 };
      const id = String(req.headers['idempotency-key']);
      ok.set(id, (ok.get(id) ?? 0) + 1);
      return { status: 204 };
    });
    const d = dataDirs(`rule hot {
  from readings
  match x: temp > 50
  alert high "{device} hot"
    to webhook "${receiver.url}/hook"
}
`);
    const args = ['--data-dir', d.data, '--rules-dir', d.rules, '--delivery-max-backoff-ms', '200', '--delivery-max-age-ms', '60000'];
    const first = await serve(args);
    const N = 20;
    const res = await fetch(`${first.url}/streams/readings/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(Array.from({ length: N }, (_, i) => ({ device: `d${i}`, temp: 70 }))),
    });
    expect(res.status).toBe(202);
    await until(async () => (await alerts(first.url)).every((a) => a.delivery['0:webhook']!.attempts > 8), 30_000, 'more than 8 attempts each');
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await serve(args);
    const resumed = await alerts(second.url);
    expect(resumed).toHaveLength(N);
    expect(resumed.every((a) => a.delivery['0:webhook']!.state === 'retrying')).toBe(true);
    down = false;
    await until(async () => (await alerts(second.url)).every((a) => a.delivery['0:webhook']!.state === 'delivered'), 15_000, 'all delivered');
    expect(new Set(ok.keys())).toEqual(new Set(resumed.map((a) => a.id)));
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).not.toMatch(/vigil_outbox_backlog\{sink="webhook"\} [1-9]/);
  }, 90_000);

  it('a `to email` rule without VIGIL_SMTP_URL waits, and is delivered by a start with it', async () => {
    smtp = await startTestSmtpServer();
    const d = dataDirs(`rule mail {
  from readings
  match x: temp > 50
  alert high "{device} hot"
    to email "ops@example.com" subject "Hot {device}"
}
`);
    const args = ['--data-dir', d.data, '--rules-dir', d.rules];
    const first = await serve(args);
    await fetch(`${first.url}/streams/readings/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device: 'm1', temp: 99 }) });
    await until(async () => (await alerts(first.url))[0]?.delivery['0:email']?.state === 'waiting', 10_000, 'waiting');
    expect((await alerts(first.url))[0]!.delivery['0:email']!.lastError).toMatch(/not configured: set VIGIL_SMTP_URL/);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);

    const second = await serve(args, { VIGIL_SMTP_URL: smtp.url });
    await until(async () => (await alerts(second.url))[0]?.delivery['0:email']?.state === 'delivered', 15_000, 'delivered');
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]!.raw).toMatch(/Subject: Hot m1/);
  }, 60_000);
});
