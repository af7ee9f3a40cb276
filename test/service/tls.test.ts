// Production connectivity over real TLS (issue 12), with certificates made at run time
// (test/helpers/tls-certs.ts): `vigil serve` against a Mosquitto that requires client
// certificates (events in over MQTT, an alert out over MQTT); a wrong CA, a missing client
// certificate and an unreadable file refused at start with a message naming the setting, the
// file and the reason; the API over HTTPS checked against the test CA; and SIGHUP with a
// renewed certificate while ingest runs: every request answered, the new certificate served.

import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTlsMosquitto, type TlsMosquitto } from '../helpers/mosquitto-tls.js';
import { spawnServe, startServe, type ServiceProcess } from '../helpers/service-process.js';
import { STREAM_S } from '../helpers/service-rules.js';
import { removeTempDirs, tempDir } from '../helpers/service.js';
import { testTopicPrefix } from '../helpers/mqtt-broker.js';
import { makeTestPki, type TestPki } from '../helpers/tls-certs.js';

let pki: TestPki;
let broker: TlsMosquitto;
/** Every service this file starts: killed in afterAll even when a test failed half-way. */
const children: { kill: (s: NodeJS.Signals) => boolean }[] = [];
const serve = (...a: Parameters<typeof spawnServe>): ReturnType<typeof spawnServe> => {
  const p = spawnServe(...a);
  children.push(p.child);
  return p;
};
const serveListening = async (...a: Parameters<typeof startServe>): Promise<ServiceProcess> => {
  const p = await startServe(...a);
  children.push(p.child);
  return p;
};

beforeAll(async () => {
  pki = makeTestPki();
  broker = await startTlsMosquitto({ ca: pki.ca, cert: pki.server.cert, key: pki.server.key });
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await broker?.close();
  pki?.remove();
  removeTempDirs();
});

function dirs(rules: Record<string, string>): { dataDir: string; rulesDir: string } {
  const root = tempDir('vigil-tls-');
  const rulesDir = join(root, 'rules');
  mkdirSync(rulesDir);
  for (const [name, text] of Object.entries(rules)) writeFileSync(join(rulesDir, name), text);
  return { dataDir: join(root, 'data'), rulesDir };
}

async function stopped(p: { child: { kill: (s: NodeJS.Signals) => boolean }; exited: Promise<{ code: number | null }> }): Promise<number | null> {
  p.child.kill('SIGTERM');
  return (await p.exited).code;
}

describe('MQTT over TLS with client certificates (Mosquitto, require_certificate)', () => {
  test('events in over mqtts, an alert out over mqtts', async () => {
    const prefix = testTopicPrefix();
    const rules = `stream tx {
  key card
  time ts
  fields { card: string, ts: number, amount: number }
  source mqtt "${prefix}/tx"
}
rule big {
  from tx
  match
    a: amount > 100
  alert high "big {card}" to mqtt "${prefix}/alerts/{card}"
}
`;
    const { dataDir, rulesDir } = dirs({ 'tx.vigil': rules });
    const p = await serveListening(['--data-dir', dataDir, '--rules-dir', rulesDir, '--port', '0'], {
      VIGIL_MQTT_URL: broker.url,
      VIGIL_MQTT_CA: pki.ca,
      VIGIL_MQTT_CERT: pki.client.cert,
      VIGIL_MQTT_KEY: pki.client.key,
      VIGIL_MQTT_CLIENT_ID: `vigil-tls-${prefix.slice(-6)}`,
    });
    const client = await mqtt.connectAsync(broker.url, {
      ca: readFileSync(pki.ca),
      cert: readFileSync(pki.client.cert),
      key: readFileSync(pki.client.key),
      clientId: `tester-${prefix.slice(-6)}`,
    });
    try {
      const got = new Promise<{ topic: string; alert: { message: string; key: unknown } }>((resolve) => {
        client.on('message', (topic, payload) => resolve({ topic, alert: JSON.parse(String(payload)) }));
      });
      await client.subscribeAsync(`${prefix}/alerts/#`, { qos: 1 });
      await client.publishAsync(`${prefix}/tx`, JSON.stringify({ card: 'c1', ts: Date.now(), amount: 500 }), { qos: 1 });
      const { topic, alert } = await got;
      expect(topic).toBe(`${prefix}/alerts/c1`);
      expect(alert.message).toBe('big c1');
      expect(p.output()).toContain('MQTT connected');
    } finally {
      await client.endAsync();
      expect(await stopped(p)).toBe(0);
    }
  }, 60_000);

  test('a broker certificate from another CA stops the start, naming VIGIL_MQTT_CA, the file and why', async () => {
    const { dataDir, rulesDir } = dirs({});
    const p = serve(['--data-dir', dataDir, '--rules-dir', rulesDir, '--port', '0'], {
      VIGIL_MQTT_URL: broker.url,
      VIGIL_MQTT_CA: pki.otherCa,
      VIGIL_MQTT_CERT: pki.client.cert,
      VIGIL_MQTT_KEY: pki.client.key,
    });
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.output()).toMatch(/cannot start: TLS handshake with MQTT broker 127\.0\.0\.1:\d+ failed: .*(not signed by a trusted CA|CA that is not trusted).*VIGIL_MQTT_CA/);
    expect(p.output()).toContain(pki.otherCa);
    expect(p.output()).not.toContain('vigil listening');
  }, 30_000);

  test('no client certificate: the broker refuses, and the start says so', async () => {
    const { dataDir, rulesDir } = dirs({});
    const p = serve(['--data-dir', dataDir, '--rules-dir', rulesDir, '--port', '0'], { VIGIL_MQTT_URL: broker.url, VIGIL_MQTT_CA: pki.ca });
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.output()).toMatch(/TLS handshake with MQTT broker 127\.0\.0\.1:\d+ failed: the peer refused no client certificate \(set VIGIL_MQTT_CERT\)/);
  }, 30_000);

  test('an unreadable certificate file is a configuration error naming the setting and the path', async () => {
    const { dataDir, rulesDir } = dirs({});
    const missing = join(pki.dir, 'no-such-client.pem');
    const p = serve(['--data-dir', dataDir, '--rules-dir', rulesDir, '--port', '0'], {
      VIGIL_MQTT_URL: broker.url,
      VIGIL_MQTT_CA: pki.ca,
      VIGIL_MQTT_CERT: missing,
      VIGIL_MQTT_KEY: pki.client.key,
    });
    expect((await p.exited).code).toBe(2);
    expect(p.output()).toContain(`VIGIL_MQTT_CERT: cannot read ${missing}: no such file`);
    // A key given as the CA: not a certificate.
    const q = serve(['--data-dir', dataDir, '--rules-dir', rulesDir, '--port', '0'], { VIGIL_MQTT_URL: broker.url, VIGIL_MQTT_CA: pki.client.key });
    expect((await q.exited).code).toBe(2);
    expect(q.output()).toContain(`VIGIL_MQTT_CA: ${pki.client.key} is not a PEM certificate file`);
  }, 30_000);
});

/** An HTTPS request that verifies the server against the test CA; a fresh connection each time. */
function request(url: string, ca: Buffer, method: string, path: string, body?: string): Promise<{ status: number; body: string; peerCn: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${url}${path}`, { method, ca, agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      const peer = (res.socket as tls.TLSSocket).getPeerCertificate();
      let text = '';
      res.on('data', (d) => (text += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, peerCn: String(peer.subject?.CN ?? '') }));
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('request timed out')));
    req.end(body);
  });
}

describe('the API over HTTPS', () => {
  let p: ServiceProcess;
  let certFile: string;
  let keyFile: string;
  const ca = (): Buffer => readFileSync(pki.ca);

  beforeAll(async () => {
    const { dataDir, rulesDir } = dirs({ 's.vigil': STREAM_S });
    // The service reads its certificate from these paths; the test renews them in place.
    const root = tempDir('vigil-tls-api-');
    certFile = join(root, 'api.pem');
    keyFile = join(root, 'api.key');
    writeFileSync(certFile, readFileSync(pki.server.cert));
    writeFileSync(keyFile, readFileSync(pki.server.key));
    p = await serveListening(['--data-dir', dataDir, '--rules-dir', rulesDir, '--port', '0'], { VIGIL_TLS_CERT: certFile, VIGIL_TLS_KEY: keyFile });
  }, 60_000);

  afterAll(async () => {
    if (p) expect(await stopped(p)).toBe(0);
  });

  test('listens on https and a client verifying against the test CA is served; one that does not trust it is refused', async () => {
    expect(p.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await request(p.url, ca(), 'GET', '/health');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
    expect(health.peerCn).toBe('vigil-test-server');
    await expect(request(p.url, readFileSync(pki.otherCa), 'GET', '/health')).rejects.toThrow(/certificate/i);
  });

  test('SIGHUP with a renewed certificate while ingest runs: every request answered, the new certificate served after', async () => {
    const renewed = pki.serverCert('vigil-test-server-renewed');
    const total = 120;
    let sent = 0;
    let accepted = 0;
    const statuses: number[] = [];
    const seen = new Set<string>();
    // One writer, bounded in count: a fresh TLS connection per request, so handshakes run
    // before, during and after the switch.
    const ingest = (async () => {
      for (let i = 0; i < total; i++) {
        const r = await request(p.url, ca(), 'POST', '/streams/s/events', JSON.stringify({ k: `k${i}`, ts: 1_000 + i, type: 'a' }));
        sent++;
        statuses.push(r.status);
        seen.add(r.peerCn);
        if (r.status === 202) accepted += (JSON.parse(r.body) as { accepted: number }).accepted;
        if (i === 30) {
          writeFileSync(certFile, readFileSync(renewed.cert));
          writeFileSync(keyFile, readFileSync(renewed.key));
          p.child.kill('SIGHUP');
        }
      }
    })();
    await ingest;
    expect(sent).toBe(total);
    expect(statuses.filter((s) => s !== 202)).toEqual([]);
    expect(accepted).toBe(total);
    expect(seen).toEqual(new Set(['vigil-test-server', 'vigil-test-server-renewed']));
    const after = await request(p.url, ca(), 'GET', '/health');
    expect(after.peerCn).toBe('vigil-test-server-renewed');
    expect(p.output()).toContain('API certificate reloaded');
    expect(p.child.exitCode).toBeNull();
  }, 120_000);

  test('SIGHUP with a broken key keeps the old certificate and says why', async () => {
    const before = await request(p.url, ca(), 'GET', '/health');
    const good = readFileSync(keyFile);
    writeFileSync(keyFile, 'not a key');
    p.child.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (!p.output().includes('API certificate not reloaded') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(p.output()).toContain(`VIGIL_TLS_KEY: ${keyFile} is not a PEM key file`);
    writeFileSync(keyFile, good);
    const after = await request(p.url, ca(), 'GET', '/health');
    expect(after.status).toBe(200);
    expect(after.peerCn).toBe(before.peerCn);
  }, 30_000);
});
