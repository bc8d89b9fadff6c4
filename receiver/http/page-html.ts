/**
 * What the admin listener's pages are made of: the header that links them, escaping, a run's
 * status as a coloured badge, and a time shown as how long ago with the exact time to hover.
 * Everything taken from a run goes through escapeHtml.
 */
import { timeAgo } from './run-description';

const STATUS_COLOURS: Record<string, string> = {
  pending: '#6b7280',
  running: '#2563eb',
  succeeded: '#15803d',
  failed: '#b91c1c',
  'timed-out': '#c2410c',
  interrupted: '#a16207',
  'rolled-back': '#7e22ce',
};
/** Shown in the runs page's filter even before a run has had them. */
export const KNOWN_STATUSES = Object.keys(STATUS_COLOURS);

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function statusBadge(status: string): string {
  return `<span class="status" data-status="${escapeHtml(status)}" style="background:${STATUS_COLOURS[status] ?? '#374151'}">${escapeHtml(status)}</span>`;
}

/** How often an open page works out its times' words again. */
export const TIME_REFRESH_MS = 5000;

/**
 * A page's script that keeps each timeTag true while the page stays open (a finished runs page
 * reloads no more): every few seconds, while the page is seen, each `<time>` is said again by the
 * very timeAgo the server used (its source is the script's), and only a changed one is written.
 */
export const TIME_REFRESH_SCRIPT = `
const timeAgo = ${timeAgo.toString()};
setInterval(() => {
  if (document.hidden) return;
  const now = Date.now();
  for (const time of document.querySelectorAll('time[datetime]')) {
    const words = timeAgo(time.dateTime, now);
    if (time.textContent !== words) time.textContent = words;
  }
}, ${TIME_REFRESH_MS});`;

/** `<time>` reading "3 min ago", the exact time in its title; empty for no time. */
export function timeTag(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '';
  return `<time datetime="${escapeHtml(iso)}" title="${escapeHtml(iso)}">${escapeHtml(timeAgo(iso, now))}</time>`;
}

/** A commit's first 12 digits, the whole id to hover; `words` (its subject and author) beside it when known. */
export function commitTag(commit: string | undefined, words?: string): string {
  if (!commit) return '<span class="muted">—</span>';
  const subject = words ? `<span class="subject">${escapeHtml(words)}</span>` : '';
  return `<code title="${escapeHtml(commit)}">${escapeHtml(commit.slice(0, 12))}</code>${subject}`;
}

/** What the admin listener serves to look at, in the order every page's header links them. */
const PAGES = [
  { path: '/', name: 'runs' },
  { path: '/deliveries', name: 'deliveries' },
  { path: '/metrics', name: 'metrics' },
  { path: '/healthz', name: 'health' },
];

/** A list page's header: its title, and a link to each other page (the page itself named, not linked). */
export function pageHeader(title: string, path: string): string {
  const links = PAGES.map(({ path: to, name }) =>
    to === path ? `<span aria-current="page">${name}</span>` : `<a href="${to}">${name}</a>`,
  );
  return `<header><h1>${escapeHtml(title)}</h1><nav aria-label="pages">${links.join(' · ')}</nav></header>`;
}
