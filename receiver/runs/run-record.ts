/**
 * A run's record, as the journal stores it and as the outside sees it (the admin listener,
 * `triggler runs`). The zod schemas check what is read back from the journal; the types derive
 * from them.
 */
import { z } from 'zod';
import { SCHEMES } from '../../protocol';
import { acceptedDelivery, DEDUPE_FIELDS, DELIVERY_ONLY_FIELDS } from '../delivery';

/** `rolled-back`: a deploy whose activate or health check failed, switched back to the release before it. */
export const RUN_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'timed-out', 'interrupted', 'rolled-back'] as const;
export const FINAL_STATUSES = ['succeeded', 'failed', 'timed-out', 'interrupted', 'rolled-back'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export type FinalStatus = (typeof FINAL_STATUSES)[number];

/** How a run came to be: a delivery's scheme, or `admin` for a run asked for through the admin listener. */
export const scheme = z.enum([...SCHEMES, 'admin']);

/**
 * What a run does instead of deploying a push the usual way. The receiver's own runs (asked for
 * through the admin listener, or queued at start-up): `rollback` switches to an older release;
 * `recover` undoes a switch an earlier receiver made but never saw through its checks; `prepare`
 * lays out and builds a commit's release without switching to it; `switch` makes a prepared
 * release of a commit current. `rebuild`: a re-run of a push that builds a new release of its
 * commit even when one of it is good already.
 */
export const RUN_ACTIONS = ['rollback', 'recover', 'prepare', 'switch', 'rebuild'] as const;
export const runAction = z.object({
  type: z.enum(RUN_ACTIONS),
  /** rollback: a release id or a commit (at least 7 hex digits), absent: the release before current; prepare and switch: the commit. */
  to: z.string().optional(),
});
export type RunAction = z.infer<typeof runAction>;

/** How long a commit's subject or author may be in a run's record: enough to read, never a whole message. */
export const COMMIT_TEXT_LIMIT = 200;

/**
 * What a deploy run laid out: its release and the commit in it, and the release it replaced.
 * `subject` and `author` (the author's name) are read from the mirror once the commit is known,
 * for people to recognise the commit by; a record written before they were kept has neither.
 */
export const runDeploy = z.object({
  release: z.string().optional(),
  commit: z.string().optional(),
  previousRelease: z.string().optional(),
  subject: z.string().max(COMMIT_TEXT_LIMIT).optional(),
  author: z.string().max(COMMIT_TEXT_LIMIT).optional(),
});
export type RunDeploy = z.infer<typeof runDeploy>;
export const finalStatus = z.enum(FINAL_STATUSES);

export function isFinal(status: RunStatus): status is FinalStatus {
  return status !== 'pending' && status !== 'running';
}

/** What an accept record is written from: a verified delivery, or a run of the receiver's own (scheme `admin`, its action). */
export const recordedDelivery = acceptedDelivery.extend({ scheme, action: runAction.optional() });
export type RecordedDelivery = z.infer<typeof recordedDelivery>;

/** What the journal keeps of each accepted delivery; its dedupe key and expiry stand beside it in the record. */
export const deliveryFields = recordedDelivery.omit(DEDUPE_FIELDS);
export type DeliveryFields = z.infer<typeof deliveryFields>;
export const DELIVERY_FIELD_KEYS = deliveryFields.keyof().options;

/** What a run carries of the newest delivery that joined it (the push), and what a copy of that push takes from the run. */
export const runPush = recordedDelivery.omit(DELIVERY_ONLY_FIELDS);
export type RunPush = z.infer<typeof runPush>;
export const RUN_PUSH_KEYS = runPush.keyof().options;

/** The fields of `value` named by `keys` that are set: a copy by a schema's keys, never by a hand-written list. */
export function pickFields<T extends object, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) if (value[key] !== undefined) picked[key] = value[key];
  return picked as Pick<T, K>;
}

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
  /**
   * The newest push: its commit is what the command was (or will be) told; who pushed it and the
   * provider's event name are the command's, not the public record's. `action`: a run asked for
   * through the admin listener (a rollback), never joined by deliveries.
   */
  ...runPush.shape,
  status: z.enum(RUN_STATUSES),
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
  /** For a trigger with `deploy`: the release this run made (or switched to) and its commit. */
  deploy: runDeploy.optional(),
  /** The command's process group while it ran. */
  processGroup: processGroup.optional(),
  /** This run runs that run's newest delivery again: its one rerun after a crash interrupted it, or a `triggler rerun`. */
  rerunOf: z.string().optional(),
  /** This run runs the push of that recorded delivery again (`triggler redeliver`, the deliveries page). */
  redeliveryOf: z.string().optional(),
});

/** A run as the store keeps it: the public record plus who pushed the newest delivery. */
export type StoredRun = z.infer<typeof storedRun>;

/** The public record: who pushed stays inside (the command gets it as TRIGGLER_PUSHER). */
export type RunRecord = Omit<StoredRun, 'pusher' | 'event'>;

export function publicRecord(run: StoredRun): RunRecord {
  const { pusher: _pusher, event: _event, ...record } = run;
  return { ...record, deliveryIds: [...run.deliveryIds], commits: [...run.commits] };
}
