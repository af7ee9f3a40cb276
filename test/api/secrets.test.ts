// Secrets and reach (issue 15, cases 11–13), over real sockets: sink URLs, header values and
// secrets never appear in an answer to a reader (rules, validate, PUT, backtest, alerts, the
// status page); the token holder gets the text whole; env() reads only the configured prefix
// and says the same for set and unset variables outside it; literal internal targets do not
// compile; tokens with spaces authenticate.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tokenMatches } from '../../src/api/routes/auth.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { redactRuleText, redactUrlLiteral } from '../../src/dsl/redact.js';
import { removeTempDirs, startService, type TestService } from '../helpers/service.js';
import { STREAM_S } from '../helpers/service-rules.js';

const TOKEN = 'admin token with spaces ü';
const SLACK_PATH = 'services/T000/B000/XXXXliteralHookPathXXXX';
const BEARER = 'Bearer literal-token-123';
const HMAC = 'inline-hmac-secret-456';
const USERPASS = 'hookuser:hookpass789';
const SECRETS = [SLACK_PATH, 'XXXXliteralHookPathXXXX', 'literal-token-123', HMAC, 'hookpass789', 'env-secret-value-000'];

const RULE = `rule leaky {
  from s
  match
    a: type == "a"
    then b: type == "b"
  within 1h
  alert high "ab {k}"
    to webhook "https://hooks.slack.com/${SLACK_PATH}" header "Authorization" "${BEARER}" secret "${HMAC}"
    to webhook "https://${USERPASS}@hooks.example.com/x?token=abc123zz" header "X-Env" env("VIGIL_SECRET_HOOK")
}
`;

afterAll(removeTempDirs);

function assertNoSecret(where: string, body: string): void {
  for (const s of SECRETS) expect(body, `${where} must not contain ${s}`).not.toContain(s);
}

describe('secrets are redacted in every answer', () => {
  let s: TestService;
  let base: string;
  const auth = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    s = await startService({
      rules: { 's.vigil': STREAM_S },
      flags: ['--api-token', TOKEN],
      core: { env: { VIGIL_SECRET_HOOK: 'env-secret-value-000', HOME: '/root' } },
    });
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const address = s.app.server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => s.close());

  const text = (path: string, init: RequestInit = {}) => fetch(base + path, init).then(async (r) => ({ status: r.status, body: await r.text() }));

  test('PUT (with a token holding spaces and a non-ASCII letter), GET /rules, GET /rules/:id, validate, backtest, alerts, status page', async () => {
    // A token with spaces authenticates; a wrong or cut one does not.
    expect((await text('/rules/leaky', { method: 'PUT', headers: { 'content-type': 'text/plain', authorization: 'Bearer admin token' }, body: RULE })).status).toBe(401);
    // fetch sends header values as latin1 only: send the UTF-8 bytes of the token as latin1 characters.
    const wire = { authorization: `Bearer ${Buffer.from(TOKEN, 'utf8').toString('latin1')}` };
    const put = await text('/rules/leaky', { method: 'PUT', headers: { 'content-type': 'text/plain', ...wire }, body: RULE });
    expect(put.status).toBe(201);
    assertNoSecret('PUT answer', put.body);
    expect(JSON.parse(put.body).rule.text).toContain('"https://hooks.slack.com/<secret>"');

    const list = await text('/rules');
    expect(list.status).toBe(200);
    assertNoSecret('GET /rules', list.body);

    const one = await text('/rules/leaky');
    expect(one.status).toBe(200);
    assertNoSecret('GET /rules/:id', one.body);
    const shown = JSON.parse(one.body).text as string;
    expect(shown).toContain('to webhook "https://hooks.slack.com/<secret>" header "Authorization" "<secret>" secret "<secret>"');
    expect(shown).toContain('"https://<secret>@hooks.example.com/<secret>" header "X-Env" env("VIGIL_SECRET_HOOK")');

    // The token holder reads the text whole; a wrong token reads it redacted.
    const whole = await text('/rules/leaky', { headers: wire });
    expect(JSON.parse(whole.body).text).toBe(RULE);
    assertNoSecret('GET /rules/:id with a wrong token', (await text('/rules/leaky', { headers: { authorization: 'Bearer nope' } })).body);

    // validate: a diagnostic on the URL line renders that line redacted.
    const bad = RULE.replace('rule leaky', 'rule leaky2').replace('hooks.slack.com', '10.1.2.3');
    const validate = await text('/rules/validate', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: bad });
    expect(validate.status).toBe(200);
    const v = JSON.parse(validate.body);
    expect(v.ok).toBe(false);
    expect(v.errors.map((e: { code: string }) => e.code)).toContain('compile/webhook-refused');
    expect(validate.body).toContain('10.1.2.3');
    assertNoSecret('validate answer', validate.body);
    // The same text PUT: 400, positioned, redacted.
    const refused = await text('/rules/leaky2', { method: 'PUT', headers: { 'content-type': 'text/plain', ...wire }, body: bad });
    expect(refused.status).toBe(400);
    assertNoSecret('PUT 400 answer', refused.body);

    // Events that raise an alert; its delivery record and the backtest hold no secret.
    const ingest = await fetch(`${base}/streams/s/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ k: 'u', ts: 1, type: 'a' }, { k: 'u', ts: 2, type: 'b' }]),
    });
    expect(ingest.status).toBe(202);
    const alerts = await text('/alerts');
    expect(JSON.parse(alerts.body).alerts).toHaveLength(1);
    assertNoSecret('GET /alerts', alerts.body);
    const backtest = await text('/rules/leaky/backtest', {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: '{"k":"u","ts":1,"type":"a"}\n{"k":"u","ts":2,"type":"b"}\nnot json\n',
    });
    expect(backtest.status).toBe(200);
    expect(JSON.parse(backtest.body).records).toHaveLength(1);
    assertNoSecret('backtest answer', backtest.body);
    const tried = await text('/rules/leaky/backtest', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: bad.replace('rule leaky2', 'rule leaky'), events: [] }),
    });
    assertNoSecret('backtest of a text', tried.body);
    expect(JSON.parse(tried.body).diagnostics.length).toBeGreaterThan(0);

    // The status page: its files and the API data it reads.
    for (const path of ['/', '/status/page.js', '/rules', '/streams', '/alerts?limit=50']) assertNoSecret(`status page ${path}`, (await text(path)).body);
  });

  test('env() outside the prefix: the same error whether the variable is set (HOME) or not; inside: read, or a warning when unset', async () => {
    const validate = async (name: string) => {
      const body = `rule e_${name.toLowerCase()} {\n  from s\n  match a: type == "a"\n  alert info "x" to webhook "https://example.com/h" header "X" env("${name}")\n}\n`;
      const res = await text('/rules/validate', { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
      return JSON.parse(res.body) as { ok: boolean; errors: { code: string; message: string; line: number; col: number }[]; warnings: { code: string; message: string }[] };
    };
    const set = await validate('HOME');
    const unset = await validate('NOT_SET_ANYWHERE_42');
    const token = await validate('VIGIL_API_TOKEN');
    for (const r of [set, unset, token]) {
      expect(r.ok).toBe(false);
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]).toMatchObject({ code: 'compile/env-not-allowed', line: 4 });
    }
    expect(set.errors[0]!.message).toBe(unset.errors[0]!.message);
    expect(set.errors[0]!.message).toContain('VIGIL_SECRET_');
    expect((await validate('VIGIL_SECRET_HOOK')).ok).toBe(true);
    const missing = await validate('VIGIL_SECRET_MISSING');
    expect(missing.ok).toBe(true);
    expect(missing.warnings.map((w) => w.code)).toEqual(['compile/env-unset']);
  });

  test('literal internal webhook targets do not compile (positioned), except what is allowed (127.0.0.1 in tests)', async () => {
    const check = async (url: string) => {
      const body = `rule t {\n  from s\n  match a: type == "a"\n  alert info "x" to webhook "${url}"\n}\n`;
      return JSON.parse((await text('/rules/validate', { method: 'POST', headers: { 'content-type': 'text/plain' }, body })).body) as { ok: boolean; errors: { code: string; message: string; line: number; col: number }[] };
    };
    for (const url of ['http://169.254.169.254/latest/meta-data', 'http://10.0.0.1/h', 'http://192.168.1.1/h', 'http://172.20.0.1/h', 'http://[::1]:9/h', 'http://[fe80::1]/h', 'http://[fd00::1]/h', 'http://0.0.0.0:80/h', 'http://[::ffff:10.0.0.1]/h']) {
      const r = await check(url);
      expect(r.ok, url).toBe(false);
      expect(r.errors[0], url).toMatchObject({ code: 'compile/webhook-refused', line: 4, col: 29 });
      expect(r.errors[0]!.message).toContain('VIGIL_WEBHOOK_ALLOW');
    }
    // localhost is loopback: allowed here because 127.0.0.1 is (see the policy tests for the refusal).
    for (const url of ['http://127.0.0.1:9/h', 'http://localhost:9/h', 'https://example.com/h', 'http://8.8.8.8/h']) expect((await check(url)).ok, url).toBe(true);
  });
});

describe('redaction of rule texts', () => {
  test('URL literals keep scheme and host only; header values and literal secrets become <secret>; env() names stay', () => {
    expect(redactUrlLiteral('https://hooks.slack.com/services/T/B/X')).toBe('"https://hooks.slack.com/<secret>"');
    expect(redactUrlLiteral('https://u:p@h.example:8443/x?y')).toBe('"https://<secret>@h.example:8443/<secret>"');
    expect(redactUrlLiteral('http://h.example?token=1')).toBe('"http://h.example<secret>"');
    expect(redactUrlLiteral('http://h.example')).toBe('"http://h.example"');
    expect(redactUrlLiteral('not a url with a secret')).toBe('"<secret>"');
    const src = 'rule r {\n  alert x "m" to webhook "https://h/p\\"q" header "A" "v" header "B" env("VIGIL_SECRET_B") secret env("VIGIL_SECRET_S")\n}';
    expect(redactRuleText(src)).toBe('rule r {\n  alert x "m" to webhook "https://h/<secret>" header "A" "<secret>" header "B" env("VIGIL_SECRET_B") secret env("VIGIL_SECRET_S")\n}');
    // A text that does not parse is redacted all the same.
    expect(redactRuleText('rule ( webhook "http://h/tok" header "A" "Bearer x"')).toBe('rule ( webhook "http://h/<secret>" header "A" "<secret>"');
  });

  test('token comparison: spaces and non-ASCII tokens work, prefixes and missing headers do not', () => {
    expect(tokenMatches('Bearer a b  c', 'a b  c')).toBe(true);
    expect(tokenMatches('bearer   a b  c  ', 'a b  c')).toBe(true);
    expect(tokenMatches('Bearer a b', 'a b  c')).toBe(false);
    expect(tokenMatches(undefined, 'a b  c')).toBe(false);
    expect(tokenMatches('a b  c', 'a b  c')).toBe(false);
    expect(tokenMatches(`Bearer ${Buffer.from('pässwörd', 'utf8').toString('latin1')}`, 'pässwörd')).toBe(true);
  });

  test('settings: env prefix that would expose VIGIL_* settings, a bad allow entry and a token with a control character are refused', () => {
    expect(() => loadConfig(['--env-prefix', 'VIGIL_'], {})).toThrow(/VIGIL_ENV_PREFIX|would let rules read VIGIL_/);
    expect(() => loadConfig([], { VIGIL_ENV_PREFIX: 'VIGIL_API' })).toThrow(ConfigError);
    expect(loadConfig([], { VIGIL_ENV_PREFIX: 'HOOK_' }).envPrefix).toBe('HOOK_');
    expect(() => loadConfig([], { VIGIL_WEBHOOK_ALLOW: '127.0.0.1,10.0.0.0/99' })).toThrow(/VIGIL_WEBHOOK_ALLOW: '10.0.0.0\/99' is not a CIDR block/);
    expect(loadConfig([], { VIGIL_WEBHOOK_ALLOW: ' 127.0.0.1 , 10.0.0.0/8,hooks.internal, self ' }).webhookAllow).toEqual(['127.0.0.1', '10.0.0.0/8', 'hooks.internal', 'self']);
    expect(() => loadConfig([], { VIGIL_API_TOKEN: 'a\tb' })).toThrow(/control character/);
    expect(loadConfig([], { VIGIL_API_TOKEN: ' a b ' }).apiToken).toBe('a b');
  });
});
