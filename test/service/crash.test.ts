// Crash safety (service.md §4) end to end: the service runs as a child process on a temp data
// dir; a recorded NDJSON stream goes in over HTTP in batches, each with an Idempotency-Key; the
// child is killed with SIGKILL at seeded random points — between batches and while a batch is
// in flight — and restarted on the same data dir; every batch that got no answer is sent again
// with the same key. At the end the alerts the service holds (GET /alerts, every page) must be
// exactly those of an uninterrupted `runReplay` over the same file: the same ids, no duplicates.
// One absence timer is pending across a crash, and its alert must still come out afterwards.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, expect, test } from 'vitest';
import { runReplay } from '../../src/cli/run.js';
import { startServe, type ServiceProcess } from '../helpers/service-process.js';
import { removeTempDirs, tempDir } from '../helpers/service.js';

const RULES = `stream s {
  key k
  time ts
  watermark 0s
}

rule gap {
  from s
  match
    a: type == "a"
    then not b: type == "b" for 5s
  alert warning "no b after {a.id}"
}

rule pair {
  from s
  match
    a: type == "a"
    then c: type == "c"
  within 3s
  alert info "c after {first(a).id}"
  on timeout alert info "no c after {first(a).id}"
}

rule triple {
  from s
  match
    x{3}: type == "x"
  alert info "three x ending {id}"
}
`;

/** A deterministic recorded stream: times in ms, in order; the pending-timer event is planted in batch PLANT. */
function recordedEvents(seed: number, n: number, batchSize: number, plantBatch: number): { events: Record<string, unknown>[]; plantedId: string } {
  let state = seed;
  const rand = (): number => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const types = ['a', 'b', 'c', 'x', 'x', 'y'];
  const events: Record<string, unknown>[] = [];
  let ts = 1_700_000_000_000;
  const plantedId = 'planted-a';
  for (let i = 0; i < n; i++) {
    ts += 50 + Math.floor(rand() * 300);
    if (i === (plantBatch + 1) * batchSize - 1) {
      // The last event of the batch before a crash: an 'a' on a key nothing else uses, so its
      // 5 s absence timer is pending when the child dies.
      events.push({ id: plantedId, type: 'a', k: 'lonely', ts });
      continue;
    }
    events.push({ id: `e${i}`, type: types[Math.floor(rand() * types.length)], k: `k${Math.floor(rand() * 6)}`, ts });
  }
  // Far ahead: moves the watermark past every pending timer (the replay ends at +∞ instead).
  events.push({ id: 'end', type: 'y', k: 'k0', ts: ts + 60_000 });
  return { events, plantedId };
}

let child: ServiceProcess | null = null;
afterEach(() => {
  child?.child.kill('SIGKILL');
  child = null;
});
afterAll(removeTempDirs);

async function allAlerts(url: string): Promise<{ id: string; message: string; rule: string }[]> {
  const out: { id: string; message: string; rule: string }[] = [];
  let cursor: string | null = null;
  do {
    const res = await fetch(`${url}/alerts?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { alerts: { id: string; message: string; rule: string }[]; next: string | null };
    out.push(...page.alerts);
    cursor = page.next;
  } while (cursor !== null);
  return out;
}

test('kill -9 at random points, restart, resend unanswered batches: the same alerts as an uninterrupted replay', async () => {
  const root = tempDir('vigil-crash-');
  const rulesDir = join(root, 'rules');
  const dataDir = join(root, 'data');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'crash.vigil'), RULES);
  const args = ['--port', '0', '--data-dir', dataDir, '--rules-dir', rulesDir, '--checkpoint-ms', '5'];

  const BATCH = 25;
  const PLANT = 7;
  const { events, plantedId } = recordedEvents(20260101, 600, BATCH, PLANT);
  const file = events.map((e) => JSON.stringify(e)).join('\n') + '\n';
  const batches: string[] = [];
  for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH).map((e) => JSON.stringify(e)).join('\n'));

  // Crash plan (seeded): after batch PLANT answered (timer pending), and at random batches,
  // half of them while the batch is in flight.
  let r = 99;
  const rand = (): number => ((r = (r * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const crashes = new Map<number, 'after' | 'inflight'>([[PLANT, 'after']]);
  while (crashes.size < 7) {
    const at = 1 + Math.floor(rand() * (batches.length - 2));
    if (!crashes.has(at)) crashes.set(at, crashes.size < 3 ? 'inflight' : rand() < 0.5 ? 'inflight' : 'after');
  }
  let firstInflight = true;

  const send = (url: string, i: number): Promise<Response> =>
    fetch(`${url}/streams/s/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': `batch-${i}` },
      body: batches[i],
    });

  child = await startServe(args);
  let restarts = 0;
  let accepted = 0;
  let lostAnswers = 0;
  const answers = new Map<number, unknown>();
  for (let i = 0; i < batches.length; i++) {
    const plan = crashes.get(i);
    let answer: Response | null = null;
    if (plan === 'inflight') {
      const pending = send(child.url, i).catch(() => null);
      // The first one dies at once (its answer is surely lost); the others after 0-15 ms, so
      // some die before the commit, some after it with the answer still on the wire.
      const delay = firstInflight ? 0 : Math.floor(rand() * 15);
      firstInflight = false;
      if (delay > 0) await new Promise((res) => setTimeout(res, delay));
      child.child.kill('SIGKILL');
      answer = await pending;
      await child.exited;
    } else {
      answer = await send(child.url, i);
    }
    if (answer !== null) {
      expect(answer.status).toBe(202);
      const body = (await answer.json().catch(() => null)) as { accepted: number } | null;
      if (body !== null) answers.set(i, body);
      else answer = null;
    }
    if (plan === 'after') {
      if (i === PLANT) {
        // The absence timer of the planted 'a' is pending: no alert for it yet.
        expect((await allAlerts(child.url)).some((a) => a.message === `no b after ${plantedId}`)).toBe(false);
      }
      child.child.kill('SIGKILL');
      await child.exited;
    }
    if (plan !== undefined) {
      child = await startServe(args);
      restarts++;
    }
    if (answer === null) {
      // No answer: send the same batch again with the same key.
      lostAnswers++;
      const again = await send(child.url, i);
      expect(again.status).toBe(202);
      answers.set(i, await again.json());
    }
    accepted += (answers.get(i) as { accepted: number }).accepted;
  }
  expect(restarts).toBe(7);
  expect(lostAnswers).toBeGreaterThanOrEqual(1);
  expect(accepted).toBe(events.length);

  const streams = (await (await fetch(`${child.url}/streams`)).json()) as { streams: { name: string; accepted: number; rejected: number; late: number }[] };
  expect(streams.streams[0]).toMatchObject({ name: 's', accepted: events.length, rejected: 0, late: 0 });

  const service = await allAlerts(child.url);
  const replay = await runReplay({ rules: [{ file: 'crash.vigil', text: RULES }], events: file });
  expect(replay.exitCode).toBe(0);
  const expected = replay.records.filter((x): x is Extract<typeof x, { id: string }> => 'id' in x);

  const ids = service.map((a) => a.id);
  expect(new Set(ids).size).toBe(ids.length); // no duplicates
  expect(expected.length).toBeGreaterThan(50);
  expect(new Set(expected.map((a) => a.rule))).toEqual(new Set(['gap', 'pair', 'triple']));
  expect([...ids].sort()).toEqual(expected.map((a) => a.id).sort());
  const byId = new Map(service.map((a) => [a.id, a.message]));
  for (const e of expected) expect(byId.get(e.id)).toBe(e.message);
  // The timer pending across the crash fired after the restart.
  expect(service.some((a) => a.message === `no b after ${plantedId}`)).toBe(true);
}, 60_000);
