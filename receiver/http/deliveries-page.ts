/**
 * The admin listener's recent deliveries (./delivery-recorder), like a provider's "Recent
 * deliveries":
 *   GET /deliveries?trigger=<repository>@<branch>   newest first: JSON, or the page for `Accept: text/html`
 *   GET /deliveries/<id>                            one delivery: JSON, or its page
 * `trigger=unknown` shows the requests that named no configured trigger. Server-rendered like the
 * runs page (./runs-page): everything taken from a request (its path, headers, the names it chose)
 * is escaped, and the only script is the write form's (./admin-write-form), which sends a
 * redelivery with a credential typed in. Secrets never reach the page: the recorder redacts them before anything is shown.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Reply } from '../errors';
import { ADMIN_WRITE_SCRIPT, adminWriteForm } from './admin-write-form';
import type { DeliveryHistory, DeliveryOutcome, DeliveryView } from './delivery-recorder';
import { UNKNOWN_TRIGGER } from './delivery-recorder';
import { pageHeader } from './page-html';
import { escapeHtml, layout, newNonce, sendPage, wantsHtml } from './runs-page';

const DELIVERY_PATH = /^\/deliveries\/([A-Za-z0-9_-]{1,64})$/;

const OUTCOME_COLOURS: Record<DeliveryOutcome, string> = {
  accepted: '#15803d',
  duplicate: '#6b7280',
  ignored: '#a16207',
  answered: '#2563eb',
  rejected: '#b91c1c',
};

/** Whether the path is one of these pages'. */
export function isDeliveriesPath(path: string): boolean {
  return path === '/deliveries' || DELIVERY_PATH.test(path);
}

/** Answers `GET /deliveries` and `GET /deliveries/<id>`: a reply to send as JSON, or undefined once a page was sent. */
export async function answerDeliveries(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deliveries: DeliveryHistory,
): Promise<Reply | undefined> {
  const one = DELIVERY_PATH.exec(url.pathname);
  if (one) {
    const found = await deliveries.get(one[1]!);
    if (wantsHtml(req)) return void sendDeliveryPage(res, found?.view, one[1]!);
    return found ? { status: 200, body: { delivery: found.view } } : { status: 404, body: { error: 'no such delivery' } };
  }
  const trigger = url.searchParams.get('trigger') || undefined;
  const list = await deliveries.list(trigger);
  if (wantsHtml(req)) {
    // The filter lists every trigger seen, whatever the filter shows now.
    const all = trigger === undefined ? list : await deliveries.list();
    return void sendDeliveriesPage(res, list.deliveries, list.unanswered, triggersOf(all.deliveries), trigger);
  }
  return { status: 200, body: { deliveries: list.deliveries, ...(list.unanswered ? { unanswered: list.unanswered } : {}) } };
}

function triggersOf(deliveries: DeliveryView[]): string[] {
  const labels = new Set(deliveries.map((delivery) => delivery.trigger));
  labels.delete(UNKNOWN_TRIGGER);
  return [...[...labels].sort(), UNKNOWN_TRIGGER];
}

function outcomeBadge(outcome: DeliveryOutcome): string {
  return `<span class="status" data-outcome="${outcome}" style="background:${OUTCOME_COLOURS[outcome]}">${outcome}</span>`;
}

const runLink = (run: string | undefined): string =>
  run ? `<a href="/runs/${encodeURIComponent(run)}"><code>${escapeHtml(run)}</code></a>` : '<span class="muted">—</span>';

function sendDeliveriesPage(
  res: ServerResponse,
  shown: DeliveryView[],
  unanswered: number | undefined,
  triggers: string[],
  trigger: string | undefined,
): void {
  const rows = shown.map((delivery) => {
    const cells = [
      `<a href="/deliveries/${encodeURIComponent(delivery.id)}"><code>${escapeHtml(delivery.id)}</code></a>`,
      escapeHtml(delivery.receivedAt),
      escapeHtml(delivery.trigger),
      outcomeBadge(delivery.outcome),
      `<span class="num">${delivery.answer.status}</span>`,
      `<code>${escapeHtml(delivery.request.method)} ${escapeHtml(delivery.request.path.slice(0, 120))}</code>`,
      escapeHtml(delivery.reason ?? ''),
      runLink(delivery.run),
    ];
    return `<tr data-delivery="${escapeHtml(delivery.id)}">${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  });
  const heads = ['Delivery', 'Received', 'Trigger', 'Outcome', 'Answer', 'Request', 'Reason', 'Run'];
  const choices = [
    `<option value="">every trigger</option>`,
    ...triggers.map((label) => `<option${label === trigger ? ' selected' : ''}>${escapeHtml(label)}</option>`),
  ].join('');
  const body = `${pageHeader('Deliveries', '/deliveries')}
<form class="filter" method="get" action="/deliveries">
<label>Trigger<br><select name="trigger">${choices}</select></label>
<button type="submit">Show</button> <a href="/deliveries">clear</a> <span class="muted">${shown.length} kept in memory, newest first: accepted, duplicate and rejected</span>
</form>
${unanswered ? `<p class="muted">${unanswered} worker process${unanswered === 1 ? '' : 'es'} did not answer: their deliveries are not shown.</p>` : ''}
<table id="deliveries"><thead><tr>${heads.map((h) => `<th>${h}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n') || `<tr><td colspan="${heads.length}" class="muted">no deliveries${trigger ? ' for this trigger' : ' yet'}</td></tr>`}</tbody></table>`;
  const nonce = newNonce();
  sendPage(res, 200, layout('triggler deliveries', body, nonce), nonce);
}

const json = (value: unknown): string => escapeHtml(JSON.stringify(value, null, 2));

function sendDeliveryPage(res: ServerResponse, delivery: DeliveryView | undefined, id: string): void {
  const nonce = newNonce();
  if (!delivery) {
    const body = `<h1>No such delivery</h1><p>Only the newest deliveries of each trigger are kept, in memory. <a href="/deliveries">all deliveries</a></p>`;
    return sendPage(res, 404, layout(`no delivery ${id}`, body, nonce), nonce);
  }
  const fields: [string, string][] = [
    ['Trigger', `<a href="/deliveries?trigger=${encodeURIComponent(delivery.trigger)}">${escapeHtml(delivery.trigger)}</a>`],
    ['Received', escapeHtml(delivery.receivedAt)],
    ['Outcome', outcomeBadge(delivery.outcome)],
    ...(delivery.reason ? [['Reason', escapeHtml(delivery.reason)] as [string, string]] : []),
    ...(delivery.details ? [['Details', `<code>${json(delivery.details)}</code>`] as [string, string]] : []),
    ['Run', runLink(delivery.run)],
    ...(delivery.commit ? [['Commit', `<code>${escapeHtml(delivery.commit)}</code>`] as [string, string]] : []),
  ];
  const headers = delivery.request.headers.map(
    ([name, value]) => `<tr><th>${escapeHtml(name)}</th><td><code>${escapeHtml(value)}</code></td></tr>`,
  );
  const redeliver = delivery.redeliverable
    ? `<h2>Redeliver</h2>
<p>Queues a new run of this trigger with this delivery's push. It is a write: it needs the admin credential, which only the receiver's user can read. From a shell on this host:</p>
<pre><code>triggler redeliver ${escapeHtml(delivery.id)}</code></pre>
${adminWriteForm({ id: 'redeliver-form', path: `/deliveries/${encodeURIComponent(delivery.id)}/redeliver`, button: 'Redeliver' })}`
    : '';
  const body = `<p><a href="/deliveries">← all deliveries</a></p>
<main id="delivery" data-delivery="${escapeHtml(delivery.id)}">
<h1>Delivery <code>${escapeHtml(delivery.id)}</code></h1>
<dl>${fields.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Request</h2>
<p><code>${escapeHtml(delivery.request.method)} ${escapeHtml(delivery.request.path)}</code>${delivery.request.remote ? ` <span class="muted">from ${escapeHtml(delivery.request.remote)}</span>` : ''}</p>
<table id="request-headers" style="width:auto"><tbody>${headers.join('\n')}</tbody></table>
<h2>Answer</h2>
<p id="answer-status">${delivery.answer.status}</p>
${delivery.answer.headers ? `<pre id="answer-headers">${json(delivery.answer.headers)}</pre>` : ''}
<pre id="answer-body">${json(delivery.answer.body)}</pre>
${redeliver}
</main>`;
  sendPage(res, 200, layout(`delivery ${delivery.id}`, body, nonce, redeliver ? ADMIN_WRITE_SCRIPT : ''), nonce);
}
