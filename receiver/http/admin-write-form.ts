/**
 * A write from an admin page (a redelivery, a re-run, a rollback): the page cannot know the admin
 * credential, so it shows the command to run as the receiver's user and, with JavaScript on, a
 * password field whose value is sent once as `Authorization: Bearer` and kept nowhere. No form
 * works without it. The pages are server-rendered; this is their one script for writes, reading
 * where to post from the form's attributes, never from spliced script text.
 */
import { escapeHtml } from './runs-page';

/** The form of one write: `path` is where it posts; the answer's run is linked once queued. */
export function adminWriteForm(id: string, path: string, button: string): string {
  return `<form id="${escapeHtml(id)}" data-post="${escapeHtml(path)}" hidden><label>or paste the admin credential (<code>&lt;stateDir&gt;/admin-token</code>; not kept): <input name="credential" type="password" autocomplete="off" required></label> <button type="submit">${escapeHtml(button)}</button> <output></output></form>`;
}

/** Shows every write form on the page and sends it with the credential typed in. */
export const ADMIN_WRITE_SCRIPT = `
for (const form of document.querySelectorAll('form[data-post]')) {
  form.hidden = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = form.querySelector('output');
    const credential = form.elements.credential.value.trim();
    form.elements.credential.value = '';
    const response = await fetch(form.dataset.post, { method: 'POST', headers: { authorization: 'Bearer ' + credential } });
    const answer = await response.json().catch(() => ({}));
    out.replaceChildren();
    if (!response.ok || !answer.run) return void (out.textContent = 'not queued: ' + (answer.error || response.status));
    const link = document.createElement('a');
    link.href = '/runs/' + encodeURIComponent(answer.run.id);
    link.textContent = 'queued as ' + answer.run.id;
    out.append(link);
  });
}`;
