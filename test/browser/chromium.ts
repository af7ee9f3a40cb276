// Headless Chromium for the browser tests: Debian's `chromium` package (installed by `.ci/run`
// when missing) driven by playwright-core through `executablePath`. No browser download: when
// Chromium is not there, or does not start, this throws a clear error so the test FAILS (it is
// never skipped).

import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Chromium binary: $VIGIL_CHROMIUM, else `chromium` on PATH, else /usr/bin/chromium. */
export function findChromium(): string {
  const candidates: string[] = [];
  if (process.env.VIGIL_CHROMIUM) candidates.push(process.env.VIGIL_CHROMIUM);
  try {
    const found = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (found !== '') candidates.push(found);
  } catch {
    // not on PATH
  }
  candidates.push('/usr/bin/chromium');
  for (const c of candidates) if (executable(c)) return c;
  throw new Error(
    `Chromium is not installed (looked for ${candidates.join(', ')}). The browser tests need Debian's chromium package: ` +
      'run `apt-get update && apt-get install -y chromium` (.ci/run does this when it is missing), or set VIGIL_CHROMIUM to a Chromium binary.',
  );
}

/**
 * Launches headless Chromium. `chromium.launch` gives every browser a fresh temporary profile
 * (user data dir) that playwright removes on close.
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = findChromium();
  try {
    return await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true, timeout: 20_000 });
  } catch (err) {
    throw new Error(`Chromium at ${executablePath} did not start: ${err instanceof Error ? err.message : String(err)}`);
  }
}
