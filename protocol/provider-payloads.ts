/**
 * What the receiver reads from a provider's push payload: the repository, who pushed, and what
 * each pushed ref became. Pure functions over parsed JSON; the receiver calls readProviderPush
 * only once the signature verified, and claimedRepository before that only to know which
 * secret(s) to try.
 */
import { type BodyProblem, ENV_TEXT } from './push-event';
import type { ProviderName } from './schemes';

/** The repository a payload names: `name` (`Hello-World`) and, when the provider sends one, `fullName` (`Codertocat/Hello-World`). */
export interface ClaimedRepository {
  name: string;
  fullName?: string;
}

/** One ref of a push. Only `branch` can run anything. */
export type RefUpdate =
  | { kind: 'branch'; branch: string; commit: string; previousCommit?: string }
  | { kind: 'branch-deleted'; branch: string }
  | { kind: 'tag'; tag: string }
  | { kind: 'other'; ref: string };

export interface ProviderPush {
  repository: ClaimedRepository;
  pusher?: string;
  /** One per pushed ref: GitHub, GitLab and Gitea send one; Bitbucket may send several. */
  updates: RefUpdate[];
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The body as a JSON object, or undefined when it is not one. */
export function parseJsonObject(bytes: Buffer | string): JsonObject | undefined {
  try {
    const parsed: unknown = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

const COMMIT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;
const ZERO_COMMIT = /^(?:0{40}|0{64})$/;
function printableName(...candidates: unknown[]): string | undefined {
  for (const candidate of candidates) {
    if (typeof candidate === 'string' && ENV_TEXT.test(candidate)) return candidate;
  }
  return undefined;
}

function repositoryOf(value: unknown, nameField: string, fullNameField: string): ClaimedRepository | undefined {
  if (!isObject(value)) return undefined;
  const name = text(value[nameField]);
  if (name === undefined) return undefined;
  const fullName = text(value[fullNameField]);
  return fullName === undefined ? { name } : { name, fullName };
}

/**
 * The repository the (not yet verified) payload names. GitLab's is `project` (name and
 * path_with_namespace); payloads older than GitLab 8.5 only have `repository.name`.
 */
export function claimedRepository(provider: ProviderName, payload: JsonObject): ClaimedRepository | undefined {
  if (provider === 'gitlab')
    return repositoryOf(payload.project, 'name', 'path_with_namespace') ?? repositoryOf(payload.repository, 'name', '');
  return repositoryOf(payload.repository, 'name', 'full_name');
}

/**
 * The largest payload that names no repository and is still tried against every configured token
 * (receiver and webhook relay alike). Pings and malformed bodies from a real provider are small;
 * push payloads name their repository.
 */
export const UNCLAIMED_BODY_LIMIT = 64 * 1024;

/** Classifies a pushed `ref` (GitHub, GitLab, Gitea). */
function refUpdate(ref: string, commit: string, previousCommit: string | undefined, deleted: boolean): RefUpdate {
  if (ref.startsWith('refs/heads/') && ref.length > 'refs/heads/'.length) {
    const branch = ref.slice('refs/heads/'.length);
    if (deleted) return { kind: 'branch-deleted', branch };
    return previousCommit !== undefined && !ZERO_COMMIT.test(previousCommit)
      ? { kind: 'branch', branch, commit, previousCommit }
      : { kind: 'branch', branch, commit };
  }
  if (ref.startsWith('refs/tags/')) return { kind: 'tag', tag: ref.slice('refs/tags/'.length) };
  return { kind: 'other', ref };
}

function commitField(payload: JsonObject, field: string): string | BodyProblem {
  const value = payload[field];
  if (typeof value !== 'string' || !COMMIT_ID.test(value)) return { field, reason: 'must be a commit id (40 or 64 hex digits)' };
  return value.toLowerCase();
}

function optionalCommit(value: unknown): string | undefined {
  return typeof value === 'string' && COMMIT_ID.test(value) ? value.toLowerCase() : undefined;
}

const NO_REPOSITORY: BodyProblem = { field: 'repository', reason: 'must be an object with a string name' };

/** GitHub and Gitea/Forgejo push events share this shape (Gitea copied GitHub's). */
function readRefPush(payload: JsonObject, pusher: string | undefined): ProviderPush | BodyProblem {
  const repository = repositoryOf(payload.repository, 'name', 'full_name');
  if (!repository) return NO_REPOSITORY;
  const ref = text(payload.ref);
  if (ref === undefined) return { field: 'ref', reason: 'must be a non-empty string' };
  const after = commitField(payload, 'after');
  if (typeof after !== 'string') return after;
  const deleted = payload.deleted === true || ZERO_COMMIT.test(after);
  const update = refUpdate(ref, after, optionalCommit(payload.before), deleted);
  return { repository, ...(pusher !== undefined ? { pusher } : {}), updates: [update] };
}

function readGitHubPush(payload: JsonObject): ProviderPush | BodyProblem {
  const pusher = isObject(payload.pusher) ? printableName(payload.pusher.name) : undefined;
  return readRefPush(payload, pusher ?? (isObject(payload.sender) ? printableName(payload.sender.login) : undefined));
}

function readGiteaPush(payload: JsonObject): ProviderPush | BodyProblem {
  const pusher = isObject(payload.pusher) ? printableName(payload.pusher.login, payload.pusher.username) : undefined;
  return readRefPush(payload, pusher);
}

function readGitLabPush(payload: JsonObject): ProviderPush | BodyProblem {
  const repository = claimedRepository('gitlab', payload);
  if (!repository) return { field: 'project', reason: 'must be an object with a string name' };
  const ref = text(payload.ref);
  if (ref === undefined) return { field: 'ref', reason: 'must be a non-empty string' };
  const after = commitField(payload, 'after');
  if (typeof after !== 'string') return after;
  // checkout_sha is the commit GitLab would check out (null when the branch was deleted).
  const checkout = payload.checkout_sha;
  if (checkout !== undefined && checkout !== null && optionalCommit(checkout) === undefined) {
    return { field: 'checkout_sha', reason: 'must be a commit id or null' };
  }
  const deleted = ZERO_COMMIT.test(after) || checkout === null;
  const update = refUpdate(ref, optionalCommit(checkout) ?? after, optionalCommit(payload.before), deleted);
  const pusher = printableName(payload.user_username, payload.user_name);
  return { repository, ...(pusher !== undefined ? { pusher } : {}), updates: [update] };
}

/** A Bitbucket Cloud ref state (`change.new` / `change.old`): `{ type, name, target: { hash } }`. */
function bitbucketRef(value: unknown): { type: string; name: string; hash?: string } | undefined {
  if (!isObject(value)) return undefined;
  const type = text(value.type);
  const name = text(value.name);
  if (type === undefined || name === undefined) return undefined;
  const hash = isObject(value.target) ? optionalCommit(value.target.hash) : undefined;
  return hash === undefined ? { type, name } : { type, name, hash };
}

function readBitbucketChange(change: unknown, index: number): RefUpdate | BodyProblem {
  const field = `push.changes[${index}]`;
  if (!isObject(change)) return { field, reason: 'must be an object' };
  const before = bitbucketRef(change.old);
  // A deleted branch or tag has no new state.
  if (change.new === null || change.new === undefined) {
    if (before?.type === 'branch') return { kind: 'branch-deleted', branch: before.name };
    if (before?.type === 'tag') return { kind: 'tag', tag: before.name };
    return { kind: 'other', ref: before ? `${before.type}:${before.name}` : '(none)' };
  }
  const after = bitbucketRef(change.new);
  if (!after) return { field: `${field}.new`, reason: 'must have a string type and name' };
  if (after.type === 'tag') return { kind: 'tag', tag: after.name };
  if (after.type !== 'branch') return { kind: 'other', ref: `${after.type}:${after.name}` };
  if (after.hash === undefined) return { field: `${field}.new.target.hash`, reason: 'must be a commit id (40 or 64 hex digits)' };
  return before?.type === 'branch' && before.hash !== undefined
    ? { kind: 'branch', branch: after.name, commit: after.hash, previousCommit: before.hash }
    : { kind: 'branch', branch: after.name, commit: after.hash };
}

function readBitbucketPush(payload: JsonObject): ProviderPush | BodyProblem {
  const repository = repositoryOf(payload.repository, 'name', 'full_name');
  if (!repository) return NO_REPOSITORY;
  const changes = isObject(payload.push) ? payload.push.changes : undefined;
  if (!Array.isArray(changes)) return { field: 'push.changes', reason: 'must be an array' };
  const updates: RefUpdate[] = [];
  for (const [index, change] of changes.entries()) {
    const update = readBitbucketChange(change, index);
    if ('field' in update) return update;
    updates.push(update);
  }
  // Since 2019 Bitbucket sends no username; nickname is the account's public handle.
  const pusher = isObject(payload.actor)
    ? printableName(payload.actor.nickname, payload.actor.display_name, payload.actor.username)
    : undefined;
  return { repository, ...(pusher !== undefined ? { pusher } : {}), updates };
}

/** Reads a verified push payload; a problem names the field that is wrong. */
export function readProviderPush(provider: ProviderName, payload: JsonObject): ProviderPush | BodyProblem {
  switch (provider) {
    case 'github':
      return readGitHubPush(payload);
    case 'gitea':
      return readGiteaPush(payload);
    case 'gitlab':
      return readGitLabPush(payload);
    case 'bitbucket':
      return readBitbucketPush(payload);
  }
}
