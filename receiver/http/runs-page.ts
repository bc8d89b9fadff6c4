/**
 * The admin listener's pages, for people: `GET /` lists recent runs (filtered by `trigger` and
 * `status` query parameters, so it works without JavaScript) under a summary of each trigger
 * (./trigger-summary), and `GET /runs/<id>` with `Accept: text/html` shows one run and its log;
 * its small inline script follows a running run's log through `GET /runs/<id>/log/events`
 * (./live-log). While a run is pending or running the list reloads itself. Server-rendered, no
 * framework, no build step. Everything taken from a run (names, commits, errors, the log) is
 * escaped; the pages' scripts read their data from attributes, never from spliced script text.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { triggerLabel } from '../../protocol';
import type { RunRecord } from '../runs/run-record';
import type { RunHistory as RunPages } from './admin-server';
import { ADMIN_WRITE_SCRIPT, adminWriteForm } from './admin-write-form';
import { commitTag, escapeHtml, KNOWN_STATUSES, pageHeader, statusBadge, TIME_REFRESH_SCRIPT, timeTag } from './page-html';
import { commitWords, isLive, releaseWords, runCommit, runTime } from './run-description';
import { triggerSummary } from './trigger-summary';

export { escapeHtml };

/** Whether the client asked for a page (a browser) rather than JSON (the CLI, curl, anything without Accept). */
export function wantsHtml(req: IncomingMessage): boolean {
  return /\btext\/html\b/.test(req.headers.accept ?? '');
}

export function durationText(run: RunRecord, now = Date.now()): string {
  if (!run.startedAt) return '';
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  const seconds = Math.max(0, (end - Date.parse(run.startedAt)) / 1000);
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export function layout(title: string, body: string, nonce: string, script = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#111827;background:#f9fafb}
h1{font-size:1.3rem;margin:0 0 1rem} a{color:#1d4ed8}
header{display:flex;align-items:baseline;gap:1.2rem;margin:0 0 1rem} header h1{margin:0} nav{color:#6b7280}
table{border-collapse:collapse;width:100%;background:#fff} th,td{padding:.35rem .6rem;border-bottom:1px solid #e5e7eb;text-align:left;white-space:nowrap}
th{background:#f3f4f6;font-weight:600} td.num{text-align:right}
.status{color:#fff;border-radius:.25rem;padding:.05rem .45rem;font-size:.85em}
code,pre{font-family:ui-monospace,monospace} pre.log{background:#111827;color:#e5e7eb;padding:.8rem;overflow:auto;max-height:70vh;white-space:pre-wrap;word-break:break-all}
form.filter{margin:0 0 1rem;display:flex;gap:.6rem;align-items:end} dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem} dt{color:#6b7280}
.muted{color:#6b7280} .subject{color:#374151;white-space:normal} td .subject{display:block;font-size:.85em}
table#summary{margin:0 0 1.2rem} table#summary td{vertical-align:top} form.rollback{margin:.3rem 0 0} .command{font-size:.85em;white-space:normal}
</style></head><body>${body}${script ? `<script nonce="${nonce}">${script}</script>` : ''}</body></html>`;
}

export function sendPage(res: ServerResponse, status: number, html: string, nonce: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    // Only our own inline script runs, and it may talk only to this listener.
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
  res.end(html);
}

export const newNonce = (): string => randomBytes(16).toString('base64');

function options(values: readonly string[], selected: string | null, all: string): string {
  return [
    `<option value="">${escapeHtml(all)}</option>`,
    ...values.map((v) => `<option${v === selected ? ' selected' : ''}>${escapeHtml(v)}</option>`),
  ].join('');
}

/** How often a list with a run still to end reloads itself. */
export const LIVE_RELOAD_MS = 3000;

/**
 * The runs page's script: sends a rollback with a credential typed in, keeps its times' words
 * true, and while a run is pending or running (a rollback it queued, say) reloads the page every
 * few seconds (but never under someone typing a credential).
 */
const RUNS_PAGE_SCRIPT = `${ADMIN_WRITE_SCRIPT}${TIME_REFRESH_SCRIPT}
const page = document.getElementById('runs-page');
const typing = () => [...document.querySelectorAll('input[name=credential]')].some((i) => i.value !== '' || i === document.activeElement);
const reloadSoon = () => setTimeout(() => (typing() ? reloadSoon() : location.reload()), Number(page.dataset.reloadMs));
if (page.dataset.live === 'true') reloadSoon();
page.addEventListener('queued', () => {
  if (page.dataset.live !== 'true') { page.dataset.live = 'true'; reloadSoon(); }
});`;

/**
 * `GET /?trigger=<repository>@<branch>&status=<status>&limit=N`: a summary of each trigger (of the
 * one asked for; none when the page answers which runs had a status), then recent runs, newest first.
 */
export async function sendRunsPage(res: ServerResponse, runs: RunPages, query: URLSearchParams): Promise<void> {
  const trigger = query.get('trigger') || null;
  const status = query.get('status') || null;
  const limit = Math.min(Math.max(Number(query.get('limit')) || 100, 1), 1000);
  const all = runs.runs();
  const releases = await runs.releases?.();
  const now = Date.now();
  const shown = all.filter((run) => (!trigger || triggerLabel(run) === trigger) && (!status || run.status === status)).slice(0, limit);
  const triggers = [...new Set(all.map(triggerLabel))].sort();
  const statuses = [...new Set([...KNOWN_STATUSES, ...all.map((run) => run.status)])];
  const withRelease = shown.some((run) => releaseWords(run) !== undefined);
  const rows = shown.map((run) => {
    const cells = [
      `<a href="/runs/${encodeURIComponent(run.id)}"><code>${escapeHtml(run.id)}</code></a>`,
      escapeHtml(triggerLabel(run)),
      statusBadge(run.status),
      commitTag(runCommit(run), commitWords(run)),
      ...(withRelease ? [escapeHtml(releaseWords(run) ?? '')] : []),
      timeTag(runTime(run), now),
      escapeHtml(durationText(run, now)),
      `<span class="num">${run.deliveries}</span>`,
      run.rerunOf ? `<a href="/runs/${encodeURIComponent(run.rerunOf)}">re-run</a>` : '',
    ];
    return `<tr data-run="${escapeHtml(run.id)}">${cells.map((c, i) => `<td${i === 4 && withRelease ? ' class="release"' : ''}>${c}</td>`).join('')}</tr>`;
  });
  const heads = ['Run', 'Trigger', 'Status', 'Commit', ...(withRelease ? ['Release'] : []), 'Started', 'Took', 'Deliveries', ''];
  // Reloading is for a run still to end: a page of finished runs stays still.
  const live = all.some(isLive);
  const body = `<main id="runs-page" data-live="${live}" data-reload-ms="${LIVE_RELOAD_MS}">
${pageHeader('Runs', '/')}
${status ? '' : triggerSummary(trigger ? all.filter((run) => triggerLabel(run) === trigger) : all, trigger ? releases?.filter((where) => triggerLabel(where) === trigger) : releases, now)}
<form class="filter" method="get" action="/">
<label>Trigger<br><select name="trigger">${options(triggers, trigger, 'every trigger')}</select></label>
<label>Status<br><select name="status">${options(statuses, status, 'any status')}</select></label>
<button type="submit">Show</button> <a href="/">clear</a> <span class="muted">${shown.length} of ${all.length} runs${live ? ' · <span id="reloading">reloading while a run is on</span>' : ''}</span>
</form>
<table id="runs"><thead><tr>${heads.map((h) => `<th>${h}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n') || `<tr><td colspan="${heads.length}" class="muted">no runs${trigger || status ? ' match' : ' yet'}</td></tr>`}</tbody></table>
</main>`;
  const nonce = newNonce();
  sendPage(res, 200, layout('triggler runs', body, nonce, RUNS_PAGE_SCRIPT), nonce);
}

/** The script of a run's page: follows a running run's log, keeps its times' words true, and sends a re-run with a credential typed in. */
const RUN_PAGE_SCRIPT = `${ADMIN_WRITE_SCRIPT}${TIME_REFRESH_SCRIPT}
const page = document.getElementById('run');
const id = page.dataset.run;
const log = document.getElementById('log');
if (page.dataset.live === 'true') {
  const events = new EventSource('/runs/' + encodeURIComponent(id) + '/log/events');
  events.addEventListener('append', (e) => { log.textContent += JSON.parse(e.data); log.scrollTop = log.scrollHeight; });
  events.addEventListener('dropped', (e) => { events.close(); document.getElementById('live').textContent = JSON.parse(e.data).reason; });
  events.addEventListener('end', () => { events.close(); location.reload(); });
}`;

/**
 * The run page's Commit row: the commit deployed (a rollback's, the tip a push without one got),
 * with its subject and author when the fetch read them; the push's own when it differs.
 */
function commitRow(run: RunRecord): string {
  const commit = runCommit(run);
  if (!commit) return `<span class="muted">${run.action ? 'none' : 'not given by the sender'}</span>`;
  const words = commitWords(run);
  const pushed = run.commit && !/^0+$/.test(run.commit) ? run.commit : undefined;
  const note =
    run.action?.type === 'rollback'
      ? ' <span class="muted">(the commit of the release it returned to)</span>'
      : pushed === undefined && run.deploy?.commit
        ? ' <span class="muted">(the push named none: the tip of its branch)</span>'
        : pushed !== undefined && !commit.startsWith(pushed) && !pushed.startsWith(commit)
          ? ` <span class="muted">(the push named <code>${escapeHtml(pushed)}</code>)</span>`
          : '';
  return `<code>${escapeHtml(commit)}</code>${note}${words ? `<br><span class="subject">${escapeHtml(words)}</span>` : ''}`;
}

/** `GET /runs/<id>` for a browser: the record, its log, and how to re-run it. */
export async function sendRunPage(res: ServerResponse, runs: RunPages, id: string): Promise<void> {
  const nonce = newNonce();
  const run = runs.run(id);
  if (!run) {
    sendPage(res, 404, layout('no such run', `<h1>No such run</h1><p><a href="/">all runs</a></p>`, nonce), nonce);
    return;
  }
  const log = (await runs.runLog(id))?.toString('utf8') ?? '';
  const live = isLive(run);
  const fields: [string, string][] = [
    ['Trigger', `<a href="/?trigger=${encodeURIComponent(triggerLabel(run))}">${escapeHtml(triggerLabel(run))}</a>`],
    [
      'Status',
      `${statusBadge(run.status)}${run.exitCode === undefined || run.exitCode === null ? '' : ` exit ${run.exitCode}`}${run.signal ? ` ${escapeHtml(run.signal)}` : ''}`,
    ],
    ['Commit', commitRow(run)],
    ...(releaseWords(run) !== undefined ? [['Release', escapeHtml(releaseWords(run)!)] as [string, string]] : []),
    ...(run.deploy?.previousRelease
      ? [['Release before', `<code>${escapeHtml(run.deploy.previousRelease)}</code>`] as [string, string]]
      : []),
    ['Scheme', escapeHtml(run.scheme)],
    ['Created', timeTag(run.createdAt)],
    ['Started', timeTag(run.startedAt)],
    ['Finished', timeTag(run.finishedAt)],
    ['Took', escapeHtml(durationText(run))],
    ['Deliveries', `${run.deliveries}${run.deliveryIds.length ? ` (newest: <code>${escapeHtml(run.deliveryIds.at(-1)!)}</code>)` : ''}`],
    ...(run.rerunOf
      ? [
          ['Re-run of', `<a href="/runs/${encodeURIComponent(run.rerunOf)}"><code>${escapeHtml(run.rerunOf)}</code></a>`] as [
            string,
            string,
          ],
        ]
      : []),
    ...(run.error ? [['Error', escapeHtml(run.error)] as [string, string]] : []),
  ];
  const body = `<p><a href="/">← all runs</a></p>
<main id="run" data-run="${escapeHtml(run.id)}" data-live="${live}">
<h1>Run <code>${escapeHtml(run.id)}</code></h1>
<dl>${fields.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Log${run.logTruncated ? ' <span class="muted">(the middle was left out)</span>' : ''}${live ? ' <span class="muted" id="live">following…</span>' : ''}</h2>
<pre class="log" id="log">${escapeHtml(log)}</pre>
<h2>Re-run</h2>
<p>Queues a new run of this trigger with this run's newest delivery (same commit). A re-run is a write: it needs the admin credential, which only the receiver's user can read. From a shell on this host:</p>
<pre><code>triggler rerun ${escapeHtml(run.id)}</code></pre>
${adminWriteForm({ id: 'rerun-form', path: `/runs/${encodeURIComponent(run.id)}/rerun`, button: 'Re-run', result: { id: 'rerun-result' } })}
</main>`;
  sendPage(res, 200, layout(`run ${run.id}`, body, nonce, RUN_PAGE_SCRIPT), nonce);
}
