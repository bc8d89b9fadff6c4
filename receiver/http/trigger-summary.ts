/**
 * The top of the runs page: one line per trigger with its last run, its current release, the
 * health of its last deploy, and the release a rollback would return to with a button that asks
 * for it (the admin credential typed in, as for a re-run; the page's script sends it).
 */
import { triggerLabel } from '../../protocol';
import type { TriggerReleases } from '../runs/run-reader';
import type { RunRecord } from '../runs/run-record';
import { adminWriteForm } from './admin-write-form';
import { escapeHtml, statusBadge, timeTag } from './page-html';
import { commitWords, deployHealth, lastDeploy, runTime } from './run-description';

/** A word a shell reads as itself: as it is when plain, else in single quotes. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The current release as the runs tell it, when the deploy path was not read: the newest run that switched to one and kept it. */
function currentFromRuns(runs: readonly RunRecord[]): { id: string; commit?: string } | undefined {
  const run = runs.find((r) => r.status === 'succeeded' && r.deploy?.release && r.action?.type !== 'prepare');
  return run ? { id: run.deploy!.release!, ...(run.deploy!.commit ? { commit: run.deploy!.commit } : {}) } : undefined;
}

/** A release by its id (the whole commit to hover), with the subject and author of its commit as a run that deployed it recorded them. */
function releaseCell(release: { id: string; commit?: string } | undefined, runs: readonly RunRecord[]): string {
  if (!release) return '<span class="muted">—</span>';
  const made = runs.find((run) => run.deploy?.release === release.id && commitWords(run) !== undefined);
  const words = made && commitWords(made);
  const id = `<code${release.commit ? ` title="${escapeHtml(release.commit)}"` : ''}>${escapeHtml(release.id)}</code>`;
  return `${id}${words ? `<br><span class="subject">${escapeHtml(words)}</span>` : ''}`;
}

function rollbackCell(where: TriggerReleases | undefined, runs: readonly RunRecord[]): string {
  const previous = where?.previous;
  if (!where || !previous) return '<span class="muted">—</span>';
  const command = `triggler rollback ${shellWord(where.repository)} ${shellWord(where.branch)} --to ${previous.id}`;
  const form = adminWriteForm({
    path: '/rollback',
    button: 'Roll back',
    className: 'rollback',
    fields: { repository: where.repository, branch: where.branch, to: previous.id },
    result: { className: 'rollback-result' },
    compact: { buttonName: `Roll back to ${previous.id}`, title: `switch current back to ${previous.id}` },
  });
  return `${releaseCell(previous, runs)}
${form}
<div class="muted command">or <code>${escapeHtml(command)}</code></div>`;
}

/** The summary table: every trigger that has runs or a deploy path, by name. */
export function triggerSummary(runs: readonly RunRecord[], releases: readonly TriggerReleases[] | undefined, now = Date.now()): string {
  const byTrigger = new Map<string, RunRecord[]>();
  for (const run of runs) byTrigger.set(triggerLabel(run), [...(byTrigger.get(triggerLabel(run)) ?? []), run]);
  const deploying = new Map((releases ?? []).map((where) => [triggerLabel(where), where]));
  const labels = [...new Set([...byTrigger.keys(), ...deploying.keys()])].sort();
  if (labels.length === 0) return '';
  const rows = labels.map((label) => {
    const ofTrigger = byTrigger.get(label) ?? [];
    const where = deploying.get(label);
    const isDeploy = where !== undefined || ofTrigger.some((run) => run.deploy !== undefined);
    const last = ofTrigger[0];
    const deploy = isDeploy ? lastDeploy(ofTrigger) : undefined;
    const current = where ? where.current : isDeploy ? currentFromRuns(ofTrigger) : undefined;
    const cells = [
      `<a href="/?trigger=${encodeURIComponent(label)}">${escapeHtml(label)}</a>`,
      last
        ? `<a href="/runs/${encodeURIComponent(last.id)}"><code>${escapeHtml(last.id)}</code></a> ${statusBadge(last.status)} ${timeTag(runTime(last), now)}`
        : '<span class="muted">no runs yet</span>',
      isDeploy ? releaseCell(current, ofTrigger) : '<span class="muted">no deploy section</span>',
      deploy
        ? `<a href="/runs/${encodeURIComponent(deploy.id)}" class="health" data-status="${escapeHtml(deploy.status)}">${escapeHtml(deployHealth(deploy))}</a>`
        : '<span class="muted">—</span>',
      rollbackCell(where, ofTrigger),
    ];
    return `<tr data-trigger="${escapeHtml(label)}">${cells.map((cell) => `<td>${cell}</td>`).join('')}</tr>`;
  });
  const heads = ['Trigger', 'Last run', 'Current release', 'Last deploy', 'Previous release'];
  return `<table id="summary"><thead><tr>${heads.map((h) => `<th>${h}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}
