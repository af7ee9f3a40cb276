// The Grafana dashboards in dashboards/ (service.md §6): each file is JSON that imports into
// current Grafana (schemaVersion, a `datasource` variable of type datasource for Prometheus,
// every panel on `${datasource}`, no hard-coded dashboard or datasource uids), every query names
// only metrics the service exports (src/metrics/catalogue.ts), and every exported metric is shown
// by some panel unless it is in the allow-list below.

import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { METRICS } from '../src/metrics/catalogue.js';

const dashboardsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dashboards');

/**
 * Metrics that no panel needs to show. Empty today: every metric of the catalogue is on a
 * dashboard. Add a name here only with a comment saying why it is not charted.
 */
const NOT_CHARTED: readonly string[] = [];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

type Panel = Obj;

const isObj = (v: Json | undefined): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Every panel, rows' nested panels included. */
function allPanels(d: Obj): Panel[] {
  const out: Panel[] = [];
  const walk = (ps: Json | undefined): void => {
    if (!Array.isArray(ps)) return;
    for (const p of ps) {
      if (!isObj(p)) continue;
      out.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

/** Every value of a key named `key`, anywhere in the document. */
function valuesOf(v: Json, key: string, out: Json[] = []): Json[] {
  if (Array.isArray(v)) for (const x of v) valuesOf(x, key, out);
  else if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === key) out.push(x);
      valuesOf(x, key, out);
    }
  }
  return out;
}

const catalogue = new Map(METRICS.map((m) => [m.name, m]));

/** The catalogue names an expression refers to; unknown names are returned as they are. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/vigil_[a-z_]+/g)].map(([id]) => {
    if (catalogue.has(id)) return id;
    const base = id.replace(/_(bucket|sum|count)$/, '');
    return catalogue.get(base)?.type === 'histogram' ? base : id;
  });
}

const DS = { type: 'prometheus', uid: '${datasource}' };

const files = readdirSync(dashboardsDir)
  .filter((f) => f.endsWith('.json'))
  .sort();
const dashboards = files.map((f) => ({ file: f, text: readFileSync(join(dashboardsDir, f), 'utf8') }));
const parsed = () => dashboards.map((d) => ({ file: d.file, json: JSON.parse(d.text) as Obj }));

describe('dashboards', () => {
  it('has the overview and the per-rule dashboard', () => {
    expect(files).toEqual(expect.arrayContaining(['vigil-overview.json', 'vigil-rule.json']));
  });

  it.each(dashboards.map((d) => [d.file, d] as const))('%s parses as a JSON object', (_f, d) => {
    const json = JSON.parse(d.text) as Json;
    expect(isObj(json)).toBe(true);
  });

  it.each(files)('%s: schemaVersion, title, datasource variable, no hard-coded uids', (file) => {
    const d = parsed().find((x) => x.file === file)!.json;
    expect(typeof d.schemaVersion).toBe('number');
    expect(d.schemaVersion as number).toBeGreaterThanOrEqual(36);
    expect(typeof d.title).toBe('string');
    expect(d.id ?? null).toBeNull();
    expect(d.uid ?? null).toBeNull();

    const vars = (d.templating as Obj).list as Obj[];
    const ds = vars.find((v) => v.name === 'datasource');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });

    // Every `uid` anywhere is null or the datasource variable.
    for (const uid of valuesOf(d, 'uid')) expect(uid === null || uid === '${datasource}', `uid ${JSON.stringify(uid)}`).toBe(true);
    // Every datasource reference (panels, targets, query variables) is the variable.
    for (const ref of valuesOf(d, 'datasource')) expect(ref).toEqual(DS);
  });

  it.each(files)('%s: every panel has unique id, a grid position, and queries on ${datasource}', (file) => {
    const d = parsed().find((x) => x.file === file)!.json;
    const panels = allPanels(d);
    expect(panels.length).toBeGreaterThan(0);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(isObj(p.gridPos), `${String(p.title)} gridPos`).toBe(true);
      if (p.type === 'row') {
        expect(p.targets ?? []).toEqual([]);
        continue;
      }
      expect(p.datasource, String(p.title)).toEqual(DS);
      const targets = p.targets as Obj[];
      expect(targets.length, String(p.title)).toBeGreaterThan(0);
      for (const t of targets) {
        expect(t.datasource, String(p.title)).toEqual(DS);
        expect(typeof t.expr).toBe('string');
        expect(t.refId).toMatch(/^[A-Z]$/);
      }
    }
  });

  it.each(files)('%s: every query names only exported metrics', (file) => {
    const d = parsed().find((x) => x.file === file)!.json;
    const exprs: string[] = [];
    for (const p of allPanels(d)) for (const t of (p.targets as Obj[] | undefined) ?? []) exprs.push(t.expr as string);
    // Template variable queries too (label_values(vigil_..., rule)).
    for (const v of (d.templating as Obj).list as Obj[]) {
      if (typeof v.definition === 'string') exprs.push(v.definition);
      if (isObj(v.query) && typeof v.query.query === 'string') exprs.push(v.query.query);
    }
    for (const e of exprs) {
      for (const name of metricNames(e)) expect(catalogue.has(name), `${file}: '${name}' in ${e}`).toBe(true);
    }
  });

  it('vigil-rule.json has a rule variable over vigil_rule_matches_total and filters its panels by it', () => {
    const d = parsed().find((x) => x.file === 'vigil-rule.json')!.json;
    const rule = ((d.templating as Obj).list as Obj[]).find((v) => v.name === 'rule');
    expect(rule).toBeDefined();
    expect(rule!.type).toBe('query');
    expect(rule!.definition).toBe('label_values(vigil_rule_matches_total, rule)');
    for (const p of allPanels(d)) {
      for (const t of (p.targets as Obj[] | undefined) ?? []) expect(t.expr as string).toContain('$rule');
    }
  });

  it('every exported metric is shown by some panel, or is in the allow-list', () => {
    const used = new Set<string>();
    for (const { json } of parsed()) {
      for (const p of allPanels(json)) for (const t of (p.targets as Obj[] | undefined) ?? []) for (const n of metricNames(t.expr as string)) used.add(n);
    }
    for (const n of NOT_CHARTED) expect(catalogue.has(n), `allow-listed '${n}' is not in the catalogue`).toBe(true);
    const missing = METRICS.map((m) => m.name).filter((n) => !used.has(n) && !NOT_CHARTED.includes(n));
    expect(missing).toEqual([]);
  });

  it('histograms are queried through their _bucket series with histogram_quantile', () => {
    for (const { file, json } of parsed()) {
      for (const p of allPanels(json)) {
        for (const t of (p.targets as Obj[] | undefined) ?? []) {
          const expr = t.expr as string;
          for (const m of METRICS.filter((x) => x.type === 'histogram')) {
            if (expr.includes(`${m.name}_bucket`)) expect(expr, `${file}: ${expr}`).toContain('histogram_quantile');
          }
        }
      }
    }
  });
});
