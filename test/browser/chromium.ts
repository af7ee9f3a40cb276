// Headless Chromium for the browser tests, driven by playwright-core through `executablePath`.
// Where it comes from, first found wins:
//   1. $VIGIL_CHROMIUM (a Chromium binary);
//   2. the system's Chromium (`chromium` on PATH, /usr/bin/chromium), unless
//      VIGIL_TEST_NO_SYSTEM_CHROMIUM=1 (to exercise 3 on a machine that has one);
//   3. the npm package `@sparticuz/chromium` (a devDependency: a Chromium build for Linux x64
//      with its own libraries, unpacked into the temp dir on first use), so `npm install &&
//      npm test` needs no system package.
// When none starts, this throws a clear error so the test FAILS (it is never skipped).

import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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

/** The Chromium of the `@sparticuz/chromium` package (unpacked on first use). */
export async function sparticuzChromium(): Promise<ChromiumChoice> {
  let mod: { default: { executablePath(): Promise<string>; args: string[] } };
  try {
    mod = (await import('@sparticuz/chromium')) as typeof mod;
  } catch (err) {
    throw new Error(`the npm package @sparticuz/chromium is not installed (run \`npm install\`): ${err instanceof Error ? err.message : String(err)}`);
  }
  const executablePath = await mod.default.executablePath();
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
