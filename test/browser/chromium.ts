// Headless Chromium for the browser tests, driven by playwright-core through `executablePath`.
// Where it comes from, first found wins:
//   1. $VIGIL_CHROMIUM (a Chromium binary);
//   2. the system's Chromium (`chromium` on PATH, /usr/bin/chromium), unless
//      VIGIL_TEST_NO_SYSTEM_CHROMIUM=1 (to exercise 3 on a machine that has one);
//   3. the npm package `@sparticuz/chromium` (a devDependency: a Chromium build for Linux x64
//      with its own libraries), so `npm install && npm test` needs no system package. It is
//      unpacked once into <tmpdir>/vigil-chromium-<version>: by a child process into a staging
//      directory that is then renamed into place, so test files starting at once (or other
//      checkouts on the machine) never launch a half-written binary.
// When none starts, this throws a clear error so the test FAILS (it is never skipped).

import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';

/** The repository root (where node_modules is). */
const ROOT = join(import.meta.dirname, '..', '..');

/** Flags for a system Chromium (the npm build brings its own, see `sparticuzChromium`). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface ChromiumChoice {
  executablePath: string;
  args: string[];
  /** 'env', 'system' or 'npm' (for messages). */
  from: 'env' | 'system' | 'npm';
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The system's Chromium: `chromium` on PATH, else /usr/bin/chromium; null when there is none. */
export function systemChromium(): string | null {
  const candidates: string[] = [];
  try {
    const found = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (found !== '') candidates.push(found);
  } catch {
    // not on PATH
  }
  candidates.push('/usr/bin/chromium');
  for (const c of candidates) if (executable(c)) return c;
  return null;
}

/** The Chromium of the `@sparticuz/chromium` package (unpacked on first use, see the top of this file). */
export async function sparticuzChromium(): Promise<ChromiumChoice> {
  let mod: { default: { args: string[] } };
  let pkgDir: string;
  try {
    mod = (await import('@sparticuz/chromium')) as typeof mod;
    pkgDir = join(ROOT, 'node_modules', '@sparticuz', 'chromium');
  } catch (err) {
    throw new Error(`the npm package @sparticuz/chromium is not installed (run \`npm install\`): ${err instanceof Error ? err.message : String(err)}`);
  }
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(tmpdir(), `vigil-chromium-${version}`);
  const executablePath = join(dir, 'chromium');
  if (!executable(executablePath)) {
    const staging = mkdtempSync(join(tmpdir(), `vigil-chromium-${version}-unpacking-`));
    try {
      // The package unpacks into os.tmpdir(): point that at the staging directory, in a child.
      const script = "const m = await import('@sparticuz/chromium'); process.stdout.write(await m.default.executablePath());";
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        cwd: ROOT,
        env: { ...process.env, TMPDIR: staging },
        timeout: 120_000,
      });
      if (stdout.trim() !== join(staging, 'chromium')) throw new Error(`unpacked to ${stdout.trim()}, not into ${staging}`);
      try {
        renameSync(staging, dir);
      } catch {
        // Another process put it in place first: use that one.
      }
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    if (!executable(executablePath)) throw new Error(`@sparticuz/chromium ${version} could not be unpacked into ${dir}`);
  }
  return { executablePath, args: [...mod.default.args, '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'], from: 'npm' };
}

/** Which Chromium the tests use (see the top of this file). */
export async function findChromium(env: NodeJS.ProcessEnv = process.env): Promise<ChromiumChoice> {
  if (env.VIGIL_CHROMIUM) {
    if (!executable(env.VIGIL_CHROMIUM)) throw new Error(`VIGIL_CHROMIUM=${env.VIGIL_CHROMIUM} is not an executable file`);
    return { executablePath: env.VIGIL_CHROMIUM, args: CHROMIUM_ARGS, from: 'env' };
  }
  if (env.VIGIL_TEST_NO_SYSTEM_CHROMIUM !== '1') {
    const system = systemChromium();
    if (system !== null) return { executablePath: system, args: CHROMIUM_ARGS, from: 'system' };
  }
  return sparticuzChromium();
}

/**
 * Launches headless Chromium. `chromium.launch` gives every browser a fresh temporary profile
 * (user data dir) that playwright removes on close.
 */
export async function launchChromium(choice?: ChromiumChoice): Promise<Browser> {
  const c = choice ?? (await findChromium());
  try {
    return await chromium.launch({ executablePath: c.executablePath, args: c.args, headless: true, timeout: 30_000 });
  } catch (err) {
    throw new Error(`Chromium at ${c.executablePath} (${c.from}) did not start: ${err instanceof Error ? err.message : String(err)}`);
  }
}
