/**
 * The deliveries page in a real headless browser (Debian's chromium through playwright-core): an
 * accepted, a duplicate and a forged delivery appear with their answers, nothing secret reaches
 * the page, what a request carried is shown as text, never run, and the page's Redeliver starts a
 * run. Without /usr/bin/chromium the browser tests are skipped, saying so.
 */
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { request } from 'undici';
import { buildDeliveryRequest } from '../../../protocol';
import { readAdminCredential } from '../../../receiver/http/admin-credential';
import { CHROMIUM, haveChromium, launchChromium } from '../../support/headless-chromium';
import { startTestReceiver, type TestReceiver } from '../../support/receiver-fixture';

const TOKEN = 'deliveries-page-token-0123456789abcdef';
const FORGED_TOKEN = 'a-forger-has-no-token-but-this-one-0123';
const HOSTILE = '<script>alert(1)</script>';

describe('deliveries page', () => {
  let receiver: TestReceiver;
  /** Everything secret the test's requests carried. */
  const secrets: string[] = [TOKEN, FORGED_TOKEN];
  const runs: { accepted?: string } = {};

  const signed = (token: string, id: string) => {
    const delivery = buildDeliveryRequest({
      scheme: 'standard',
      token,
      id,
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'web', branch: 'main', ref: 'refs/heads/main', commit: 'a'.repeat(40), source: 'test' },
    });
    secrets.push(delivery.headers['webhook-signature']!.slice('v1,'.length));
    return delivery;
  };

  beforeAll(async () => {
    receiver = await startTestReceiver({ triggers: [{ repository: 'web', branch: 'main', token: TOKEN, command: 'true' }] });
    const push = signed(TOKEN, 'msg_page_accepted');
    const accepted = await receiver.send(push.path, { headers: push.headers, body: push.body! });
    expect(accepted.status).toBe(202);
    runs.accepted = (accepted.body.run as { id: string }).id;
    expect((await receiver.send(push.path, { headers: push.headers, body: push.body! })).status).toBe(200);
    const forged = signed(FORGED_TOKEN, 'msg_page_forged');
    expect((await receiver.send(forged.path, { headers: { ...forged.headers, 'x-note': HOSTILE }, body: forged.body! })).status).toBe(401);
    await receiver.settledRuns();
  });
  afterAll(() => receiver.dispose());

  async function html(path: string): Promise<string> {
    const response = await request(`${receiver.adminUrl}${path}`, { headers: { accept: 'text/html' } });
    expect(response.statusCode).toBe(200);
    return response.body.text();
  }

  it('renders on the server with what a request carried escaped, and no secret', async () => {
    const list = await html('/deliveries');
    for (const secret of secrets) expect(list).not.toContain(secret);
    const forgedId = /data-delivery="([^"]+)"/.exec(list)![1]!;
    const page = await html(`/deliveries/${forgedId}`);
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).not.toContain(HOSTILE);
    for (const secret of secrets) expect(page).not.toContain(secret);
  });

  const browserIt = haveChromium ? it : it.skip;
  if (!haveChromium) {
    it('needs chromium for the browser tests', () => {
      process.stdout.write(`deliveries page browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)\n`);
    });
  }

  describe('in a browser', () => {
    let chromium: { browser: BrowserContext; close(): Promise<void> } | undefined;
    beforeAll(async () => {
      if (haveChromium) chromium = await launchChromium();
    });
    afterAll(() => chromium?.close());

    browserIt('lists an accepted, a duplicate and a forged delivery, newest first, with their answers', async () => {
      const tab = await chromium!.browser.newPage();
      await tab.goto(`${receiver.adminUrl}/deliveries`);
      await tab.selectOption('select[name="trigger"]', 'web@main');
      await Promise.all([tab.waitForURL('**/deliveries?trigger=web%40main'), tab.click('button[type="submit"]')]);
      const rows = tab.locator('#deliveries tbody tr');
      expect(await rows.locator('.status').allTextContents()).toEqual(['rejected', 'duplicate', 'accepted']);
      expect(await rows.locator('td:nth-child(5)').allTextContents()).toEqual(['401', '200', '202']);
      expect(await rows.nth(0).locator('td:nth-child(7)').textContent()).toBe('bad webhook-signature');
      expect(await rows.nth(1).locator('td:nth-child(8)').textContent()).toBe(runs.accepted);
      expect(await rows.nth(2).locator('td:nth-child(8)').textContent()).toBe(runs.accepted);
      const content = await tab.content();
      for (const secret of secrets) expect(content).not.toContain(secret);
      await tab.close();
    });

    browserIt("shows a forged delivery's request and answer as text, its signature redacted", async () => {
      const tab = await chromium!.browser.newPage();
      let dialog = false;
      tab.on('dialog', (d) => {
        dialog = true;
        void d.dismiss();
      });
      await tab.goto(`${receiver.adminUrl}/deliveries`);
      await tab.click('#deliveries tbody tr:first-child td:first-child a');
      await tab.waitForURL('**/deliveries/*');
      expect(await tab.locator('#answer-status').textContent()).toBe('401');
      const headers = Object.fromEntries(
        await tab
          .locator('#request-headers tr')
          .evaluateAll((rows) => rows.map((row) => [row.querySelector('th')!.textContent, row.querySelector('td')!.textContent])),
      ) as Record<string, string>;
      expect(headers).toMatchObject({ 'webhook-signature': '(redacted)', 'webhook-id': 'msg_page_forged', 'x-note': HOSTILE });
      expect(JSON.parse((await tab.locator('#answer-body').textContent())!)).toEqual({
        error: 'unauthorized: unknown trigger or bad signature',
      });
      // Nothing to redeliver, and nothing the request carried ran.
      expect(await tab.locator('#redeliver-form').count()).toBe(0);
      expect(dialog).toBe(false);
      for (const secret of secrets) expect(await tab.content()).not.toContain(secret);
      await tab.close();
    });

    browserIt('redelivers an accepted delivery with the admin credential typed in: a new run', async () => {
      const tab = await chromium!.browser.newPage();
      await tab.goto(`${receiver.adminUrl}/deliveries`);
      await tab.click('#deliveries tbody tr:last-child td:first-child a');
      await tab.waitForURL('**/deliveries/*');
      const deliveryId = decodeURIComponent(new URL(tab.url()).pathname.split('/').pop()!);
      expect(await tab.locator('code', { hasText: `triggler redeliver ${deliveryId}` }).count()).toBe(1);
      await tab.fill('#redeliver-form input[name="credential"]', readAdminCredential(join(receiver.dir, 'state')));
      await tab.click('#redeliver-form button');
      const queued = tab.locator('#redeliver-form output a');
      await queued.waitFor();
      const runId = /^queued as (\S+)$/.exec((await queued.textContent())!)![1]!;
      expect(runId).not.toBe(runs.accepted);
      const run = (await receiver.settledRuns()).find((r) => r.id === runId);
      expect(run).toMatchObject({ status: 'succeeded', redeliveryOf: deliveryId, deliveryIds: ['msg_page_accepted'] });
      // The credential is kept nowhere: the field is empty again.
      expect(await tab.inputValue('#redeliver-form input[name="credential"]')).toBe('');
      await tab.close();
    });
  });
});
