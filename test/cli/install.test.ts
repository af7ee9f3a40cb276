// The CLI installed like any tool (issue 12): the package as `npm pack` makes it (from the
// built dist/: `npm test` builds first), installed globally into a temp prefix, gives a
// `vigil` that works from another directory: --version, help COMMAND, check, and serve (the
// status page and the OpenAPI document are found inside the installed package).

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let dir: string;
let vigil: string;
let elsewhere: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-install-'));
  // --ignore-scripts: dist/ is built already (pretest); prepare would build it again.
  const tarball = execFileSync(NPM, ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').at(-1)!;
  const prefix = join(dir, 'prefix');
  execFileSync(NPM, ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball)], { cwd: dir, stdio: 'pipe' });
  vigil = join(prefix, 'bin', 'vigil');
  elsewhere = join(dir, 'work');
  execFileSync('mkdir', ['-p', elsewhere]);
}, 240_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const run = (args: string[]): { code: number; out: string; err: string } => {
  try {
    const out = execFileSync(vigil, args, { cwd: elsewhere, encoding: 'utf8', stdio: 'pipe' });
    return { code: 0, out, err: '' };
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string };
    return { code: x.status, out: x.stdout, err: x.stderr };
  }
};

describe('vigil installed from the packed package', () => {
  test('--version and help COMMAND', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(run(['--version'])).toEqual({ code: 0, out: `vigil ${pkg.version}\n`, err: '' });
    const help = run(['help', 'check']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: vigil check \[--strict\] FILES\.\.\./);
    expect(run(['serve', '--help']).out).toContain('--tls-cert FILE');
    const bad = run(['help', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("no command 'nope'");
  });

  test('check works from another directory', () => {
    writeFileSync(join(elsewhere, 'ok.vigil'), 'stream s { key k time ts fields { k: string, ts: number, n: number } }\nrule r {\n  from s\n  match\n    a: n > 1\n  alert info "n {k}"\n}\n');
    writeFileSync(join(elsewhere, 'bad.vigil'), 'rule r {\n  from nowhere\n}\n');
    const ok = run(['check', 'ok.vigil']);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('1 file(s): 1 rule(s), 1 stream(s), 0 error(s)');
    const bad = run(['check', 'bad.vigil']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/bad\.vigil:\d+:\d+: error/);
  });

  test('serve runs from the installed package: health, status page, OpenAPI document', async () => {
    const child = spawn(vigil, ['serve', '--port', '0', '--data-dir', join(elsewhere, 'data'), '--rules-dir', elsewhere], { cwd: elsewhere, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20_000;
      let url: string | undefined;
      while (url === undefined && Date.now() < deadline && child.exitCode === null) {
        url = /vigil listening on (http:\/\/[^\s"]+)/.exec(out)?.[1];
        if (url === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(url, out).toBeDefined();
      expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: 'ok' });
      expect(await (await fetch(`${url}/`)).text()).toMatch(/<html/i);
      expect(((await (await fetch(`${url}/openapi.json`)).json()) as { openapi: string }).openapi).toMatch(/^3\./);
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 60_000);
});
