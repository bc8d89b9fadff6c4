/**
 * What the journal's records add up to: the runs and the remembered delivery ids. Records are
 * applied here and nowhere else, the same way whether they were just written or are replayed at
 * start-up; nothing here reads or writes a file or logs.
 */
import type { JournalRecord } from './journal-record';
import { type DedupeEntry, RememberedIds } from './remembered-ids';
import { isFinal, pickFields, type DeliveryFields, RUN_LISTS_LIMIT, RUN_PUSH_KEYS, type StoredRun } from './run-record';

export interface RunState {
  readonly runs: Map<string, StoredRun>;
  /** Finished run ids, oldest finish first: the front is dropped when there are more than keepRuns. */
  readonly finished: Set<string>;
  readonly dedupe: RememberedIds;
  readonly keepRuns: number;
}

/** What applying a record did besides changing the state. */
export interface Applied {
  /** Runs dropped past keepRuns: their logs go. */
  dropped: string[];
  /** The record named a run the state does not hold, and was ignored. */
  unknownRun?: string;
}

export function emptyRunState(keepRuns: number, maxRememberedIds: number): RunState {
  return { runs: new Map(), finished: new Set(), dedupe: new RememberedIds(maxRememberedIds), keepRuns };
}

const NOTHING: Applied = { dropped: [] };

export function applyRecord(state: RunState, record: JournalRecord, now = Date.now()): Applied {
  switch (record.type) {
    case 'accept': {
      let run = state.runs.get(record.runId);
      if (!run) {
        run = {
          ...pickFields(record.delivery, RUN_PUSH_KEYS),
          id: record.runId,
          status: 'pending',
          deliveries: 0,
          deliveryIds: [],
          commits: [],
          createdAt: record.at,
          ...(record.rerunOf === undefined ? {} : { rerunOf: record.rerunOf }),
          ...(record.redeliveryOf === undefined ? {} : { redeliveryOf: record.redeliveryOf }),
        };
        state.runs.set(run.id, run);
      }
      carryPush(run, record.delivery);
      remember(state, record, now);
      return NOTHING;
    }
    case 'start':
      return withRun(state, record.runId, (run) => {
        run.status = 'running';
        run.startedAt = record.at;
      });
    case 'spawned':
      return withRun(state, record.runId, (run) => {
        run.processGroup = record.processGroup;
      });
    case 'rerun': {
      const interrupted = state.runs.get(record.of);
      if (!interrupted) return { dropped: [], unknownRun: record.of };
      // The push and the deliveries it carries; nothing of how the interrupted run ran.
      state.runs.set(record.runId, {
        ...pickFields(interrupted, RUN_PUSH_KEYS),
        id: record.runId,
        status: 'pending',
        deliveries: interrupted.deliveries,
        deliveryIds: [...interrupted.deliveryIds],
        commits: [...interrupted.commits],
        createdAt: record.at,
        rerunOf: record.of,
      });
      return NOTHING;
    }
    case 'finish': {
      const run = state.runs.get(record.runId);
      if (!run) return { dropped: [], unknownRun: record.runId };
      run.status = record.status;
      run.finishedAt = record.at;
      for (const field of ['exitCode', 'signal', 'error', 'logBytes', 'logTruncated', 'deploy'] as const)
        setOrDelete(run, field, record[field]);
      return { dropped: markFinished(state, run.id) };
    }
    case 'run':
      state.runs.set(record.run.id, record.run);
      return { dropped: isFinal(record.run.status) ? markFinished(state, record.run.id) : [] };
    case 'dedupe':
      remember(state, record, now);
      return NOTHING;
  }
}

/**
 * The delivery joins the run: counted whole, listed to a bound (a flood coalesced into one run must
 * not grow its record, and every snapshot and /runs answer that holds it, without limit), and the
 * run carries the newest push.
 */
function carryPush(run: StoredRun, delivery: DeliveryFields): void {
  run.deliveries += 1;
  run.deliveryIds.push(delivery.deliveryId);
  run.commits.push(delivery.commit);
  if (run.deliveryIds.length > RUN_LISTS_LIMIT) {
    run.deliveryIds.shift();
    run.commits.shift();
  }
  for (const key of RUN_PUSH_KEYS) setOrDelete(run as Partial<StoredRun>, key, delivery[key]);
}

function remember(state: RunState, record: { dedupeKey: string; dedupeUntil: number; runId: string }, now: number): void {
  state.dedupe.remember(record.dedupeKey, { runId: record.runId, until: record.dedupeUntil }, now);
}

function withRun(state: RunState, runId: string, change: (run: StoredRun) => void): Applied {
  const run = state.runs.get(runId);
  if (!run) return { dropped: [], unknownRun: runId };
  change(run);
  return NOTHING;
}

function markFinished(state: RunState, runId: string): string[] {
  state.finished.delete(runId);
  state.finished.add(runId);
  const dropped: string[] = [];
  while (state.finished.size > state.keepRuns) {
    const oldest = state.finished.values().next().value as string;
    state.finished.delete(oldest);
    state.runs.delete(oldest);
    dropped.push(oldest);
  }
  return dropped;
}

/** Newest first (run ids sort by creation). */
export function runsNewestFirst(state: RunState): StoredRun[] {
  return [...state.runs.values()].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** Pending and running runs, oldest first. */
export function unfinishedRuns(state: RunState): StoredRun[] {
  return runsNewestFirst(state)
    .filter((run) => !isFinal(run.status))
    .reverse();
}

/**
 * The state as records: what a compacted journal holds (unfinished runs, the newest keepRuns
 * finished runs, dedupe keys not yet expired), finished runs first in the order they finished.
 */
export function* stateRecords(state: RunState, now = Date.now()): Generator<JournalRecord> {
  for (const id of state.finished) {
    const run = state.runs.get(id);
    if (run) yield { type: 'run', run };
  }
  for (const run of unfinishedRuns(state)) yield { type: 'run', run };
  state.dedupe.forgetExpired(now);
  for (const [dedupeKey, entry] of state.dedupe) yield { type: 'dedupe', dedupeKey, dedupeUntil: entry.until, runId: entry.runId };
}

export type { DedupeEntry };

function setOrDelete<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value === undefined) delete target[key];
  else target[key] = value;
}
