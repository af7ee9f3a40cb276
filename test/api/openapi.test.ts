// The OpenAPI document (issue 12): served at GET /openapi.json over a real socket, valid
// OpenAPI 3 by an independent validator (@seriousme/openapi-schema-validator), listing every
// route the server registers (fastify's onRoute) with its success and error answers, the
// error answers in the error shape of src/api/errors.ts with their catalogue codes.

import { Validator } from '@seriousme/openapi-schema-validator';
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROUTE_DOCS } from '../../src/api/openapi.js';
import { buildServer } from '../../src/api/server.js';
import { CATALOGUE } from '../../src/api/errors.js';
import { removeTempDirs, silent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let url: string;
let doc: any;
const registered: string[] = [];

beforeAll(async () => {
  svc = await startService({ flags: ['--api-token', 'tok'] });
  // A second server over the same core, with a hook that sees every route as it is registered.
  const app = buildServer(svc.core, svc.config, silent, { metrics: async () => ({ contentType: 'text/plain', body: '' }) });
  app.addHook('onRoute', (r: RouteOptions) => {
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) if (m !== 'HEAD') registered.push(`${m} ${r.url}`);
  });
  await app.ready();
  await app.close();
  url = await svc.app.listen({ host: '127.0.0.1', port: 0 });
  const res = await fetch(`${url}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = await res.json();
});

afterAll(async () => {
  await svc?.close();
  removeTempDirs();
});

/** `/rules/:id` → `/rules/{id}`. */
const openApiPath = (u: string): string => u.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('GET /openapi.json', () => {
  test('is a valid OpenAPI 3 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe('Vigil');
  });

  test('lists every route the server registers, and each is in the route table', () => {
    expect(registered.length).toBeGreaterThan(15);
    expect(registered).toContain('GET /openapi.json');
    const listed = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(listed.sort()).toEqual(registered.map((r) => { const [m, u] = r.split(' '); return `${m} ${openApiPath(u!)}`; }).sort());
    expect(Object.keys(ROUTE_DOCS).sort()).toEqual([...registered].sort());
  });

  test('every operation has a success answer and its error answers in the error shape, with their codes', () => {
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [m, op] of Object.entries(ops)) {
        const statuses = Object.keys(op.responses);
        expect(statuses.some((s) => /^2/.test(s)), `${m} ${p}`).toBe(true);
        expect(op.responses['500'], `${m} ${p} 500`).toBeDefined();
        for (const s of statuses.filter((x) => /^[45]\d\d$/.test(x))) {
          const schema = op.responses[s].content['application/json'].schema;
          expect(schema.required, `${m} ${p} ${s}`).toContain('error');
          expect(schema.properties.error.required).toEqual(['code', 'message']);
        }
      }
    }
    const put = doc.paths['/rules/{id}'].put;
    expect(put.security).toEqual([{ bearer: [] }]);
    expect(put.requestBody.content['text/plain']).toBeDefined();
    expect(put.responses['409'].description).toContain('VIGIL_ERR_RULE_FROM_FILE');
    expect(put.responses['401'].description).toContain('VIGIL_ERR_UNAUTHORIZED');
    const ingest = doc.paths['/streams/{stream}/events'].post;
    expect(Object.keys(ingest.requestBody.content).sort()).toEqual(['application/json', 'application/x-ndjson']);
    expect(ingest.responses['202'].content['application/json'].schema.required).toEqual(['accepted', 'late', 'rejected']);
    for (const code of ['VIGIL_ERR_BODY_TOO_LARGE', 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE', 'VIGIL_ERR_STREAM_NOT_FOUND'] as const) {
      expect(ingest.responses[String(CATALOGUE[code].status)].description).toContain(code);
    }
    expect(doc.paths['/metrics'].get.responses['200'].content['text/plain']).toBeDefined();
  });

  test('the added error schemas do not change what the routes answer', async () => {
    const missing = await fetch(`${url}/rules/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'VIGIL_ERR_RULE_NOT_FOUND', message: "no rule 'nope'" } });
    const put = await fetch(`${url}/rules/x`, { method: 'PUT', headers: { 'content-type': 'text/plain', authorization: 'Bearer tok' }, body: 'rule x {' });
    expect(put.status).toBe(400);
    const body = (await put.json()) as any;
    expect(body.error.code).toBe('VIGIL_ERR_RULE_INVALID');
    expect(body.errors.length).toBeGreaterThan(0);
    expect(body.errors[0]).toHaveProperty('line');
    const page = await fetch(`${url}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toMatch(/<html/i);
  });
});
