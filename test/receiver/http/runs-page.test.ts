/**
 * The runs page in a real headless browser (Debian's chromium through playwright-core): the page
 * lists the runs this test made, a run's page shows its log, and a running run's log grows on the
 * page while its command prints. Without /usr/bin/chromium the browser tests are skipped, saying so.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { request } from 'undici';
import { CHROMIUM, haveChromium, launchChromium } from '../../support/headless-chromium';
import { pushStandard, startTestReceiver, tempDir, type TestReceiver } from '../../support/receiver-fixture';

const TOKEN = 'runs-page-test-token-0123456789';

/**
 * Prints slowly, so a test can watch the log grow: 12 lines, a line every 300 ms; after line 2 it
 * waits until the file `gate` exists, so that the test sees the log before the rest of it.
 */
const slowCommand = (gate: string) =>
  `for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "line $i"; if [ $i = 2 ]; then while [ ! -f '${gate}' ]; do sleep 0.05; done; fi; sleep 0.3; done`;

const push = (receiver: TestReceiver, repository: string, branch: string, commit: string): Promise<string> =>
  pushStandard(receiver, { token: TOKEN, repository, branch, commit });

describe('runs page', () => {
  let receiver: TestReceiver;
  const branch = 'feat/"<&>';
  let failedRun: string;
  let okRun: string;
  const gateDir = tempDir();
  const gate = join(gateDir, 'open');

  beforeAll(async () => {
    receiver = await startTestReceiver({
      triggers: [
        { repository: 'web', branch: 'main', token: TOKEN, command: 'echo "<script>alert(1)</script>"; echo deployed' },
        { repository: 'web', branch, token: TOKEN, command: 'echo broken >&2; exit 3' },
        { repository: 'slow', branch: 'main', token: TOKEN, command: slowCommand(gate) },
      ],
    });
    okRun = await push(receiver, 'web', 'main', 'a'.repeat(40));
    failedRun = await push(receiver, 'web', branch, 'b'.repeat(40));
    await receiver.settledRuns();
  });
  afterAll(async () => {
    fs.writeFileSync(gate, '');
    await receiver.dispose();
    fs.rmSync(gateDir, { recursive: true, force: true });
  });

  async function page(path: string, accept = 'text/html'): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
    const response = await request(`${receiver.adminUrl}${path}`, { headers: { accept } });
    return { status: response.statusCode, text: await response.body.text(), headers: response.headers };
  }

  it('escapes what comes from a log or a payload, and runs no script of theirs', async () => {
    const list = await page('/');
    expect(list.status).toBe(200);
    expect(list.text).toContain('web@feat/&quot;&lt;&amp;&gt;');
    expect(list.text).not.toContain('feat/"<&>');
    const run = await page(`/runs/${okRun}`);
    expect(run.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(run.text).not.toContain('<script>alert');
    expect(String(run.headers['content-security-policy'])).toMatch(/script-src 'nonce-/);
  });

  it('keeps the JSON API for clients that ask for JSON or say nothing', async () => {
    for (const accept of ['application/json', '']) {
      const answer = await page(`/runs/${failedRun}`, accept);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(answer.text).run).toMatchObject({ id: failedRun, status: 'failed', branch });
    }
  });

  it('filters by trigger and status with plain query parameters', async () => {
    const failed = await page('/?status=failed');
    expect(failed.text).toContain(failedRun);
    expect(failed.text).not.toContain(okRun);
    const web = await page(`/?trigger=${encodeURIComponent('web@main')}`);
    expect(web.text).toContain(okRun);
    expect(web.text).not.toContain(failedRun);
  });

  const browserIt = haveChromium ? it : it.skip;
  if (!haveChromium) {
    it('needs chromium for the browser tests', () => {
      process.stdout.write(`runs page browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)\n`);
    });
  }

  describe('in a browser', () => {
    let browser: BrowserContext | undefined;
    let closeBrowser: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      if (!haveChromium) return;
      ({ browser, close: closeBrowser } = await launchChromium());
    });
    afterAll(() => closeBrowser?.());

    browserIt('lists the runs this test made, newest first, with their status', async () => {
      const tab = await browser!.newPage();
      await tab.goto(`${receiver.adminUrl}/`);
      const ids = await tab
        .locator('#runs tbody tr')
        .evaluateAll((rows) => rows.map((row) => (row as unknown as { dataset: Record<string, string> }).dataset.run));
      expect(ids.indexOf(failedRun)).toBeLessThan(ids.indexOf(okRun));
      expect(ids).toEqual(expect.arrayContaining([okRun, failedRun]));
      expect(await tab.locator(`tr[data-run="${failedRun}"] .status`).textContent()).toBe('failed');
      // No script from the log ran: no dialog opened, the title is ours.
      expect(await tab.title()).toBe('triggler runs');
      await tab.close();
    });

    browserIt('shows a run and its log', async () => {
      const tab = await browser!.newPage();
      let dialog = false;
      tab.on('dialog', (d) => {
        dialog = true;
        void d.dismiss();
      });
      await tab.goto(`${receiver.adminUrl}/`);
      await tab.click(`a[href="/runs/${okRun}"]`);
      await tab.waitForURL(`**/runs/${okRun}`);
      expect(await tab.locator('#log').textContent()).toBe('<script>alert(1)</script>\ndeployed\n');
      expect(await tab.locator('code', { hasText: `triggler rerun ${okRun}` }).count()).toBe(1);
      expect(dialog).toBe(false);
      await tab.close();
    });

    browserIt("follows a running run's log as its command prints", async () => {
      const runId = await push(receiver, 'slow', 'main', 'c'.repeat(40));
      const tab = await browser!.newPage();
      // The test's own timeout bounds every wait below.
      tab.setDefaultTimeout(0);
      await tab.goto(`${receiver.adminUrl}/runs/${runId}`);
      const lines = async () => ((await tab.locator('#log').textContent()) ?? '').split('\n').filter(Boolean).length;
      // A locator, not a string to evaluate: the page's Content-Security-Policy forbids eval.
      const logHas = (text: string) => tab.locator('#log', { hasText: text }).waitFor();
      await logHas('line 2');
      const early = await lines();
      fs.writeFileSync(gate, '');
      await logHas('line 6');
      expect(await lines()).toBeGreaterThan(early);
      // When the run ends the page shows its final record.
      await tab.waitForSelector('.status[data-status="succeeded"]');
      expect(await tab.locator('#log').textContent()).toContain('line 12');
      if (process.env.TRIGGLER_SCREENSHOT) {
        await tab.goto(`${receiver.adminUrl}/`);
        await tab.setViewportSize({ width: 1100, height: 360 });
        await tab.screenshot({ path: join(__dirname, '../../../docs/runs-page.png') });
      }
      await tab.close();
    });
  });
});
