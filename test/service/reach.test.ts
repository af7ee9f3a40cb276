// Issue 15, case 12, re-run against `vigil serve` (a child process): a rule that posts to the
// service's own `/admin/savepoints` with the API token makes no savepoint — the delivery fails
// for good, saying why — even though 127.0.0.1 is allowed for the tests' receivers; a PUT of
// such a rule once the service listens does not compile. With `self` allowed it goes through.

import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { startServe, type ServiceProcess } from '../helpers/service-process.js';
import { removeTempDirs, tempDir } from '../helpers/service.js';
import { STREAM_S } from '../helpers/service-rules.js';

afterAll(removeTempDirs);

const TOKEN = 'reach test token';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function selfRule(port: number): string {
  return `rule selfpost {
  from s
  match a: type == "a"
  alert info "hit {k}" to webhook "http://127.0.0.1:${port}/admin/savepoints" header "Authorization" "Bearer ${TOKEN}"
}
`;
}

type Delivery = { state: string; attempts: number; lastError: string | null };

/** Polls GET /alerts until every delivery of `n` alerts is final (bounded). */
async function finalAlerts(url: string, n: number): Promise<{ delivery: Record<string, Delivery> }[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const body = (await (await fetch(`${url}/alerts`)).json()) as { alerts: { delivery: Record<string, Delivery> }[] };
    const done = body.alerts.length === n && body.alerts.every((a) => Object.values(a.delivery).every((d) => d.state === 'delivered' || d.state === 'failed'));
    if (done || Date.now() > deadline) return body.alerts;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function run(allow: string | undefined, events: number): Promise<{ p: ServiceProcess; data: string; alerts: { delivery: Record<string, Delivery> }[] }> {
  const root = tempDir();
  const rules = join(root, 'rules');
  const data = join(root, 'data');
  mkdirSync(rules);
  const port = await freePort();
  writeFileSync(join(rules, 's.vigil'), STREAM_S + selfRule(port));
  const p = await startServe(['--port', String(port), '--data-dir', data, '--rules-dir', rules, '--api-token', TOKEN], allow === undefined ? {} : { VIGIL_WEBHOOK_ALLOW: allow });
  const batch = Array.from({ length: events }, (_, i) => ({ k: `k${i}`, ts: i + 1, type: 'a' }));
  const res = await fetch(`${p.url}/streams/s/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
  expect(res.status).toBe(202);
  return { p, data, alerts: await finalAlerts(p.url, events) };
}

async function stop(p: ServiceProcess): Promise<void> {
  p.child.kill('SIGTERM');
  await p.exited;
}

describe('webhooks cannot reach the service itself', () => {
  test('20 alerts to its own /admin/savepoints with the token make no savepoint (127.0.0.1 allowed, self not)', async () => {
    const { p, data, alerts } = await run(undefined, 20);
    try {
      expect(alerts).toHaveLength(20);
      for (const a of alerts) {
        const d = Object.values(a.delivery)[0]!;
        expect(d.state).toBe('failed');
        expect(d.attempts).toBe(1); // permanent: no retries
        expect(d.lastError).toContain("this service's own endpoint");
        expect(d.lastError).not.toContain(TOKEN);
      }
      const metrics = await (await fetch(`${p.url}/metrics`)).text();
      expect(metrics).toMatch(/^vigil_webhook_refused_total 20$/m);
      const savepoints = join(data, 'savepoints');
      expect(existsSync(savepoints) ? readdirSync(savepoints) : []).toEqual([]);
      // Once it listens, the same target does not even compile.
      const put = await fetch(`${p.url}/rules/selfpost2`, {
        method: 'PUT',
        headers: { 'content-type': 'text/plain', authorization: `Bearer ${TOKEN}` },
        body: selfRule(Number(new URL(p.url).port)).replace('rule selfpost', 'rule selfpost2'),
      });
      expect(put.status).toBe(400);
      const body = (await put.json()) as { errors: { code: string; message: string }[] };
      expect(body.errors[0]).toMatchObject({ code: 'compile/webhook-refused' });
      expect(body.errors[0]!.message).toContain('own endpoint');
      // The logs (every failed delivery is logged) hold neither the token nor the header.
      expect(p.output()).toContain('alert delivery failed');
      expect(p.output()).not.toContain(TOKEN);
    } finally {
      await stop(p);
    }
  });

  test('with VIGIL_WEBHOOK_ALLOW=127.0.0.1,self the deliveries go through (savepoints made)', async () => {
    const { p, data, alerts } = await run('127.0.0.1,self', 2);
    try {
      expect(alerts.map((a) => Object.values(a.delivery)[0]!.state)).toEqual(['delivered', 'delivered']);
      expect(readdirSync(join(data, 'savepoints')).length).toBeGreaterThanOrEqual(1);
    } finally {
      await stop(p);
    }
  });
});
