/**
 * The runs page in a real headless browser (Debian's chromium through playwright-core): the page
 * lists the runs this test made, a run's page shows its log, and a running run's log grows on the
 * page while its command prints; a deploy trigger's runs show their release and commit, the
 * summary its current and previous release, and its rollback button performs a rollback with the
 * admin credential; the list reloads itself while a run is on, and a finished list keeps its
 * times true without reloading; its header links to the deliveries page and back. Without /usr/bin/chromium the browser tests are skipped, saying so.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { request } from 'undici';
import { sourceRepo } from '../../support/git-repo';
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
  /** The gated trigger's runs last until the test writes this file. */
  const heldGate = join(gateDir, 'release-held');
  const deployPath = join(gateDir, 'srv', 'app');
  const repo = sourceRepo(gateDir);
  /** The deploy trigger's two pushes, oldest first: their runs, commits and releases. */
  const deploys: { run: string; commit: string; release: string }[] = [];

  beforeAll(async () => {
    receiver = await startTestReceiver({
      triggers: [
        { repository: 'web', branch: 'main', token: TOKEN, command: 'echo "<script>alert(1)</script>"; echo deployed' },
        { repository: 'web', branch, token: TOKEN, command: 'echo broken >&2; exit 3' },
        { repository: 'slow', branch: 'main', token: TOKEN, command: slowCommand(gate) },
        { repository: 'held', branch: 'main', token: TOKEN, command: `while [ ! -e '${heldGate}' ]; do sleep 0.05; done` },
        { repository: 'app', branch: 'main', token: TOKEN, command: 'true', deploy: { repositoryUrl: repo.url, path: deployPath } },
      ],
    });
    okRun = await push(receiver, 'web', 'main', 'a'.repeat(40));
    failedRun = await push(receiver, 'web', branch, 'b'.repeat(40));
    for (const n of [1, 2]) {
      const commit = repo.commit({ 'index.html': `version ${n}` });
      const run = await push(receiver, 'app', 'main', commit);
      await receiver.settledRuns();
      deploys.push({ run, commit, release: receiver.history.run(run)!.deploy!.release! });
    }
  });
  afterAll(async () => {
    fs.writeFileSync(gate, '');
    fs.writeFileSync(heldGate, '');
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

  it("shows each deploy run's release, the commit deployed with its subject and author, and times as how long ago", async () => {
    const [first, second] = deploys;
    const row = /<tr data-run="([^"]+)">.*?<\/tr>/g;
    const rows = new Map([...(await page('/')).text.matchAll(row)].map((match) => [match[1]!, match[0]]));
    expect(rows.get(second!.run)).toContain(`<td class="release">${second!.release}</td>`);
    expect(rows.get(second!.run)).toContain(
      `<code title="${second!.commit}">${second!.commit.slice(0, 12)}</code><span class="subject">commit 2 — test</span>`,
    );
    expect(rows.get(first!.run)).toContain(first!.release);
    // Runs without a release have an empty cell in the column.
    expect(rows.get(okRun)).toContain('<td class="release"></td>');
    expect(rows.get(okRun)).toMatch(/<time datetime="[^"]+" title="[^"]+">(just now|\d+ s ago|\d+ min ago)<\/time>/);
    const run = (await page(`/runs/${second!.run}`)).text;
    expect(run).toContain(`<dt>Release</dt><dd>${second!.release}</dd>`);
    expect(run).toContain(`<dt>Release before</dt><dd><code>${first!.release}</code></dd>`);
    expect(run).toContain(`<code>${second!.commit}</code><br><span class="subject">commit 2 — test</span>`);
    // The record keeps them under deploy, journalled with the rest of the finish.
    expect(receiver.history.run(second!.run)!.deploy).toMatchObject({ subject: 'commit 2', author: 'test', commit: second!.commit });
  });

  it('sums each trigger up at the top: last run, current release, last deploy, previous release', async () => {
    const text = (await page('/')).text;
    const summary = /<tr data-trigger="app@main">(.*?)<\/tr>/s.exec(text)?.[1] ?? '';
    const cells = [...summary.matchAll(/<td>(.*?)<\/td>/gs)].map((match) => match[1]!);
    expect(cells).toHaveLength(5);
    expect(cells[1]).toContain(deploys[1]!.run);
    expect(cells[2]).toContain(deploys[1]!.release);
    expect(cells[2]).toContain('commit 2 — test');
    expect(cells[3]).toBe(`<a href="/runs/${deploys[1]!.run}" class="health" data-status="succeeded">healthy</a>`);
    expect(cells[4]).toContain('commit 1 — test');
    expect(cells[4]).toContain(`data-to="${deploys[0]!.release}"`);
    expect(cells[4]).toContain(`triggler rollback app main --to ${deploys[0]!.release}`);
    expect(/<tr data-trigger="web@main">(.*?)<\/tr>/s.exec(text)?.[1]).toContain('no deploy section');
    // A page of runs that have all ended does not reload itself.
    expect(text).toContain('data-live="false"');
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

    browserIt("links to the deliveries page in its header, and the deliveries page's header links back", async () => {
      const tab = await browser!.newPage();
      await tab.goto(`${receiver.adminUrl}/`);
      const nav = tab.locator('header nav');
      expect(await nav.locator('[aria-current="page"]').textContent()).toBe('runs');
      await Promise.all([tab.waitForURL('**/deliveries'), nav.getByRole('link', { name: 'deliveries' }).click()]);
      expect(await tab.title()).toBe('triggler deliveries');
      // This test's pushes are there: the link leads to the deliveries of this receiver.
      expect(await tab.locator('#deliveries tbody tr[data-delivery]').count()).toBeGreaterThan(0);
      expect(await nav.locator('[aria-current="page"]').textContent()).toBe('deliveries');
      await Promise.all([tab.waitForURL(`${receiver.adminUrl}/`), nav.getByRole('link', { name: 'runs' }).click()]);
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

    browserIt('reloads the list while a run is on, and stops once every run has ended', async () => {
      const runId = await push(receiver, 'held', 'main', 'd'.repeat(40));
      const tab = await browser!.newPage();
      tab.setDefaultTimeout(0);
      await tab.goto(`${receiver.adminUrl}/`);
      expect(await tab.locator('#runs-page').getAttribute('data-live')).toBe('true');
      expect(await tab.locator(`tr[data-run="${runId}"] .status`).getAttribute('data-status')).toMatch(/^(pending|running)$/);
      fs.writeFileSync(heldGate, '');
      // Nothing here reloads the page: its own script does, until the run shows as ended.
      await tab.locator(`tr[data-run="${runId}"] .status[data-status="succeeded"]`).waitFor();
      expect(await tab.locator('#runs-page').getAttribute('data-live')).toBe('false');
      expect(await tab.locator('#reloading').count()).toBe(0);
      await tab.close();
    });

    browserIt("keeps a finished page's times true as time passes, without reloading it", async () => {
      const tab = await browser!.newPage();
      tab.setDefaultTimeout(0);
      // The page's own clock, from now: three hours pass at once, and only the page's timer can show it.
      await tab.clock.install();
      let loads = 0;
      tab.on('load', () => (loads += 1));
      await tab.goto(`${receiver.adminUrl}/`);
      expect(await tab.locator('#runs-page').getAttribute('data-live')).toBe('false');
      const times = tab.locator('#runs tbody time');
      const before = await times.allTextContents();
      expect(before.length).toBeGreaterThan(0);
      for (const words of before) expect(words).toMatch(/^(just now|\d+ s ago|\d+ min ago)$/);
      await tab.clock.fastForward('03:00:00');
      await tab.locator('#runs tbody time', { hasText: '3 h ago' }).first().waitFor();
      expect(new Set(await times.allTextContents())).toEqual(new Set(['3 h ago']));
      expect(loads).toBe(1);
      await tab.close();
    });

    browserIt('rolls back to the previous release with the button and the admin credential, and marks the run a rollback', async () => {
      const [first, second] = deploys;
      const tab = await browser!.newPage();
      tab.setDefaultTimeout(0);
      await tab.goto(`${receiver.adminUrl}/`);
      if (process.env.TRIGGLER_SCREENSHOT) {
        await tab.setViewportSize({ width: 1200, height: 640 });
        await tab.screenshot({ path: join(__dirname, '../../../docs/runs-page.png') });
      }
      const form = tab.locator('#summary tr[data-trigger="app@main"] form.rollback');
      const button = form.getByRole('button', { name: `Roll back to ${first!.release}` });
      expect(await button.isVisible()).toBe(true);
      // A wrong credential is refused and queues nothing.
      await form.locator('input[name=credential]').fill('not-the-credential');
      await button.click();
      await form.locator('.rollback-result', { hasText: 'not queued: unauthorized' }).waitFor();
      expect(receiver.history.runs().filter((run) => run.action?.type === 'rollback')).toEqual([]);
      const credential = fs.readFileSync(join(receiver.dir, 'state', 'admin-token'), 'utf8').trim();
      await form.locator('input[name=credential]').fill(credential);
      await button.click();
      const queued = form.locator('.rollback-result a');
      await queued.waitFor();
      const rollbackRun = (await queued.textContent())!.replace('queued as ', '');
      const record = (await receiver.settledRuns()).find((run) => run.id === rollbackRun)!;
      expect(record).toMatchObject({ status: 'succeeded', action: { type: 'rollback', to: first!.release } });
      expect(fs.readlinkSync(join(deployPath, 'current'))).toBe(`releases/${first!.release}`);
      // The page reloads itself once it queued a run, and shows the rollback for what it is.
      await tab.locator(`tr[data-run="${rollbackRun}"] .status[data-status="succeeded"]`).waitFor();
      expect(await tab.locator(`tr[data-run="${rollbackRun}"] td.release`).textContent()).toBe(`rollback → ${first!.release}`);
      // The summary's current release is the one it returned to; nothing older is left to roll back to.
      const summary = tab.locator('#summary tr[data-trigger="app@main"] td');
      expect(await summary.nth(2).textContent()).toContain(first!.release);
      expect(await summary.nth(4).textContent()).toBe('—');
      await tab.goto(`${receiver.adminUrl}/runs/${rollbackRun}`);
      const fields = await tab.locator('dl').textContent();
      expect(fields).toContain(`Releaserollback → ${first!.release}`);
      expect(fields).toContain(`Release before${second!.release}`);
      expect(fields).toContain(`${first!.commit} (the commit of the release it returned to)commit 1 — test`);
      expect(fields).not.toContain('not given by the sender');
      await tab.close();
    });

    browserIt('re-runs a run from its page with the admin credential typed in', async () => {
      const tab = await browser!.newPage();
      tab.setDefaultTimeout(0);
      await tab.goto(`${receiver.adminUrl}/runs/${okRun}`);
      const credential = fs.readFileSync(join(receiver.dir, 'state', 'admin-token'), 'utf8').trim();
      await tab.locator('#rerun-form input[name=credential]').fill(credential);
      await tab.locator('#rerun-form button').click();
      const queued = tab.locator('#rerun-result a');
      await queued.waitFor();
      expect(await tab.locator('#rerun-form input[name=credential]').inputValue()).toBe('');
      const rerun = (await queued.textContent())!.replace('queued as ', '');
      expect((await receiver.settledRuns()).find((run) => run.id === rerun)).toMatchObject({ rerunOf: okRun, status: 'succeeded' });
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
      await tab.close();
    });
  });
});
