/**
 * What a notification says, built from a finished run: the `run.finished` event (Standard
 * Webhooks body), and one line of text for chat webhooks and e-mail. Pure functions.
 */
import { escapeSlackText } from '../../protocol';
import type { RunRecord } from '../runs/run-record';
import type { NotifyEvent } from '../config/notify-schema';

/** How much of the end of a run's log a notification carries. */
export const LOG_TAIL_BYTES = 4096;

export interface RunFinishedEvent {
  type: 'run.finished';
  timestamp: string;
  data: {
    runId: string;
    repository: string;
    branch: string;
    status: string;
    /** Why this notification was sent: the status, or `recovered`. */
    event: NotifyEvent;
    commit: string;
    exitCode: number | null;
    durationSeconds: number | null;
    startedAt: string | null;
    finishedAt: string | null;
    deliveries: number;
    rerunOf?: string;
    error?: string;
    /** The last LOG_TAIL_BYTES of the run's output. */
    logTail: string;
  };
}

export function durationSeconds(run: Pick<RunRecord, 'startedAt' | 'finishedAt'>): number | null {
  if (!run.startedAt || !run.finishedAt) return null;
  return Math.max(0, (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000);
}

/** The end of a log, starting on a whole line when one starts within it. */
export function logTail(log: Buffer | undefined, bytes = LOG_TAIL_BYTES): string {
  if (!log || log.length === 0) return '';
  if (log.length <= bytes) return log.toString('utf8');
  const end = log.subarray(log.length - bytes);
  const newline = end.indexOf(0x0a);
  return (newline >= 0 && newline < end.length - 1 ? end.subarray(newline + 1) : end).toString('utf8');
}

export function runFinishedEvent(run: RunRecord, event: NotifyEvent, tail: string, now = new Date()): RunFinishedEvent {
  return {
    type: 'run.finished',
    timestamp: now.toISOString(),
    data: {
      runId: run.id,
      repository: run.repository,
      branch: run.branch,
      status: run.status,
      event,
      commit: run.commit,
      exitCode: run.exitCode ?? null,
      durationSeconds: durationSeconds(run),
      startedAt: run.startedAt ?? null,
      finishedAt: run.finishedAt ?? null,
      deliveries: run.deliveries,
      ...(run.rerunOf === undefined ? {} : { rerunOf: run.rerunOf }),
      ...(run.error === undefined ? {} : { error: run.error }),
      logTail: tail,
    },
  };
}

const MARK: Record<NotifyEvent, string> = {
  succeeded: '✅',
  recovered: '✅',
  failed: '❌',
  'timed-out': '⏱️',
  'rolled-back': '↩️',
  interrupted: '⚠️',
};

/** One line: "❌ my-app@main failed (exit 1) after 3.2 s: run r_…, commit 0123456789ab". */
export function runSummary(run: RunRecord, event: NotifyEvent): string {
  const seconds = durationSeconds(run);
  const what = event === 'recovered' ? 'recovered (succeeded after a failure)' : run.status;
  const exit = run.exitCode === undefined || run.exitCode === null ? '' : ` (exit ${run.exitCode})`;
  const took = seconds === null ? '' : ` after ${seconds.toFixed(1)} s`;
  const commit = run.commit ? `, commit ${run.commit.slice(0, 12)}` : '';
  return `${MARK[event]} ${run.repository}@${run.branch} ${what}${exit}${took}: run ${run.id}${commit}${run.error ? ` (${run.error})` : ''}`;
}

/** Slack-compatible text (also Mattermost, and Discord's `/slack` endpoint): the summary and the log's last lines. */
export function chatText(run: RunRecord, event: NotifyEvent, tail: string, lines = 15): string {
  const last = tail
    .split('\n')
    .filter((line, i, all) => line !== '' || i < all.length - 1)
    .slice(-lines)
    .join('\n')
    .replace(/```/g, "'''");
  return escapeSlackText(last ? `${runSummary(run, event)}\n\`\`\`\n${last}\n\`\`\`` : runSummary(run, event));
}
