/**
 * A run in words, the same on the runs page and in `triggler runs`: the commit it is about, what
 * it did with releases (a rollback marked as one, with the release it returned to), how long ago,
 * and how a trigger's last deploy went. Plain text: the page escapes it, the CLI prints it.
 */
import type { RunRecord } from '../runs/run-record';

/** The commit a run is about: the one it deployed (a rollback's, a push's tip), else the one its push named; never git's all-zero "no commit". */
export function runCommit(run: RunRecord): string | undefined {
  if (run.deploy?.commit) return run.deploy.commit;
  return run.commit && !/^0+$/.test(run.commit) ? run.commit : undefined;
}

/**
 * What a run did with releases: the release it made or switched to; a run of the receiver's own
 * says which it is (`rollback → <release>`, the release it returned to, or asked for when the
 * rollback never got that far). Undefined for a run that has nothing to do with releases.
 */
export function releaseWords(run: RunRecord): string | undefined {
  const release = run.deploy?.release;
  const to = run.action?.to;
  switch (run.action?.type) {
    case 'rollback':
      return `rollback → ${release ?? to ?? 'the previous release'}`;
    case 'prepare':
      return release ? `prepared ${release}` : 'prepare';
    case 'switch':
      return `switch → ${release ?? (to ? `commit ${to.slice(0, 12)}` : 'a prepared release')}`;
    case 'recover':
      return 'recover';
    case 'rebuild':
      return release ? `${release} (rebuilt)` : 'rebuild';
    default:
      return release;
  }
}

/** The commit's subject and author as the mirror told them, `subject — author`; undefined when the record has neither. */
export function commitWords(run: RunRecord): string | undefined {
  const { subject, author } = run.deploy ?? {};
  if (subject === undefined && author === undefined) return undefined;
  return [subject, author].filter((part) => part !== undefined && part !== '').join(' — ');
}

/** `12 s ago`, `3 min ago`, `5 h ago`, `2 days ago`; a time not yet come (a clock set back) is `just now`. */
export function timeAgo(iso: string, now = Date.now()): string {
  const seconds = Math.floor((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return iso;
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

/** When a run began (or was asked for, while it waits). */
export const runTime = (run: RunRecord): string => run.startedAt ?? run.createdAt;

/** Whether a run has still to end. */
export const isLive = (run: RunRecord): boolean => run.status === 'pending' || run.status === 'running';

/**
 * A trigger's newest run that switched `current` or tried to (a push's deploy, a re-run, a
 * rollback, a switch), from `runs` newest first: prepares and recoveries switch nothing.
 */
export function lastDeploy(runs: readonly RunRecord[]): RunRecord | undefined {
  return runs.find((run) => run.action?.type !== 'prepare' && run.action?.type !== 'recover' && (run.deploy !== undefined || isLive(run)));
}

/** How a deploy run went, as the health of what it left current. */
export function deployHealth(run: RunRecord): string {
  switch (run.status) {
    case 'succeeded':
      return 'healthy';
    case 'rolled-back':
      return 'unhealthy: activate or the health check failed, switched back';
    case 'failed':
      return 'not deployed: failed before the switch';
    case 'timed-out':
      return 'not deployed: timed out';
    case 'interrupted':
      return 'not deployed: interrupted';
    default:
      return 'deploying…';
  }
}
