/**
 * A run's record, as the journal stores it and as the outside sees it (the admin listener,
 * `triggler runs`). The zod schemas check what is read back from the journal; the types derive
 * from them.
 */
import { z } from 'zod';
import { SCHEMES } from '../../protocol';

/** `rolled-back`: a deploy whose activate or health check failed, switched back to the release before it. */
export const RUN_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'timed-out', 'interrupted', 'rolled-back'] as const;
export const FINAL_STATUSES = ['succeeded', 'failed', 'timed-out', 'interrupted', 'rolled-back'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export type FinalStatus = (typeof FINAL_STATUSES)[number];

/** How a run came to be: a delivery's scheme, or `admin` for a run asked for through the admin listener. */
export const scheme = z.enum([...SCHEMES, 'admin']);

/**
 * What a run of the receiver's own does instead of deploying a push: `rollback` (asked for through
 * the admin listener) switches to an older release; `recover` (queued at start-up) undoes a switch
 * an earlier receiver made but never saw through its checks.
 */
export const runAction = z.object({
  type: z.enum(['rollback', 'recover']),
  /** A release id or a commit (at least 7 hex digits); absent: the release before current. */
  to: z.string().optional(),
});
export type RunAction = z.infer<typeof runAction>;

/** What a deploy run laid out: its release and the commit in it, and the release it replaced. */
export const runDeploy = z.object({
  release: z.string().optional(),
  commit: z.string().optional(),
  previousRelease: z.string().optional(),
});
export type RunDeploy = z.infer<typeof runDeploy>;
export const finalStatus = z.enum(FINAL_STATUSES);

export function isFinal(status: RunStatus): status is FinalStatus {
  return status !== 'pending' && status !== 'running';
}

/** What the journal keeps of each accepted delivery. */
export const deliveryFields = z.object({
  deliveryId: z.string(),
  repository: z.string(),
  branch: z.string(),
  commit: z.string(),
  previousCommit: z.string().optional(),
  scheme,
  pusher: z.string().optional(),
  event: z.string().optional(),
  receivedAt: z.string(),
  action: runAction.optional(),
});

/** How many delivery ids and commits a run record lists (the newest); its count covers them all. */
export const RUN_LISTS_LIMIT = 1000;

/** A command's process group, as recorded once it is spawned: enough to know it again after a crash. */
export const processGroup = z.object({
  pgid: z.number().int().positive(),
  /** The group leader's start time (/proc), which tells it from a later process given its pid. */
  startTime: z.string().regex(/^\d+$/).optional(),
  bootId: z.string().optional(),
});
export type ProcessGroup = z.infer<typeof processGroup>;

export const storedRun = z.object({
  id: z.string().min(1),
  repository: z.string(),
  branch: z.string(),
  status: z.enum(RUN_STATUSES),
  /** The newest push's commit: what the command was (or will be) told. */
  commit: z.string(),
  previousCommit: z.string().optional(),
  scheme,
  /** Who pushed the newest delivery, and the provider's event name: the command's, not the public record's. */
  pusher: z.string().optional(),
  event: z.string().optional(),
  /** The ids of the deliveries the run carries, oldest first: the newest RUN_LISTS_LIMIT when there are more. */
  deliveryIds: z.array(z.string()),
  /** Commits of those deliveries, oldest first, likewise bounded. */
  commits: z.array(z.string()),
  /** How many deliveries this run carries (a coalesced burst is many); the lists above keep only the newest. */
  deliveries: z.number().int().nonnegative(),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  exitCode: z.number().int().nullable().optional(),
  signal: z.string().nullable().optional(),
  /** Why a run did not succeed, in words (spawn error, timeout, receiver stopped). */
  error: z.string().optional(),
  logBytes: z.number().int().nonnegative().optional(),
  logTruncated: z.boolean().optional(),
  /** A run asked for through the admin listener (a rollback): never joined by deliveries. */
  action: runAction.optional(),
  /** For a trigger with `deploy`: the release this run made (or switched to) and its commit. */
  deploy: runDeploy.optional(),
  /** The command's process group while it ran. */
  processGroup: processGroup.optional(),
  /** This run runs that run's newest delivery again: its one rerun after a crash interrupted it, or a `triggler rerun`. */
  rerunOf: z.string().optional(),
});

/** A run as the store keeps it: the public record plus who pushed the newest delivery. */
export type StoredRun = z.infer<typeof storedRun>;

/** The public record: who pushed stays inside (the command gets it as TRIGGLER_PUSHER). */
export type RunRecord = Omit<StoredRun, 'pusher' | 'event'>;

export function publicRecord(run: StoredRun): RunRecord {
  const { pusher: _pusher, event: _event, ...record } = run;
  return { ...record, deliveryIds: [...run.deliveryIds], commits: [...run.commits] };
}
