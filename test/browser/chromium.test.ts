// Where the browser tests get Chromium (chromium.ts): without a system Chromium (hidden here by
// VIGIL_TEST_NO_SYSTEM_CHROMIUM=1) they use the npm package's build, which really starts and
// renders a page, so `npm install && npm test` needs no system package.

import { describe, expect, test } from 'vitest';
import { findChromium, launchChromium, sparticuzChromium } from './chromium.js';

describe('browser tests: Chromium', () => {
  test('without a system Chromium, the npm build is chosen', { timeout: 120_000 }, async () => {
    const choice = await findChromium({ ...process.env, VIGIL_CHROMIUM: '', VIGIL_TEST_NO_SYSTEM_CHROMIUM: '1' });
    expect(choice.from).toBe('npm');
    expect(choice.executablePath).not.toBe('/usr/bin/chromium');
  });

  test('VIGIL_CHROMIUM names a binary that does not exist: a clear error, not a skip', async () => {
    await expect(findChromium({ VIGIL_CHROMIUM: '/nonexistent/chromium' })).rejects.toThrow(/VIGIL_CHROMIUM=\/nonexistent\/chromium is not an executable/);
  });

  test('the npm build starts and runs a page script', { timeout: 120_000 }, async () => {
    const browser = await launchChromium(await sparticuzChromium());
    try {
      const page = await browser.newPage();
      await page.setContent('<p id="out"></p><script>document.getElementById("out").textContent = String(6 * 7)</script>');
      expect(await page.textContent('#out')).toBe('42');
    } finally {
      await browser.close();
    }
  });
});
