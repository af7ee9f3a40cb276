// Two `vigil serve` instances on one host (own ports, own data dirs) with one MQTT broker: each
// gets its own client id (the default differs per data dir), so neither takes over the other's
// persistent session — both become ready and stay connected, with no reconnect loop. The
// client id can be set (VIGIL_MQTT_CLIENT_ID, or the URL's `?clientId=`).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chooseClientId, defaultClientId } from '../../src/ingest/mqtt-connection.js';
import { startTestBroker, testTopicPrefix, type TestBroker } from '../helpers/mqtt-broker.js';
import { startServe, type ServiceProcess } from '../helpers/service-process.js';
import { removeTempDirs, tempDir } from '../helpers/service.js';
import { RULE_AB, STREAM_S } from '../helpers/service-rules.js';

let broker: TestBroker;
beforeAll(async () => {
  broker = await startTestBroker();
});
afterAll(async () => {
  await broker.close();
  removeTempDirs();
});

function dirs(): { data: string; rules: string } {
  const root = tempDir();
  const rules = join(root, 'rules');
  mkdirSync(rules);
  writeFileSync(join(rules, 's.vigil'), STREAM_S + RULE_AB);
  return { data: join(root, 'data'), rules };
}

/** Polls GET /ready until 200 (bounded: `timeoutMs`). */
async function waitReady(url: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    const res = await fetch(`${url}/ready`);
    last = `${res.status} ${await res.text()}`;
    if (res.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms: ${last}`);
}

/** The client ids of the "MQTT connected"/"MQTT reconnected" log lines. */
function connects(p: ServiceProcess): { msg: string; clientId: string }[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; clientId?: string })
    .filter((l) => l.msg === 'MQTT connected' || l.msg === 'MQTT reconnected')
    .map((l) => ({ msg: l.msg, clientId: l.clientId! }));
}

async function stop(p: ServiceProcess): Promise<void> {
  if (p.child.exitCode === null) p.child.kill('SIGTERM');
  await p.exited;
}

describe('instances that share a host', () => {
  test('the default client id differs per data dir and is stable for one', () => {
    expect(defaultClientId('/var/lib/vigil-a')).not.toBe(defaultClientId('/var/lib/vigil-b'));
    expect(defaultClientId('/var/lib/vigil-a')).toBe(defaultClientId('/var/lib/vigil-a/'));
    expect(defaultClientId('/var/lib/vigil-a')).toMatch(/^vigil-[A-Za-z0-9_.-]+-[0-9a-f]{8}$/);
    // The setting wins over the URL's ?clientId=, which wins over the default.
    expect(chooseClientId('mqtt://h:1883?clientId=from-url', 'from-setting', '/d')).toBe('from-setting');
    expect(chooseClientId('mqtt://h:1883?clientId=from-url', null, '/d')).toBe('from-url');
    expect(chooseClientId('mqtt://h:1883', null, '/d')).toBe(defaultClientId('/d'));
  });

  test('two instances, own data dirs, one broker: both ready, no reconnect loop', async () => {
    const a = dirs();
    const b = dirs();
    const env = { VIGIL_MQTT_URL: broker.url };
    const first = await startServe(['--port', '0', '--data-dir', a.data, '--rules-dir', a.rules], env);
    let second: ServiceProcess | null = null;
    try {
      await waitReady(first.url);
      second = await startServe(['--port', '0', '--data-dir', b.data, '--rules-dir', b.rules], env);
      await waitReady(second.url);
      // With a shared client id the broker drops the older connection at once and the two take
      // turns (reconnect every second): watch both for 3 s.
      for (let i = 0; i < 15; i++) {
        await new Promise((r) => setTimeout(r, 200));
        expect((await fetch(`${first.url}/ready`)).status).toBe(200);
        expect((await fetch(`${second.url}/ready`)).status).toBe(200);
      }
      for (const p of [first, second]) {
        expect(p.output()).not.toContain('MQTT connection lost');
        expect(connects(p).map((c) => c.msg)).toEqual(['MQTT connected']);
      }
      expect(connects(first)[0]!.clientId).toBe(defaultClientId(a.data));
      expect(connects(second)[0]!.clientId).toBe(defaultClientId(b.data));
      expect(connects(first)[0]!.clientId).not.toBe(connects(second)[0]!.clientId);
    } finally {
      await stop(first);
      if (second) await stop(second);
    }
  });

  test("the client id is set by VIGIL_MQTT_CLIENT_ID, else by the URL's ?clientId=", async () => {
    const id = `${testTopicPrefix().replace(/\//g, '-')}`;
    const a = dirs();
    const fromUrl = await startServe(['--port', '0', '--data-dir', a.data, '--rules-dir', a.rules], { VIGIL_MQTT_URL: `${broker.url}?clientId=${id}-url` });
    try {
      await waitReady(fromUrl.url);
      expect(connects(fromUrl)[0]!.clientId).toBe(`${id}-url`);
    } finally {
      await stop(fromUrl);
    }
    const b = dirs();
    const fromSetting = await startServe(['--port', '0', '--data-dir', b.data, '--rules-dir', b.rules], {
      VIGIL_MQTT_URL: `${broker.url}?clientId=${id}-url`,
      VIGIL_MQTT_CLIENT_ID: `${id}-setting`,
    });
    try {
      await waitReady(fromSetting.url);
      expect(connects(fromSetting)[0]!.clientId).toBe(`${id}-setting`);
    } finally {
      await stop(fromSetting);
    }
  });
});
