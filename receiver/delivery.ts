/** What the HTTP side hands the runner once a delivery is verified. */
export type Scheme = 'seed' | 'standard' | 'github' | 'gitlab' | 'gitea' | 'bitbucket';

export interface AcceptedDelivery {
  /**
   * A repeat of an accepted key, while it is remembered, runs nothing. The HTTP side composes it:
   * `standard:<webhook-id>`, `seed:<ts>:<signature>`, `github:<X-GitHub-Delivery>:<trigger>`, ...
   */
  dedupeKey: string;
  /** Until when (epoch ms) the key is remembered; past it the key may be forgotten. */
  dedupeUntil: number;
  /** The sender's own id for the delivery (webhook-id, X-GitHub-Delivery, ...), for people and logs. */
  deliveryId: string;
  repository: string;
  branch: string;
  /** The pushed commit; '' when the sender did not say. */
  commit: string;
  previousCommit?: string;
  scheme: Scheme;
  /** For provider webhooks: who pushed, and the provider's event name. */
  pusher?: string;
  event?: string;
  /** ISO-8601. */
  receivedAt: string;
}

export interface AcceptResult {
  /** `duplicate`: the key was accepted before; nothing new will run. */
  status: 'accepted' | 'duplicate';
  /** The run that carries (or carried) this delivery. */
  runId: string;
  /** True when the delivery joined a run that was already waiting. */
  coalesced: boolean;
}

export type RunStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'timed-out' | 'interrupted';

export interface RunRecord {
  id: string;
  repository: string;
  branch: string;
  status: RunStatus;
  /** The newest push's commit: what the command was (or will be) told. */
  commit: string;
  previousCommit?: string;
  scheme: Scheme;
  /** How many deliveries this run carries (a coalesced burst is many). */
  deliveries: number;
  /** The ids of those deliveries, oldest first: the newest 1000 when there are more. */
  deliveryIds: string[];
  /** Commits of those deliveries, oldest first, likewise bounded. */
  commits: string[];
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number | null;
  signal?: string | null;
  /** Why a run did not succeed, in words (spawn error, timeout, receiver stopped). */
  error?: string;
  logBytes?: number;
  logTruncated?: boolean;
}
