/**
 * The body of a Standard Webhooks delivery between our own ends:
 * `{ "type": "git.push", "timestamp": ISO-8601, "data": { repository, branch, ref, commit, ... } }`.
 */
export const PUSH_EVENT_TYPE = 'git.push';

export interface PushData {
  repository: string;
  branch: string;
  ref: string;
  commit: string;
  previousCommit?: string;
  /** Where the push happened: "codecommit", "cli", ... */
  source: string;
  [extra: string]: unknown;
}

export interface PushEvent {
  type: string;
  timestamp: string;
  data: PushData;
}

export function pushEvent(data: PushData, at: Date = new Date()): PushEvent {
  return { type: PUSH_EVENT_TYPE, timestamp: at.toISOString(), data };
}

/** What the receiver takes from a verified body. Nothing in it chooses what runs. */
export interface PushFacts {
  commit: string;
  previousCommit?: string;
  pusher?: string;
  repository?: string;
  branch?: string;
}

export type BodyProblem = { field: string; reason: string };

/**
 * Text that reaches a command's environment (TRIGGLER_PUSHER, ...): 1 to 256 characters, none of
 * them a control character. A NUL cannot stand in an environment variable at all (spawning fails,
 * and with it the run and every delivery coalesced into it), a newline splits what a command
 * reads line by line, and 128 KiB passes the kernel's limit on one variable.
 */
export const ENV_TEXT = /^[^\p{Cc}]{1,256}$/u;

/** A Git object id, abbreviated (4+) or whole (SHA-1 40, SHA-256 64). */
const COMMIT_ID = /^[0-9a-fA-F]{4,64}$/;

/**
 * Reads a verified body. It must be a JSON object with a `data` object; `data.repository` and
 * `data.branch`, when present, must name the trigger the path named, so a signed body cannot be
 * replayed to another trigger that shares its token.
 */
export function readPushBody(body: Buffer, repository: string, branch: string): PushFacts | BodyProblem {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { field: 'body', reason: 'is not valid JSON' };
  }
  if (!isObject(parsed)) return { field: 'body', reason: 'must be a JSON object' };
  const data = parsed.data;
  if (!isObject(data)) return { field: 'data', reason: 'must be an object' };
  for (const [field, expected] of [
    ['repository', repository],
    ['branch', branch],
  ] as const) {
    const value = data[field];
    if (value !== undefined && value !== expected) {
      return { field: `data.${field}`, reason: `does not match the ${field} in the path` };
    }
  }
  // A commit id reaches commands as TRIGGLER_COMMIT; one that is not hex (say "--upload-pack=...")
  // has no business there, however the command quotes it.
  const commit = data.commit;
  if (commit !== undefined && (typeof commit !== 'string' || !COMMIT_ID.test(commit))) {
    return { field: 'data.commit', reason: 'must be a hex commit id' };
  }
  const previous = data.previousCommit;
  if (previous !== undefined && (typeof previous !== 'string' || !COMMIT_ID.test(previous))) {
    return { field: 'data.previousCommit', reason: 'must be a hex commit id' };
  }
  const pusher = data.pusher;
  if (pusher !== undefined && (typeof pusher !== 'string' || !ENV_TEXT.test(pusher))) {
    return { field: 'data.pusher', reason: 'must be 1 to 256 characters, none of them a control character' };
  }
  return {
    commit: commit ?? '',
    ...(previous !== undefined ? { previousCommit: previous } : {}),
    ...(pusher !== undefined ? { pusher } : {}),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
