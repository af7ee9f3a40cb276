// Vigil feeding a real Alertmanager (issue 13): Debian's `prometheus-alertmanager`, two of
// them as an HA pair (clustering off: each on its own free loopback port with its own storage),
// and `vigil serve` as a process with a `to alertmanager "AM1", "AM2"` rule. Asserted through
// Alertmanager's own API: the alerts arrive in both with the right labels, annotations and
// generatorURL (which leads back to the alert in Vigil), Alertmanager routes them on to its
// receiver (a webhook to a test receiver), and a silence created in Alertmanager silences them
// there (state `suppressed`). Resolution (`endsAt`) is not sent yet: see the sink's header.
//
// Fails, not skips, without the binaries (test/helpers/prometheus.ts says what to install).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.js';
import { eventually, startAlertmanager, type RealProcess } from '../helpers/prometheus.js';
import { startServe, type ServiceProcess } from '../helpers/service-process.js';
import { removeTempDirs, tempDir } from '../helpers/service.js';

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  status: { state: string; silencedBy: string[]; inhibitedBy: string[] };
}

const RULES = (am1: string, am2: string) => `stream doors {
  key door
  time ts
  fields {
    door: string
    ts: number
    type: string
  }
}

rule door_forced {
  from doors
  match
    a: type == "forced"
  alert critical "door {door} forced open" to alertmanager "${am1}", "${am2}"
}

rule door_tamper {
  from doors
  match
    a: type == "tamper"
  alert warning "tamper on door {door}" to alertmanager "${am1}"
}
`;

let receiver: HttpReceiver;
let am1: RealProcess;
let am2: RealProcess;
let vigil: ServiceProcess;

async function amAlerts(am: RealProcess, query: string): Promise<AmAlert[]> {
  const res = await fetch(`${am.url}/api/v2/alerts?${query}`);
  if (!res.ok) throw new Error(`GET /api/v2/alerts: ${res.status} ${await res.text()}`);
  return (await res.json()) as AmAlert[];
}

async function ingest(events: unknown[]): Promise<void> {
  const res = await fetch(`${vigil.url}/streams/doors/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
  expect(res.status).toBe(202);
}

beforeAll(async () => {
  receiver = await startHttpReceiver(() => ({ status: 200 }));
  // AM1 routes everything to the test receiver at once; AM2 has a receiver that sends nothing.
  const routed = `route:
  receiver: test
  group_by: [alertname, key]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: test
    webhook_configs:
      - url: ${receiver.url}/am
`;
  [am1, am2] = await Promise.all([startAlertmanager(routed), startAlertmanager('route:\n  receiver: none\nreceivers:\n  - name: none\n')]);
  const root = tempDir();
  const rules = join(root, 'rules');
  mkdirSync(rules);
  writeFileSync(join(rules, 'doors.vigil'), RULES(am1.url, am2.url));
  vigil = await startServe(['--port', '0', '--data-dir', join(root, 'data'), '--rules-dir', rules]);
}, 60_000);

afterAll(async () => {
  if (vigil) {
    vigil.child.kill('SIGTERM');
    await vigil.exited;
  }
  await Promise.all([am1?.stop(), am2?.stop()]);
  await receiver?.close();
  removeTempDirs();
});

describe('to alertmanager, against a real Alertmanager', () => {
  test('an alert arrives in both of an HA pair with its labels, annotations and link back, and is routed on', async () => {
    const ts = Date.now() - 5_000;
    await ingest([{ door: 'north', type: 'forced', ts }]);
    const [inFirst, inSecond] = await Promise.all(
      [am1, am2].map((am) => eventually(`alert in ${am.url}`, async () => (await amAlerts(am, 'filter=alertname%3D%22door_forced%22')).find((a) => a.labels.key === 'north'))),
    );
    for (const a of [inFirst!, inSecond!]) {
      expect(a.labels).toEqual({ alertname: 'door_forced', severity: 'critical', key: 'north' });
      expect(a.annotations.summary).toBe('door north forced open');
      expect(a.annotations.description).toBe(`Match of Vigil rule door_forced (version 1) at ${new Date(ts).toISOString()}, key north.`);
      expect(a.startsAt).toBe(new Date(ts).toISOString());
      expect(a.status.state).toBe('active');
      // No endsAt sent: Alertmanager sets its resolve timeout (5 m by default) from now.
      expect(Date.parse(a.endsAt)).toBeGreaterThan(Date.now());
      expect(a.generatorURL).toBe(`${vigil.url}/alerts?rule=door_forced&key=north`);
    }
    // The link leads back to the alert in Vigil, which shows both deliveries done.
    const back = (await (await fetch(inFirst!.generatorURL)).json()) as { alerts: { id: string; delivery: Record<string, { state: string }> }[] };
    expect(back.alerts).toHaveLength(1);
    expect(back.alerts[0]!.id).toBe(inFirst!.annotations.vigil_alert_id);
    await eventually('both deliveries recorded', async () => {
      const again = (await (await fetch(inFirst!.generatorURL)).json()) as typeof back;
      const states = Object.entries(again.alerts[0]!.delivery).map(([name, d]) => [name, d.state]);
      return states.every(([, s]) => s === 'delivered') ? states : undefined;
    }).then((states) => expect(states).toEqual([['0:alertmanager', 'delivered'], ['1:alertmanager', 'delivered']]));
    // Alertmanager's own routing sends it on to its receiver.
    const notified = await eventually('notification from Alertmanager', async () =>
      receiver.requests.map((r) => JSON.parse(r.text) as { status: string; alerts: { labels: Record<string, string> }[] }).find((n) => n.alerts.some((a) => a.labels.alertname === 'door_forced')),
    );
    expect(receiver.requests[0]!.url).toBe('/am');
    expect(notified.status).toBe('firing');
    expect(notified.alerts[0]!.labels).toMatchObject({ alertname: 'door_forced', key: 'north', severity: 'critical' });
  });

  test('a silence created in Alertmanager silences Vigil alerts there', async () => {
    const now = new Date();
    const silence = await fetch(`${am1.url}/api/v2/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: [{ name: 'alertname', value: 'door_tamper', isRegex: false, isEqual: true }],
        startsAt: now.toISOString(),
        endsAt: new Date(now.getTime() + 3_600_000).toISOString(),
        createdBy: 'vigil tests',
        comment: 'maintenance on the doors',
      }),
    });
    expect(silence.status).toBe(200);
    const { silenceID } = (await silence.json()) as { silenceID: string };
    await ingest([{ door: 'south', type: 'tamper', ts: Date.now() - 1_000 }]);
    const silenced = await eventually('silenced alert', async () => {
      const found = (await amAlerts(am1, 'silenced=true&filter=alertname%3D%22door_tamper%22')).find((a) => a.labels.key === 'south');
      return found?.status.state === 'suppressed' ? found : undefined;
    });
    expect(silenced.status.silencedBy).toEqual([silenceID]);
    expect(silenced.annotations.summary).toBe('tamper on door south');
    // Not among the unsilenced alerts, and never sent to the receiver.
    expect((await amAlerts(am1, 'silenced=false&filter=alertname%3D%22door_tamper%22'))).toEqual([]);
    expect(receiver.requests.some((r) => r.text.includes('door_tamper'))).toBe(false);
  });
});
