/**
 * The admin listener's pages, for people: `GET /` lists recent runs (filtered by `trigger` and
 * `status` query parameters, so it works without JavaScript), and `GET /runs/<id>` with
 * `Accept: text/html` shows one run and its log; its small inline script follows a running run's
 * log through `GET /runs/<id>/log/events` (./live-log). Server-rendered,
 * no framework, no build step. Everything taken from a run (names, commits, errors, the log) is
 * escaped; the page's script reads its data from attributes, never from spliced script text.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { triggerLabel } from '../../protocol';
import type { RunRecord } from '../runs/run-record';
import type { RunHistory as RunPages } from './admin-server';

const STATUS_COLOURS: Record<string, string> = {
  pending: '#6b7280',
  running: '#2563eb',
  succeeded: '#15803d',
  failed: '#b91c1c',
  'timed-out': '#c2410c',
  interrupted: '#a16207',
  'rolled-back': '#7e22ce',
};
/** Shown in the filter even before a run has had them. */
const KNOWN_STATUSES = Object.keys(STATUS_COLOURS);

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Whether the client asked for a page (a browser) rather than JSON (the CLI, curl, anything without Accept). */
export function wantsHtml(req: IncomingMessage): boolean {
  return /\btext\/html\b/.test(req.headers.accept ?? '');
}

const release = (run: RunRecord): string | undefined => {
  const value = (run as { release?: unknown }).release;
  return typeof value === 'string' ? value : undefined;
};

export function durationText(run: RunRecord, now = Date.now()): string {
  if (!run.startedAt) return '';
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  const seconds = Math.max(0, (end - Date.parse(run.startedAt)) / 1000);
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function statusBadge(status: string): string {
  return `<span class="status" data-status="${escapeHtml(status)}" style="background:${STATUS_COLOURS[status] ?? '#374151'}">${escapeHtml(status)}</span>`;
}

export function layout(title: string, body: string, nonce: string, script = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#111827;background:#f9fafb}
h1{font-size:1.3rem;margin:0 0 1rem} a{color:#1d4ed8}
table{border-collapse:collapse;width:100%;background:#fff} th,td{padding:.35rem .6rem;border-bottom:1px solid #e5e7eb;text-align:left;white-space:nowrap}
th{background:#f3f4f6;font-weight:600} td.num{text-align:right}
.status{color:#fff;border-radius:.25rem;padding:.05rem .45rem;font-size:.85em}
code,pre{font-family:ui-monospace,monospace} pre.log{background:#111827;color:#e5e7eb;padding:.8rem;overflow:auto;max-height:70vh;white-space:pre-wrap;word-break:break-all}
form.filter{margin:0 0 1rem;display:flex;gap:.6rem;align-items:end} dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem} dt{color:#6b7280}
.muted{color:#6b7280}
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

/** `GET /?trigger=<repository>@<branch>&status=<status>&limit=N`: recent runs, newest first. */
export function sendRunsPage(res: ServerResponse, runs: RunPages, query: URLSearchParams): void {
  const trigger = query.get('trigger') || null;
  const status = query.get('status') || null;
  const limit = Math.min(Math.max(Number(query.get('limit')) || 100, 1), 1000);
  const all = runs.runs();
  const shown = all.filter((run) => (!trigger || triggerLabel(run) === trigger) && (!status || run.status === status)).slice(0, limit);
  const triggers = [...new Set(all.map(triggerLabel))].sort();
  const statuses = [...new Set([...KNOWN_STATUSES, ...all.map((run) => run.status)])];
  const withRelease = shown.some((run) => release(run) !== undefined);
  const rows = shown.map((run) => {
    const cells = [
      `<a href="/runs/${encodeURIComponent(run.id)}"><code>${escapeHtml(run.id)}</code></a>`,
      escapeHtml(triggerLabel(run)),
      statusBadge(run.status),
      run.commit ? `<code title="${escapeHtml(run.commit)}">${escapeHtml(run.commit.slice(0, 12))}</code>` : '<span class="muted">—</span>',
      ...(withRelease ? [escapeHtml(release(run) ?? '')] : []),
      escapeHtml(run.startedAt ?? run.createdAt),
      escapeHtml(durationText(run)),
      `<span class="num">${run.deliveries}</span>`,
      run.rerunOf ? `<a href="/runs/${encodeURIComponent(run.rerunOf)}">re-run</a>` : '',
    ];
    return `<tr data-run="${escapeHtml(run.id)}">${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  });
  const heads = ['Run', 'Trigger', 'Status', 'Commit', ...(withRelease ? ['Release'] : []), 'Started', 'Took', 'Deliveries', ''];
  const body = `<h1>Runs</h1>
<form class="filter" method="get" action="/">
<label>Trigger<br><select name="trigger">${options(triggers, trigger, 'every trigger')}</select></label>
<label>Status<br><select name="status">${options(statuses, status, 'any status')}</select></label>
<button type="submit">Show</button> <a href="/">clear</a> <span class="muted">${shown.length} of ${all.length} runs · <a href="/metrics">metrics</a> · <a href="/healthz">health</a></span>
</form>
<table id="runs"><thead><tr>${heads.map((h) => `<th>${h}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n') || `<tr><td colspan="${heads.length}" class="muted">no runs${trigger || status ? ' match' : ' yet'}</td></tr>`}</tbody></table>`;
  const nonce = newNonce();
  sendPage(res, 200, layout('triggler runs', body, nonce), nonce);
}

/** The script of a run's page: follows a running run's log, and sends a re-run with a credential typed in. */
const RUN_PAGE_SCRIPT = `
const page = document.getElementById('run');
const id = page.dataset.run;
const log = document.getElementById('log');
if (page.dataset.live === 'true') {
  const events = new EventSource('/runs/' + encodeURIComponent(id) + '/log/events');
  events.addEventListener('append', (e) => { log.textContent += JSON.parse(e.data); log.scrollTop = log.scrollHeight; });
  events.addEventListener('dropped', (e) => { events.close(); document.getElementById('live').textContent = JSON.parse(e.data).reason; });
  events.addEventListener('end', () => { events.close(); location.reload(); });
}
const form = document.getElementById('rerun-form');
form.hidden = false;
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = document.getElementById('rerun-result');
  const credential = form.elements.credential.value.trim();
  form.elements.credential.value = '';
  const response = await fetch('/runs/' + encodeURIComponent(id) + '/rerun', { method: 'POST', headers: { authorization: 'Bearer ' + credential } });
  const answer = await response.json().catch(() => ({}));
  if (response.ok && answer.run) {
    out.innerHTML = '';
    const link = document.createElement('a');
    link.href = '/runs/' + encodeURIComponent(answer.run.id);
    link.textContent = 'queued as ' + answer.run.id;
    out.append(link);
  } else {
    out.textContent = 'not queued: ' + (answer.error || response.status);
  }
});`;

/** `GET /runs/<id>` for a browser: the record, its log, and how to re-run it. */
export async function sendRunPage(res: ServerResponse, runs: RunPages, id: string): Promise<void> {
  const nonce = newNonce();
  const run = runs.run(id);
  if (!run) {
    sendPage(res, 404, layout('no such run', `<h1>No such run</h1><p><a href="/">all runs</a></p>`, nonce), nonce);
    return;
  }
  const log = (await runs.runLog(id))?.toString('utf8') ?? '';
  const live = run.status === 'running' || run.status === 'pending';
  const fields: [string, string][] = [
    ['Trigger', `<a href="/?trigger=${encodeURIComponent(triggerLabel(run))}">${escapeHtml(triggerLabel(run))}</a>`],
    [
      'Status',
      `${statusBadge(run.status)}${run.exitCode === undefined || run.exitCode === null ? '' : ` exit ${run.exitCode}`}${run.signal ? ` ${escapeHtml(run.signal)}` : ''}`,
    ],
    ['Commit', run.commit ? `<code>${escapeHtml(run.commit)}</code>` : '<span class="muted">not given by the sender</span>'],
    ...(release(run) !== undefined ? [['Release', escapeHtml(release(run)!)] as [string, string]] : []),
    ['Scheme', escapeHtml(run.scheme)],
    ['Created', escapeHtml(run.createdAt)],
    ['Started', escapeHtml(run.startedAt ?? '')],
    ['Finished', escapeHtml(run.finishedAt ?? '')],
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
<form id="rerun-form" hidden><label>or paste the admin credential (<code>&lt;stateDir&gt;/admin-token</code>; not kept): <input name="credential" type="password" autocomplete="off" required></label> <button type="submit">Re-run</button> <span id="rerun-result"></span></form>
</main>`;
  sendPage(res, 200, layout(`run ${run.id}`, body, nonce, RUN_PAGE_SCRIPT), nonce);
}
