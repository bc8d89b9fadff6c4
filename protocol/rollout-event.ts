/**
 * What a `rollout.finished` notification says, built from a finished rollout's summary: the
 * Standard Webhooks event body, one line of text for chat and e-mail, and each host's outcome.
 * Pure functions, beside the text rules every notification shares (Slack's escaping, SNS's
 * subject), which the receiver's run notifications use too.
 */
import type { HostRolloutSteps, RolloutSummary } from './rollout';

/** Slack's mrkdwn reads <...> as links and mentions: the three characters are escaped, as its docs ask. */
export function escapeSlackText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An SNS subject: ASCII, no line breaks, at most 100 characters, never empty. */
export function snsSubject(text: string, fallback: string): string {
  return (
    text
      .replace(/[^\x20-\x7e]/g, '')
      .trim()
      .slice(0, 100) || fallback
  );
}

/**
 * An HTTP answer that trying again will not change: a 4xx other than 408 and 429. Both notifiers
 * (a run's and a rollout's) give up a target on one, and retry anything else.
 */
export function isPermanentRefusal(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/** How long a notifier waits after a failed attempt before the next: doubling from the first wait, at most a minute. */
export function nextRetryDelay(delayMs: number): number {
  return Math.min(delayMs * 2, 60_000);
}

/** How a rollout ended, or how its execution did when it left no summary (stopped by hand, timed out). */
export const ROLLOUT_EVENTS = ['succeeded', 'failed', 'rolled-back', 'superseded', 'stopped', 'timed-out'] as const;
export type RolloutEvent = (typeof ROLLOUT_EVENTS)[number];

/** One host's part, in a word: where it ended up. */
export type HostOutcome = 'switched' | 'rolled-back' | 'failed' | 'prepared' | 'not run';

export function hostOutcome(host: HostRolloutSteps): HostOutcome {
  if (host.rollback) return host.rollback.invocation === 'Success' ? 'rolled-back' : 'failed';
  if (host.switch) return host.switch.invocation === 'Success' ? 'switched' : 'failed';
  if (host.prepare) return host.prepare.invocation === 'Success' ? 'prepared' : 'failed';
  return 'not run';
}

export interface RolloutFinishedEvent {
  type: 'rollout.finished';
  timestamp: string;
  data: {
    /** The execution's name (`triggler fleet show <rollout>`). */
    rollout: string;
    executionArn: string;
    trigger: string;
    repository: string;
    branch: string;
    commit: string;
    deliveryId: string;
    outcome: RolloutEvent;
    reason?: string;
    startedAt: string | null;
    finishedAt: string | null;
    durationSeconds: number | null;
    hosts: {
      instanceId: string;
      outcome: HostOutcome;
      /** The host's last step's run and release, when it printed them. */
      runId: string | null;
      release: string | null;
      error?: string;
    }[];
  };
}

export interface FinishedExecution {
  name: string;
  executionArn: string;
  startedAt?: Date;
  finishedAt?: Date;
}

export function rolloutFinishedEvent(
  summary: RolloutSummary,
  execution: FinishedExecution,
  outcome: RolloutEvent = summary.outcome,
  now = new Date(),
): RolloutFinishedEvent {
  const { startedAt, finishedAt } = execution;
  return {
    type: 'rollout.finished',
    timestamp: now.toISOString(),
    data: {
      rollout: execution.name,
      executionArn: execution.executionArn,
      trigger: summary.trigger,
      repository: summary.repository,
      branch: summary.branch,
      commit: summary.commit,
      deliveryId: summary.deliveryId,
      outcome,
      ...(summary.reason === undefined ? {} : { reason: summary.reason }),
      startedAt: startedAt?.toISOString() ?? null,
      finishedAt: finishedAt?.toISOString() ?? null,
      durationSeconds: startedAt && finishedAt ? Math.max(0, (finishedAt.getTime() - startedAt.getTime()) / 1000) : null,
      hosts: summary.hosts.map((host) => {
        const last = host.rollback ?? host.switch ?? host.prepare;
        const error = last?.result?.error;
        return {
          instanceId: host.instanceId,
          outcome: hostOutcome(host),
          runId: last?.result?.runId ?? null,
          release: last?.result?.release ?? null,
          ...(error === undefined ? {} : { error }),
        };
      }),
    },
  };
}

const MARK: Record<RolloutEvent, string> = {
  succeeded: '✅',
  failed: '❌',
  'rolled-back': '↩️',
  superseded: '⏭️',
  stopped: '⚠️',
  'timed-out': '⏱️',
};

/** One line: "↩️ my-app@main rollout rolled-back, commit 0123456789ab (why): i-1 rolled-back, i-2 prepared". */
export function rolloutSummaryLine(event: RolloutFinishedEvent): string {
  const { data } = event;
  const took = data.durationSeconds === null ? '' : ` after ${Math.round(data.durationSeconds)} s`;
  const hosts = data.hosts.map((host) => `${host.instanceId} ${host.outcome}`).join(', ');
  return `${MARK[data.outcome]} ${data.trigger} rollout ${data.outcome}${took}, commit ${data.commit.slice(0, 12)}${data.reason ? ` (${data.reason})` : ''}: ${hosts || 'no hosts'}; rollout ${data.rollout}`;
}
