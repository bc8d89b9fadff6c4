/**
 * Debian's chromium, headless, through playwright-core, for the admin pages' browser tests. Without
 * /usr/bin/chromium those tests are skipped, saying so.
 */
import * as fs from 'node:fs';
import { type BrowserContext, chromium } from 'playwright-core';
import { tempDir } from './receiver-fixture';

export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = fs.existsSync(CHROMIUM);

/** A browser with a new empty profile (--user-data-dir, as playwright passes it); `close` removes the profile too. */
export async function launchChromium(): Promise<{ browser: BrowserContext; close(): Promise<void> }> {
  const profile = tempDir('triggler-chromium-');
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
