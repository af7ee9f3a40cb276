// `vigil serve` as a child process: it listens and logs its address, stops cleanly on SIGTERM
// (exit 0, state kept), refuses a non-loopback address without a token, reports a port in use
// and bad configuration clearly, and starts from a savepoint only into an empty data dir.

import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { startServe, spawnServe } from '../helpers/service-process.js';
import { removeTempDirs, tempDir } from '../helpers/service.js';
import { RULE_AB, STREAM_S } from '../helpers/service-rules.js';

afterAll(removeTempDirs);

function dirs(): { data: string; rules: string } {
  const root = tempDir();
  const rules = join(root, 'rules');
  mkdirSync(rules);
  writeFileSync(join(rules, 's.vigil'), STREAM_S + RULE_AB);
  return { data: join(root, 'data'), rules };
}

async function postEvents(url: string, events: unknown[]): Promise<Response> {
  return fetch(`${url}/streams/s/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
}

describe('vigil serve', () => {
  test('serves, stops on SIGTERM with exit 0, and restarts on its state', async () => {
    const d = dirs();
    const first = await startServe(['--port', '0', '--data-dir', d.data, '--rules-dir', d.rules]);
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await (await fetch(`${first.url}/health`)).json() as any)).toEqual({ status: 'ok' });
    expect((await fetch(`${first.url}/ready`)).status).toBe(200);
    const res = await postEvents(first.url, [{ type: 'a', k: 'u', ts: 1 }]);
    expect(res.status).toBe(202);
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    const logLines = first.output().split('\n').filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(2);
    for (const l of logLines) expect(() => JSON.parse(l)).not.toThrow();

    const second = await startServe(['--port', '0', '--data-dir', d.data, '--rules-dir', d.rules]);
    try {
      await postEvents(second.url, [{ type: 'b', k: 'u', ts: 2 }]);
      const alerts = await (await fetch(`${second.url}/alerts`)).json() as any;
      expect(alerts.alerts.map((a: { message: string }) => a.message)).toEqual(['ab u']);
    } finally {
      second.child.kill('SIGINT');
      expect((await second.exited).code).toBe(0);
    }
  });

  test('refuses a non-loopback address without a token', async () => {
    const d = dirs();
    const p = spawnServe(['--host', '0.0.0.0', '--port', '0', '--data-dir', d.data, '--rules-dir', d.rules]);
    expect((await p.exited).code).toBe(1);
    expect(p.output()).toMatch(/refusing to listen on 0\.0\.0\.0.*VIGIL_API_TOKEN/);
  });

  test('a port in use: a clear error, exit 1', async () => {
    const d = dirs();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const p = spawnServe(['--port', String(port), '--data-dir', d.data, '--rules-dir', d.rules]);
      expect((await p.exited).code).toBe(1);
      expect(p.output()).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use`);
    } finally {
      blocker.close();
    }
  });

  test('a bad setting: exit 2 naming it', async () => {
    const p = spawnServe([], { VIGIL_PORT: 'http' });
    expect((await p.exited).code).toBe(2);
    expect(p.output()).toContain('VIGIL_PORT');
  });

  test('--from-savepoint: into an empty data dir only', async () => {
    const d = dirs();
    const token = 'tok';
    const first = await startServe(['--port', '0', '--data-dir', d.data, '--rules-dir', d.rules, '--api-token', token]);
    let savepoint: string;
    try {
      await postEvents(first.url, [{ type: 'a', k: 'u', ts: 1 }]);
      const res = await fetch(`${first.url}/admin/savepoints`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(201);
      savepoint = (await res.json() as any).path;
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }
    // Refused on a data dir that holds state.
    const refused = spawnServe(['--port', '0', '--data-dir', d.data, '--rules-dir', d.rules, '--from-savepoint', savepoint]);
    expect((await refused.exited).code).toBe(1);
    expect(refused.output()).toMatch(/already holds state.*empty or missing data dir/);

    const fresh = join(tempDir(), 'fresh');
    const restored = await startServe(['--port', '0', '--data-dir', fresh, '--rules-dir', d.rules, '--from-savepoint', savepoint]);
    try {
      const streams = await (await fetch(`${restored.url}/streams`)).json() as any;
      expect(streams.streams[0]).toMatchObject({ name: 's', accepted: 1 });
      await postEvents(restored.url, [{ type: 'b', k: 'u', ts: 2 }]);
      const alerts = await (await fetch(`${restored.url}/alerts`)).json() as any;
      expect(alerts.alerts).toHaveLength(1);
    } finally {
      restored.child.kill('SIGTERM');
      expect((await restored.exited).code).toBe(0);
    }
  });
});

describe('vigil serve: a sink the service has no configuration for', () => {
  test('loads with a warning in the PUT and validate answers and in GET /rules (file and API rules), not at the first delivery', async () => {
    const d = dirs();
    // A file rule that publishes to MQTT, in a service started without VIGIL_MQTT_URL.
    writeFileSync(join(d.rules, 'mqtt.vigil'), 'rule to_broker {\n  from s\n  match a: type == "a"\n  alert info "a {k}" to mqtt "alerts/{k}"\n}\n');
    const p = await startServe(['--port', '0', '--data-dir', d.data, '--rules-dir', d.rules]);
    try {
      const emailRule = STREAM_S + 'rule mailer {\n  from s\n  match a: type == "a"\n  alert info "a {k}" to email "ops@example.com"\n}\n';
      const expected = {
        severity: 'warning',
        code: 'compile/sink-not-configured',
        line: 14,
        col: 22,
        message: "'to email' needs VIGIL_SMTP_URL, which this service does not set: every email delivery of this rule will fail",
      };
      const validate = await (await fetch(`${p.url}/rules/validate`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: emailRule })).json() as any;
      expect(validate.ok).toBe(true);
      expect(validate.warnings).toEqual([expect.objectContaining(expected)]);
      const put = await fetch(`${p.url}/rules/mailer`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: emailRule });
      expect(put.status).toBe(201);
      expect(((await put.json()) as any).warnings).toEqual([expect.objectContaining(expected)]);

      const rules = ((await (await fetch(`${p.url}/rules`)).json()) as any).rules as { id: string; status: string; warnings: unknown[] }[];
      const byId = new Map(rules.map((r) => [r.id, r]));
      expect(byId.get('mailer')).toMatchObject({ status: 'running', warnings: [expect.objectContaining({ ...expected, file: 'request' })] });
      expect(byId.get('to_broker')).toMatchObject({
        status: 'running',
        warnings: [
          expect.objectContaining({
            code: 'compile/sink-not-configured',
            line: 4,
            col: 22,
            file: join(d.rules, 'mqtt.vigil'),
            message: "'to mqtt' needs VIGIL_MQTT_URL, which this service does not set: every MQTT delivery of this rule will fail",
          }),
        ],
      });
      // The rule from the shared fixture has no sink to configure: no warning.
      expect(byId.get('ab')).toMatchObject({ warnings: [] });
    } finally {
      p.child.kill('SIGTERM');
      expect((await p.exited).code).toBe(0);
    }
  });
});
