/**
 * The durable record of deliveries and runs: one append-only JSON-lines journal in the state
 * directory. The in-memory state is only ever what the journal says: a record is applied after it
 * is on disk, by the same function that replays the journal at start-up.
 *
 * Appends that arrive together share one write and one fdatasync (group commit), which is what
 * lets a single disk sync stand behind thousands of accepted deliveries a second.
 */
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { SinkHealth } from '../delivery';
import { ReceiverError } from '../errors';
import { readJournalLines } from './journal-lines';
import { type AcceptRecord, type FinishRecord, type JournalRecord, readRecord, SkippedLines } from './journal-record';
import { syncDirectory, writeAll } from './durable-files';
import { type DedupeEntry, RememberedIds } from './remembered-ids';
import { type FinalStatus, isFinal, RUN_LISTS_LIMIT, type StoredRun } from './run-record';
import { StateLock } from './state-lock';

export type { AcceptRecord, DedupeEntry, FinalStatus, FinishRecord, JournalRecord, StoredRun };
export { RUN_LISTS_LIMIT };

export const JOURNAL_FILE = 'journal.jsonl';
const LOG_DIR = 'runs';

let lastIdTime = 0;
let idSequence = 0;

/**
 * `r_` + milliseconds (base36, fixed width) + a per-millisecond sequence + random: ids sort in the
 * order they were made in this process, and two processes cannot make the same one.
 */
export function newRunId(now = Date.now()): string {
  if (now > lastIdTime) {
    lastIdTime = now;
    idSequence = 0;
  } else {
    idSequence += 1;
  }
  const time = lastIdTime.toString(36).padStart(9, '0');
  const sequence = idSequence.toString(36).padStart(3, '0');
  return `r_${time}${sequence}${randomBytes(4).toString('hex')}`;
}

/** Run ids become file names: only what newRunId makes (or something as tame) is accepted. */
const runIdPattern = /^r_[a-z0-9]+$/;

export interface RunStoreOptions {
  stateDir: string;
  /** Finished runs kept (in memory and in the journal); older ones and their logs are deleted. */
  keepRuns: number;
  logger: Logger;
  /** fdatasync after each group write. Off trades crash safety for speed. @default true */
  fsync?: boolean;
  /** Compact while running once the journal passes this size. @default 8 MiB */
  compactAfterBytes?: number;
  /** ...or this many records. @default 50,000 */
  compactAfterRecords?: number;
  /**
   * The longest journal line replay reads; a longer one is skipped unread, so replay holds at most
   * this much of the journal at once whatever its size. The largest record written is a run
   * listing RUN_LISTS_LIMIT delivery ids, each at most a request header (16 KiB, twice that once
   * escaped as JSON): under 33 MiB.
   * @default 64 MiB
   */
  maxRecordBytes?: number;
  /**
   * Delivery ids (dedupe keys) remembered at most, besides each one's own expiry. Past it the one
   * that expires soonest is forgotten first; a repeat of a forgotten delivery runs again if its
   * signature still verifies (a seed or Standard Webhooks delivery only within its timestamp
   * window; a provider webhook, which is signed without a time, at any time). Only a sender with
   * a token can make more valid deliveries than this within the replay window, and it needs no
   * repeat to run a command. Bounds memory, the journal and start-up time under such a flood.
   * @default 100,000
   */
  maxRememberedIds?: number;
  /** After a failed write, how long until the store tries to write again. @default 1000 */
  retryWriteAfterMs?: number;
}

export interface OpenedStore {
  store: RunStore;
  /** Runs that were running when the receiver last stopped, now recorded as interrupted. */
  interrupted: StoredRun[];
}

/** The journal cannot be written: no delivery is accepted until it can, since none would be durable (the sender retries). */
export class JournalWriteError extends ReceiverError {
  constructor(cause: Error) {
    super('journal', `cannot write the run journal: ${cause.message}`, { cause });
    this.name = 'JournalWriteError';
  }
}

/** `since`: when the first write that failed was made (ISO-8601). */
export type JournalHealth = SinkHealth;

interface QueuedRecord {
  /** Absent for the newline a retry writes to find out whether the journal takes writes again. */
  record?: JournalRecord;
  line: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class RunStore {
  readonly journalPath: string;
  readonly logDir: string;
  private readonly fsync: boolean;
  private readonly compactAfterBytes: number;
  private readonly compactAfterRecords: number;
  private readonly maxRecordBytes: number;
  private readonly runs = new Map<string, StoredRun>();
  /** Finished run ids, oldest finish first: the front is dropped when there are more than keepRuns. */
  private readonly finished = new Set<string>();
  private readonly dedupe: RememberedIds;
  private handle: FileHandle | undefined;
  private journalBytes = 0;
  private journalRecords = 0;
  private snapshotBytes = 0;
  private snapshotRecords = 0;
  private queue: QueuedRecord[] = [];
  private flushing: Promise<void> | undefined;
  private failure: JournalWriteError | undefined;
  private failedAt: string | undefined;
  /** Runs' records waiting for the journal to take writes again. */
  private held: QueuedRecord[] = [];
  private refuseAll = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retryMs: number;
  private closed = false;
  private lastDedupeSweep = Date.now();
  private lock: StateLock | undefined;

  private constructor(private readonly options: RunStoreOptions) {
    this.journalPath = path.join(options.stateDir, JOURNAL_FILE);
    this.logDir = path.join(options.stateDir, LOG_DIR);
    this.fsync = options.fsync ?? true;
    this.compactAfterBytes = options.compactAfterBytes ?? 8 * 1024 * 1024;
    this.compactAfterRecords = options.compactAfterRecords ?? 50_000;
    this.maxRecordBytes = options.maxRecordBytes ?? 64 * 1024 * 1024;
    this.dedupe = new RememberedIds(options.maxRememberedIds ?? 100_000);
    this.retryMs = options.retryWriteAfterMs ?? 1000;
  }

  /**
   * Replays the journal, records runs that were running as interrupted, and compacts. A truncated
   * last line (a crash mid-write) is skipped with a warning; unreadable lines elsewhere are skipped
   * and counted in an error, and everything else is kept. The state directory stays locked until
   * close(): while another live process holds it, this throws StateDirLockedError naming that
   * process, before anything is read or written.
   */
  static async open(options: RunStoreOptions): Promise<OpenedStore> {
    const store = new RunStore(options);
    await fsp.mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    store.lock = StateLock.acquire(options.stateDir);
    try {
      return await store.load();
    } catch (error) {
      await store.handle?.close();
      store.lock.release();
      throw error;
    }
  }

  /**
   * The journal as it stands, for a reader beside (or instead of) a live receiver: no lock, nothing
   * written, moved or deleted, runs shown as the journal left them (one `running` may be one a
   * stopped receiver will record as interrupted). Records cannot be written through it.
   */
  static async readOnly(stateDir: string, logger: Logger): Promise<RunStore> {
    const store = new RunStore({ stateDir, keepRuns: Number.MAX_SAFE_INTEGER, logger, fsync: false });
    store.closed = true;
    await store.readJournal();
    return store;
  }

  /** Bytes in the journal file now (it grows between compactions). */
  get journalSize(): number {
    return this.journalBytes;
  }

  private async load(): Promise<OpenedStore> {
    await fsp.mkdir(this.logDir, { recursive: true, mode: 0o700 });
    const intact = await this.replay();
    this.logForgottenEarly();
    const now = new Date().toISOString();
    const interrupted: StoredRun[] = [];
    for (const run of [...this.runs.values()]) {
      if (run.status !== 'running') continue;
      const logBytes = await fileSize(this.logPath(run.id));
      this.apply({ type: 'finish', at: now, runId: run.id, status: 'interrupted', error: 'receiver stopped while it ran', ...(logBytes === undefined ? {} : { logBytes }) });
      interrupted.push(run);
    }
    await this.writeSnapshot();
    this.handle = await fsp.open(this.journalPath, 'a', 0o600);
    // Logs of runs the journal no longer names (dropped before a crash could delete them). When lines
    // were skipped, a log's run may have been on one of them: keep the logs for whoever looks into it.
    if (intact) await this.deleteOrphanLogs();
    return { store: this, interrupted };
  }

  logPath(runId: string): string {
    if (!runIdPattern.test(runId)) throw new Error(`run id "${runId}" is not a run id`);
    return path.join(this.logDir, `${runId}.log`);
  }

  run(id: string): StoredRun | undefined {
    return this.runs.get(id);
  }

  /** Newest first (run ids sort by creation). */
  allRuns(): StoredRun[] {
    return [...this.runs.values()].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  }

  /** Pending and running runs, oldest first. */
  unfinishedRuns(): StoredRun[] {
    return this.allRuns()
      .filter((run) => !isFinal(run.status))
      .reverse();
  }

  dedupeEntry(key: string, now = Date.now()): DedupeEntry | undefined {
    return this.dedupe.get(key, now);
  }

  async readLog(runId: string): Promise<Buffer | undefined> {
    if (!this.runs.has(runId)) return undefined;
    try {
      return await fsp.readFile(this.logPath(runId));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * Resolves once the record is on disk (and applied). While the journal cannot be written, a
   * delivery's accept is refused at once (it was never answered, so it is not ours to keep); a
   * run's start or finish, which belongs to deliveries already accepted, waits until the journal
   * takes writes again (unless refuseWhileUnwritable() was called).
   */
  record(record: JournalRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the run store is closed'));
    if (this.failure && (record.type === 'accept' || this.refuseAll)) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const queued = { record, line: `${JSON.stringify(record)}\n`, resolve, reject };
      if (this.failure) {
        this.held.push(queued);
        return;
      }
      this.queue.push(queued);
      this.startFlush();
    });
  }

  /** Whether the journal takes writes: what a health check reports. */
  health(): JournalHealth {
    if (!this.failure) return { status: 'ok' };
    return { status: 'degraded', reason: this.failure.message, since: this.failedAt ?? '' };
  }

  /**
   * From now on, records the journal cannot take are refused at once instead of waiting for it
   * (the receiver is stopping and must not wait for a full disk); those waiting are refused now.
   */
  refuseWhileUnwritable(): void {
    this.refuseAll = true;
    if (this.failure) this.rejectHeld(this.failure);
  }

  /** Writes what is queued and closes the journal; later records are refused. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    while (this.flushing) await this.flushing;
    this.rejectHeld(new Error('the run store is closed'));
    await this.handle?.close();
    this.handle = undefined;
    this.lock?.release();
  }

  private startFlush(): void {
    // setImmediate, not a microtask: requests read in the same turn of the event loop join the batch.
    this.flushing ??= new Promise<void>((done) => setImmediate(() => void this.flushLoop().finally(done)));
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const data = Buffer.from(batch.map((queued) => queued.line).join(''));
        try {
          if (this.failure) await this.repair();
          if (!this.handle) throw new Error('the journal is not open');
          await writeAll(this.handle, data);
          if (this.fsync) await this.handle.datasync();
        } catch (error) {
          this.fail(error as Error, batch);
          return;
        }
        this.journalBytes += data.length;
        if (this.failure) this.recovered();
        const dropped: string[] = [];
        for (const queued of batch) {
          if (!queued.record) continue;
          this.journalRecords += 1;
          dropped.push(...this.apply(queued.record));
        }
        for (const queued of batch) queued.resolve();
        if (dropped.length > 0) void this.deleteLogs(dropped);
        await this.maintain();
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /**
   * A write or sync failed (a full disk, an I/O error). The batch's accepts are refused: their
   * deliveries get 5xx and their senders retry. The runs' own records wait in `held`. From here
   * until a retry succeeds, accepts are refused at once.
   */
  private fail(cause: Error, batch: QueuedRecord[]): void {
    const failure = new JournalWriteError(cause);
    if (!this.failure) {
      this.failedAt = new Date().toISOString();
      this.options.logger.error({ journal: this.journalPath, err: cause.message, retryMs: this.retryMs }, 'run journal write failed; refusing deliveries until a write succeeds again');
    } else {
      this.options.logger.debug({ journal: this.journalPath, err: cause.message }, 'run journal still cannot be written');
    }
    this.failure = failure;
    for (const queued of [...batch, ...this.queue]) {
      if (!queued.record) continue;
      if (queued.record.type === 'accept' || this.refuseAll) queued.reject(failure);
      else this.held.push(queued);
    }
    this.queue = [];
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed || !this.failure) return;
      if (this.flushing) {
        this.scheduleRetry();
        return;
      }
      // The held records, or a newline (which replay passes over) to find out whether writes succeed.
      this.queue = this.held.length > 0 ? this.held : [{ line: '\n', resolve: () => undefined, reject: () => undefined }];
      this.held = [];
      this.startFlush();
    }, this.retryMs);
    // A retry alone does not keep the process running.
    this.retryTimer.unref();
  }

  /**
   * Before writing after a failure: the failed write may have left part of a batch after the last
   * record written whole. Cut it off (those records were refused, never answered), so that what
   * follows does not bury a partial line mid-file.
   */
  private async repair(): Promise<void> {
    this.handle ??= await fsp.open(this.journalPath, 'a', 0o600);
    await this.handle.truncate(this.journalBytes);
  }

  private recovered(): void {
    this.options.logger.info({ journal: this.journalPath, since: this.failedAt }, 'run journal takes writes again; accepting deliveries');
    this.failure = undefined;
    this.failedAt = undefined;
    // Held while a retry was being written: they go next.
    this.queue.push(...this.held.splice(0));
  }

  private rejectHeld(error: Error): void {
    for (const queued of this.held.splice(0)) queued.reject(error);
  }

  /** Compaction when the journal has grown well past its last snapshot, and a sweep of expired keys. */
  private async maintain(): Promise<void> {
    const now = Date.now();
    if (now - this.lastDedupeSweep > 60_000) {
      this.lastDedupeSweep = now;
      this.dedupe.forgetExpired(now);
      this.logForgottenEarly();
    }
    // Measured against the snapshot so that a large set of remembered keys does not compact every batch.
    const grownBytes = this.journalBytes > Math.max(this.compactAfterBytes, 2 * this.snapshotBytes);
    const grownRecords = this.journalRecords > Math.max(this.compactAfterRecords, 2 * this.snapshotRecords);
    if (!grownBytes && !grownRecords) return;
    try {
      await this.handle?.close();
      this.handle = undefined;
      await this.writeSnapshot();
    } catch (error) {
      this.options.logger.error({ journal: this.journalPath, err: (error as Error).message }, 'run journal compaction failed');
      // Try again only after as much growth again, not on every batch.
      this.snapshotBytes = this.journalBytes;
      this.snapshotRecords = this.journalRecords;
    }
    try {
      this.handle ??= await fsp.open(this.journalPath, 'a', 0o600);
    } catch (error) {
      this.fail(error as Error, []);
    }
  }

  /** Applies one record to the state; returns the ids of runs dropped past keepRuns. */
  private apply(record: JournalRecord, now = Date.now()): string[] {
    switch (record.type) {
      case 'accept': {
        const delivery = record.delivery;
        let run = this.runs.get(record.runId);
        if (!run) {
          run = {
            id: record.runId,
            repository: delivery.repository,
            branch: delivery.branch,
            status: 'pending',
            commit: delivery.commit,
            scheme: delivery.scheme,
            deliveries: 0,
            deliveryIds: [],
            commits: [],
            createdAt: record.at,
            ...(delivery.action ? { action: delivery.action } : {}),
            ...(record.rerunOf === undefined ? {} : { rerunOf: record.rerunOf }),
          };
          this.runs.set(run.id, run);
        }
        // Counted whole, listed to a bound: a flood coalesced into one run must not grow its record
        // (and every snapshot and /runs answer that holds it) without limit.
        run.deliveries += 1;
        run.deliveryIds.push(delivery.deliveryId);
        run.commits.push(delivery.commit);
        if (run.deliveryIds.length > RUN_LISTS_LIMIT) {
          run.deliveryIds.shift();
          run.commits.shift();
        }
        // The run carries the newest push.
        run.commit = delivery.commit;
        run.scheme = delivery.scheme;
        setOrDelete(run, 'previousCommit', delivery.previousCommit);
        setOrDelete(run, 'pusher', delivery.pusher);
        setOrDelete(run, 'event', delivery.event);
        this.dedupe.remember(record.dedupeKey, { runId: record.runId, until: record.dedupeUntil }, now);
        return [];
      }
      case 'start': {
        const run = this.knownRun(record);
        if (!run) return [];
        run.status = 'running';
        run.startedAt = record.at;
        return [];
      }
      case 'spawned': {
        const run = this.knownRun(record);
        if (run) run.processGroup = record.processGroup;
        return [];
      }
      case 'rerun': {
        const interrupted = this.runs.get(record.of);
        if (!interrupted) {
          this.options.logger.warn({ run: record.runId, of: record.of }, 'run journal reruns an unknown run; record ignored');
          return [];
        }
        const { startedAt: _s, finishedAt: _f, exitCode: _e, signal: _g, error: _r, logBytes: _b, logTruncated: _t, processGroup: _p, ...push } = interrupted;
        this.runs.set(record.runId, { ...push, id: record.runId, status: 'pending', createdAt: record.at, rerunOf: record.of, deliveryIds: [...push.deliveryIds], commits: [...push.commits] });
        return [];
      }
      case 'finish': {
        const run = this.knownRun(record);
        if (!run) return [];
        run.status = record.status;
        run.finishedAt = record.at;
        for (const field of ['exitCode', 'signal', 'error', 'logBytes', 'logTruncated', 'deploy'] as const) setOrDelete(run, field, record[field]);
        this.finished.delete(run.id);
        this.finished.add(run.id);
        return this.dropOldRuns();
      }
      case 'run': {
        this.runs.set(record.run.id, record.run);
        if (isFinal(record.run.status)) {
          this.finished.delete(record.run.id);
          this.finished.add(record.run.id);
          return this.dropOldRuns();
        }
        return [];
      }
      case 'dedupe':
        this.dedupe.remember(record.dedupeKey, { runId: record.runId, until: record.dedupeUntil }, now);
        return [];
    }
  }

  private logForgottenEarly(): void {
    const forgotten = this.dedupe.takeForgottenEarly();
    if (forgotten === 0) return;
    this.options.logger.warn(
      { forgotten, maxRememberedIds: this.dedupe.limit },
      'more delivery ids than the store remembers: the ones expiring soonest were forgotten early, and a repeat of one of them would run again',
    );
  }

  private knownRun(record: { type: string; runId: string }): StoredRun | undefined {
    const run = this.runs.get(record.runId);
    if (!run) this.options.logger.warn({ run: record.runId, record: record.type }, 'run journal names an unknown run; record ignored');
    return run;
  }

  private dropOldRuns(): string[] {
    const dropped: string[] = [];
    while (this.finished.size > this.options.keepRuns) {
      const oldest = this.finished.values().next().value as string;
      this.finished.delete(oldest);
      this.runs.delete(oldest);
      dropped.push(oldest);
    }
    return dropped;
  }

  /**
   * Streams the journal through apply(), a line at a time. A line that cannot be read (not valid
   * UTF-8, not JSON, not a record, longer than maxRecordBytes) is skipped and counted; every other
   * record is kept. Returns false when something was skipped: the journal as it was is then set
   * aside for whoever looks into it.
   */
  private async replay(): Promise<boolean> {
    const read = await this.readJournal();
    if (!read) return true;
    const { skipped, dropped } = read;
    await this.deleteLogs(dropped);
    if (skipped.records === 0) return true;
    const aside = `${this.journalPath}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await fsp.rename(this.journalPath, aside);
    this.options.logger.error(
      { journal: this.journalPath, setAside: aside, ...skipped.summary() },
      'run journal is corrupt in places: the unreadable records are skipped, every other record is kept (the journal as it was is set aside)',
    );
    return false;
  }

  /** Applies every readable journal line; undefined when there is no journal yet. Touches no file. */
  private async readJournal(): Promise<{ skipped: SkippedLines; dropped: string[] } | undefined> {
    const skipped = new SkippedLines();
    const dropped: string[] = [];
    try {
      for await (const line of readJournalLines(this.journalPath, this.maxRecordBytes)) {
        const reading = readRecord(line, this.maxRecordBytes);
        if (reading === 'blank') continue;
        if (typeof reading !== 'string') {
          dropped.push(...this.apply(reading));
        } else if (line.terminated) {
          skipped.add(line, reading);
        } else {
          this.options.logger.warn({ journal: this.journalPath, line: line.number, bytes: line.length }, 'run journal ends in a partly written record (the receiver stopped mid-write); skipped');
        }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return { skipped, dropped };
  }

  /**
   * Rewrites the journal as the current state: unfinished runs, the newest keepRuns finished runs,
   * dedupe keys not yet expired. Temp file, fsync, rename, fsync of the directory: a crash leaves
   * either the old journal or the new one.
   */
  private async writeSnapshot(): Promise<void> {
    const temp = `${this.journalPath}.tmp`;
    const file = await fsp.open(temp, 'w', 0o600);
    let bytes = 0;
    let records = 0;
    try {
      let chunk: string[] = [];
      let chunkLength = 0;
      const add = async (record: JournalRecord): Promise<void> => {
        const line = `${JSON.stringify(record)}\n`;
        chunk.push(line);
        chunkLength += line.length;
        records += 1;
        if (chunkLength >= 1024 * 1024) await flush();
      };
      const flush = async (): Promise<void> => {
        const data = Buffer.from(chunk.join(''));
        chunk = [];
        chunkLength = 0;
        await writeAll(file, data);
        bytes += data.length;
      };
      for (const id of this.finished) {
        const run = this.runs.get(id);
        if (run) await add({ type: 'run', run });
      }
      for (const run of this.unfinishedRuns()) await add({ type: 'run', run });
      this.dedupe.forgetExpired(Date.now());
      for (const [dedupeKey, entry] of this.dedupe) await add({ type: 'dedupe', dedupeKey, dedupeUntil: entry.until, runId: entry.runId });
      await flush();
      if (this.fsync) await file.sync();
    } catch (error) {
      // A partial snapshot would only take space a full disk needs back.
      await file.close().catch(() => undefined);
      await fsp.rm(temp, { force: true });
      throw error;
    }
    await file.close();
    await fsp.rename(temp, this.journalPath);
    // Counted from here: the journal is the snapshot now, even if the directory sync fails.
    this.journalBytes = this.snapshotBytes = bytes;
    this.journalRecords = this.snapshotRecords = records;
    if (this.fsync) await syncDirectory(this.options.stateDir);
  }

  private async deleteOrphanLogs(): Promise<void> {
    const names = await fsp.readdir(this.logDir);
    const orphans = names.filter((name) => name.endsWith('.log') && !this.runs.has(name.slice(0, -'.log'.length)));
    await this.deleteLogs(orphans.map((name) => name.slice(0, -'.log'.length)));
  }

  private async deleteLogs(runIds: string[]): Promise<void> {
    for (const runId of runIds) {
      if (!runIdPattern.test(runId)) continue;
      try {
        await fsp.unlink(this.logPath(runId));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.options.logger.warn({ run: runId, err: (error as Error).message }, 'cannot delete the log of a dropped run');
        }
      }
    }
  }
}

function setOrDelete<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value === undefined) delete target[key];
  else target[key] = value;
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return undefined;
  }
}
