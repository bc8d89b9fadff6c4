/**
 * A write from an admin page (a redelivery, a re-run, a rollback): the page cannot know the admin
 * credential, so it shows the command to run as the receiver's user and, with JavaScript on, a
 * password field whose value is sent once as `Authorization: Bearer` and kept nowhere. No form
 * works without it. The pages are server-rendered; this is their one script for writes, reading
 * where to post, and what, from the form's attributes, never from spliced script text.
 */
import { escapeHtml } from './page-html';

export interface AdminWriteFormOptions {
  /** Where the form posts. */
  path: string;
  /** What its button says. */
  button: string;
  /** The form's id, for a page that has one such form. */
  id?: string;
  /** The form's class, for a page that has one per row. */
  className?: string;
  /** Posted as a JSON body (a rollback's repository, branch and release); nothing is posted without. */
  fields?: Record<string, string>;
  /** The id or class of the element the answer shows in: the queued run's link, or why nothing was queued. */
  result?: { id?: string; className?: string };
  /** In a table cell: the field's label as its placeholder, and the button's longer name for screen readers and on hover. */
  compact?: { buttonName: string; title: string };
}

const attribute = (name: string, value: string | undefined): string => (value === undefined ? '' : ` ${name}="${escapeHtml(value)}"`);

/** The form of one write; hidden until the page's script shows it. Each field is a `data-` attribute the script posts. */
export function adminWriteForm(options: AdminWriteFormOptions): string {
  const fields = Object.entries(options.fields ?? {})
    .map(([name, value]) => attribute(`data-${name}`, value))
    .join('');
  const field = options.compact
    ? `<input name="credential" type="password" autocomplete="off" required size="16" placeholder="admin credential" aria-label="admin credential (not kept)">`
    : `<label>or paste the admin credential (<code>&lt;stateDir&gt;/admin-token</code>; not kept): <input name="credential" type="password" autocomplete="off" required></label>`;
  const button = `<button type="submit"${attribute('aria-label', options.compact?.buttonName)}${attribute('title', options.compact?.title)}>${escapeHtml(options.button)}</button>`;
  const result = `<output${attribute('id', options.result?.id)}${attribute('class', options.result?.className)}></output>`;
  return `<form${attribute('id', options.id)}${attribute('class', options.className)}${attribute('data-post', options.path)}${fields} hidden>${field} ${button} ${result}</form>`;
}

/**
 * Shows every write form on the page and sends it with the credential typed in (the field emptied
 * at once); its other `data-` attributes are the JSON body. A queued run is linked in the form's
 * output, and the form then fires `queued` (it bubbles), for a page that follows what it started.
 */
export const ADMIN_WRITE_SCRIPT = `
for (const form of document.querySelectorAll('form[data-post]')) {
  form.hidden = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { post, ...fields } = form.dataset;
    const out = form.querySelector('output');
    const credential = form.elements.credential.value.trim();
    form.elements.credential.value = '';
    const headers = { authorization: 'Bearer ' + credential };
    const withBody = Object.keys(fields).length > 0;
    if (withBody) headers['content-type'] = 'application/json';
    const response = await fetch(post, { method: 'POST', headers, body: withBody ? JSON.stringify(fields) : undefined });
    const answer = await response.json().catch(() => ({}));
    out.replaceChildren();
    if (!response.ok || !answer.run) return void (out.textContent = 'not queued: ' + (answer.error || response.status));
    const link = document.createElement('a');
    link.href = '/runs/' + encodeURIComponent(answer.run.id);
    link.textContent = 'queued as ' + answer.run.id;
    out.append(link);
    form.dispatchEvent(new CustomEvent('queued', { bubbles: true }));
  });
}`;
