/**
 * The run journal's file: one append-only JSON-lines file in the state directory. Appends that
 * arrive together share one write, synced to the disk before it returns (O_DSYNC: a write and its
 * fdatasync in one trip to the thread pool), which is what lets a single disk sync stand behind
 * thousands of accepted deliveries a second (group commit). It is rewritten whole, as the
 * state it holds, when it has grown (compaction), but not while accepts are pouring in unless it has
 * grown half as much again: a rewrite holds every accept behind it. When a write fails (a full disk, an I/O error)
 * it refuses accepts, holds the records of runs already accepted, retries on a timer and, once a
 * write succeeds, cuts off what the failed write left and goes on.
 */
import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import type { Logger } from 'pino';
import type { SinkHealth } from '../delivery';
import { syncDirectory, writeAll } from './durable-files';
import { readJournalLines } from './journal-lines';
import { type JournalRecord, readRecord, SkippedLines } from './journal-record';
import { JournalWriteError } from './run-errors';

export interface JournalOptions {
  path: string;
  /** The directory the file is in: synced after a rewrite renames the file into it. */
  dir: string;
  logger: Logger;
  /** Each group write synced to the disk before it counts (O_DSYNC). Off trades crash safety for speed. */
  fsync: boolean;
  /** The longest line replay reads; a longer one is skipped unread. */
  maxRecordBytes: number;
  /** Rewrite while running once the file passes this size... */
  compactAfterBytes: number;
  /** ...or this many records. */
  compactAfterRecords: number;
  /**
   * A rewrite that is due waits until no accept has arrived for this long (or the file has grown
   * to COMPACTION_DEFERRED_AT_MOST times what made it due). @default 1000
   */
  compactQuietMs?: number;
  /** Epoch milliseconds: when the last accept arrived, and whether accepts have paused since. @default Date.now */
  now?: () => number;
  /** After a failed write, how long until the journal tries to write again. */
  retryWriteAfterMs: number;
  /** Records on disk, in the order written: called once per batch, before the batch's writers hear of it. */
  written(records: JournalRecord[]): void;
  /** What a rewrite writes: the state the journal stands for, as records. */
  current(): Iterable<JournalRecord>;
}

interface QueuedRecord {
  /** Absent for the newline a retry writes to find out whether the journal takes writes again. */
  record?: JournalRecord;
  /** The record's line, serialized once, as appended: the batch's write encodes them together. */
  line: string;
  /** Told when the record is on disk or refused; the accepts of one batch share one. */
  waiter: Waiter;
}

/** A promise and what settles it. */
interface Waiter {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function newWaiter(): Waiter {
  const waiter = {} as Waiter;
  waiter.promise = new Promise<void>((resolve, reject) => {
    waiter.resolve = resolve;
    waiter.reject = reject;
  });
  return waiter;
}

/** What a retry writes when it has no held record: a newline, which replay passes over. */
const PROBE: QueuedRecord = { line: '\n', waiter: { promise: Promise.resolve(), resolve: () => undefined, reject: () => undefined } };

/**
 * - `open`: records are written as they come.
 * - `failing`: the last write failed; accepts are refused at once, the records of runs already
 *   accepted wait in `held` (unless the journal is stopping), and a retry is due.
 * - `read-only`: a reader's view of another receiver's journal: nothing is written.
 * - `closing`: close() waits for the write under way; nothing new is taken (`afterFailure`: that
 *   write follows a failed one, and cuts off what it left first).
 * - `closed`: the file is closed.
 */
export type JournalState =
  | { name: 'open' }
  | { name: 'failing'; failure: JournalWriteError; since: string; held: QueuedRecord[]; retry: NodeJS.Timeout | undefined }
  | { name: 'read-only' }
  | { name: 'closing'; afterFailure: boolean }
  | { name: 'closed' };

/** What the journal does with the records of runs already accepted while it cannot write: `refuse` once the receiver is stopping. */
export type WhileFailing = 'hold' | 'refuse';

const CLOSED = 'the run store is closed';

/**
 * How far past what made a rewrite due the file may grow while accepts keep it waiting: half as
 * much again. That bounds the file, and the replay at the next start, under any flood.
 */
const COMPACTION_DEFERRED_AT_MOST = 1.5;

/** What a rewrite encodes before each write. */
const REWRITE_CHUNK_BYTES = 1024 * 1024;

export class Journal {
  private state: JournalState;
  private whileFailing: WhileFailing = 'hold';
  private handle: FileHandle | undefined;
  private queue: QueuedRecord[] = [];
  /**
   * The waiter of the accepts in the queue: accepts that go to disk together are answered together,
   * so under a flood they share one promise instead of making one each.
   */
  private queuedAccepts: Waiter | undefined;
  /** The batch being written, if any: the one writer. */
  private writing: Promise<void> | undefined;
  private bytes = 0;
  private records = 0;
  private rewrittenBytes = 0;
  private rewrittenRecords = 0;
  /** When the last accept was appended (options.now()). */
  private lastAcceptAt = Number.NEGATIVE_INFINITY;
  /** A due rewrite, waiting for accepts to pause. */
  private compactionTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: JournalOptions,
    mode: 'append' | 'read-only',
  ) {
    this.state = mode === 'read-only' ? { name: 'read-only' } : { name: 'closed' };
  }

  /** Bytes in the file now (it grows between rewrites). */
  get size(): number {
    return this.bytes;
  }

  get stateName(): JournalState['name'] {
    return this.state.name;
  }

  /**
   * Hands every readable line's record to `apply`, in order. A line that cannot be read (not
   * valid UTF-8, not JSON, not a record, longer than maxRecordBytes) is skipped and counted; a
   * partly written last line (a crash mid-write) is skipped with a warning. Undefined when there
   * is no journal yet. Touches no file.
   */
  async replay(apply: (record: JournalRecord) => void): Promise<SkippedLines | undefined> {
    const skipped = new SkippedLines();
    try {
      for await (const line of readJournalLines(this.options.path, this.options.maxRecordBytes)) {
        const reading = readRecord(line, this.options.maxRecordBytes);
        if (reading === 'blank') continue;
        if (typeof reading !== 'string') {
          apply(reading);
        } else if (line.terminated) {
          skipped.add(line, reading);
        } else {
          this.options.logger.warn(
            { journal: this.options.path, line: line.number, bytes: line.length },
            'run journal ends in a partly written record (the receiver stopped mid-write); skipped',
          );
        }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return skipped;
  }

  /** After replay: the file is rewritten as the current state and opened for appends. */
  async open(): Promise<void> {
    await this.rewrite();
    this.handle = await this.openForAppends();
    this.state = { name: 'open' };
  }

  /**
   * Resolves once the record is on disk (and written() has applied it). While the journal cannot
   * be written, a delivery's accept is refused at once (it was never answered, so it is not ours
   * to keep); a run's record, which belongs to deliveries already accepted, waits until the
   * journal takes writes again (unless stopping() was called).
   */
  append(record: JournalRecord): Promise<void> {
    const state = this.state;
    if (state.name !== 'open' && state.name !== 'failing') return Promise.reject(new Error(CLOSED));
    if (state.name === 'failing' && (record.type === 'accept' || this.whileFailing === 'refuse')) return Promise.reject(state.failure);
    const line = `${JSON.stringify(record)}\n`;
    if (state.name === 'failing') {
      const waiter = newWaiter();
      state.held.push({ record, line, waiter });
      return waiter.promise;
    }
    let waiter: Waiter;
    if (record.type === 'accept') {
      this.lastAcceptAt = this.now();
      waiter = this.queuedAccepts ??= newWaiter();
    } else {
      waiter = newWaiter();
    }
    this.queue.push({ record, line, waiter });
    this.startWriting();
    return waiter.promise;
  }

  health(): SinkHealth {
    if (this.state.name !== 'failing') return { status: 'ok' };
    return { status: 'degraded', reason: this.state.failure.message, since: this.state.since };
  }

  /**
   * From now on, records the journal cannot take are refused at once instead of waiting for it
   * (the receiver is stopping and must not wait for a full disk); those waiting are refused now.
   */
  stopping(): void {
    this.whileFailing = 'refuse';
    if (this.state.name === 'failing') settleAll(this.state.held.splice(0), this.state.failure);
  }

  /** Writes what is queued and closes the file; later records are refused. */
  async close(): Promise<void> {
    const before = this.state;
    if (before.name === 'read-only' || before.name === 'closed') return;
    this.state = { name: 'closing', afterFailure: before.name === 'failing' };
    clearTimeout(this.compactionTimer);
    this.compactionTimer = undefined;
    if (before.name === 'failing') {
      clearTimeout(before.retry);
      settleAll(before.held, new Error(CLOSED));
    }
    while (this.writing) await this.writing;
    await this.handle?.close();
    this.handle = undefined;
    this.state = { name: 'closed' };
  }

  private startWriting(): void {
    // setImmediate, not a microtask: requests read in the same turn of the event loop join the batch.
    this.writing ??= new Promise<void>((done) => setImmediate(() => void this.writeQueued().finally(done)));
  }

  private async writeQueued(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        this.queuedAccepts = undefined;
        let length = 0;
        try {
          if (this.state.name === 'failing' || (this.state.name === 'closing' && this.state.afterFailure)) await this.repair();
          if (!this.handle) throw new Error('the journal is not open');
          const data = linesOf(batch);
          length = data.length;
          await writeAll(this.handle, data);
        } catch (error) {
          this.fail(error as Error, batch);
          return;
        }
        this.bytes += length;
        if (this.state.name === 'failing') this.recovered(this.state);
        else if (this.state.name === 'closing') this.state.afterFailure = false;
        const records = batch.flatMap((queued) => (queued.record ? [queued.record] : []));
        this.records += records.length;
        this.options.written(records);
        settleAll(batch, undefined);
        await this.compactIfDue();
      }
    } finally {
      this.writing = undefined;
    }
  }

  /**
   * A write or sync failed. The batch's accepts are refused: their deliveries get 5xx and their
   * senders retry. The runs' own records are held. From here until a retry succeeds, accepts are
   * refused at once.
   */
  private fail(cause: Error, batch: QueuedRecord[]): void {
    const failure = new JournalWriteError(cause);
    const before = this.state;
    const closing = before.name === 'closing';
    if (closing) before.afterFailure = true;
    let state: Extract<JournalState, { name: 'failing' }> | undefined;
    if (before.name === 'failing') {
      this.options.logger.debug({ journal: this.options.path, err: cause.message }, 'run journal still cannot be written');
      state = { ...before, failure };
    } else if (!closing) {
      this.options.logger.error(
        { journal: this.options.path, err: cause.message, retryMs: this.options.retryWriteAfterMs },
        'run journal write failed; refusing deliveries until a write succeeds again',
      );
      state = { name: 'failing', failure, since: new Date().toISOString(), held: [], retry: undefined };
    }
    for (const queued of [...batch, ...this.queue]) {
      if (!queued.record) continue;
      if (queued.record.type === 'accept' || this.whileFailing === 'refuse') queued.waiter.reject(failure);
      else if (state) state.held.push(queued);
      else queued.waiter.reject(new Error(CLOSED));
    }
    this.queue = [];
    this.queuedAccepts = undefined;
    if (!state) return;
    this.state = state;
    state.retry ??= this.retryLater();
  }

  private retryLater(): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const state = this.state;
      if (state.name !== 'failing') return;
      state.retry = undefined;
      if (this.writing) {
        state.retry = this.retryLater();
        return;
      }
      // The held records, or a newline to find out whether writes succeed.
      this.queue = state.held.length > 0 ? state.held.splice(0) : [PROBE];
      this.startWriting();
    }, this.options.retryWriteAfterMs);
    // A retry alone does not keep the process running.
    timer.unref();
    return timer;
  }

  /**
   * Before writing after a failure: the failed write may have left part of a batch after the last
   * record written whole. Cut it off (those records were refused, never answered), so that what
   * follows does not bury a partial line mid-file.
   */
  private async repair(): Promise<void> {
    this.handle ??= await this.openForAppends();
    await this.handle.truncate(this.bytes);
  }

  private recovered(failing: Extract<JournalState, { name: 'failing' }>): void {
    this.options.logger.info({ journal: this.options.path, since: failing.since }, 'run journal takes writes again; accepting deliveries');
    clearTimeout(failing.retry);
    this.state = { name: 'open' };
    // Held while a retry was being written: they go next.
    this.queue.push(...failing.held);
  }

  /** The file, opened for appends that are on the disk once written (with fsync). */
  private openForAppends(): Promise<FileHandle> {
    const { O_APPEND, O_CREAT, O_DSYNC, O_WRONLY } = fsConstants;
    return fsp.open(this.options.path, O_WRONLY | O_APPEND | O_CREAT | (this.options.fsync ? O_DSYNC : 0), 0o600);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * How far the file has grown towards a rewrite: past 1 when it has grown well past its last
   * rewrite (measured so, a large state does not rewrite every batch).
   */
  private growth(): number {
    return Math.max(
      this.bytes / Math.max(this.options.compactAfterBytes, 2 * this.rewrittenBytes),
      this.records / Math.max(this.options.compactAfterRecords, 2 * this.rewrittenRecords),
    );
  }

  /**
   * A rewrite when the file has grown, once accepts have paused: a rewrite of a large state (every
   * remembered delivery id) holds every accept behind it, so during a flood it waits, unless the
   * file has grown past COMPACTION_DEFERRED_AT_MOST times what made it due.
   */
  private async compactIfDue(): Promise<void> {
    const growth = this.growth();
    if (growth <= 1) return;
    const quietMs = this.options.compactQuietMs ?? 1000;
    const sinceAccept = this.now() - this.lastAcceptAt;
    if (sinceAccept < quietMs && growth <= COMPACTION_DEFERRED_AT_MOST) {
      this.compactWhenQuiet(quietMs - sinceAccept);
      return;
    }
    await this.compact();
  }

  /** Looks again once accepts may have paused; the writer, if it is busy then, looks after its batch. */
  private compactWhenQuiet(afterMs: number): void {
    if (this.compactionTimer) return;
    this.compactionTimer = setTimeout(
      () => {
        this.compactionTimer = undefined;
        if (this.state.name !== 'open' || this.writing) return;
        this.writing = this.compactIfDue().finally(() => {
          this.writing = undefined;
          if (this.queue.length > 0) this.startWriting();
        });
      },
      Math.max(1, afterMs),
    );
    // A rewrite alone does not keep the process running.
    this.compactionTimer.unref();
  }

  private async compact(): Promise<void> {
    try {
      await this.handle?.close();
      this.handle = undefined;
      await this.rewrite();
    } catch (error) {
      this.options.logger.error({ journal: this.options.path, err: (error as Error).message }, 'run journal compaction failed');
      // Try again only after as much growth again, not on every batch.
      this.rewrittenBytes = this.bytes;
      this.rewrittenRecords = this.records;
    }
    try {
      this.handle ??= await this.openForAppends();
    } catch (error) {
      this.fail(error as Error, []);
    }
  }

  /**
   * Rewrites the file as current(). Temp file, fsync, rename, fsync of the directory: a crash
   * leaves either the old journal or the new one.
   */
  private async rewrite(): Promise<void> {
    const temp = `${this.options.path}.tmp`;
    const file = await fsp.open(temp, 'w', 0o600);
    let bytes = 0;
    let records = 0;
    try {
      // Lines are encoded into one buffer, written and used again: a rewrite of a large state (every
      // remembered delivery id) leaves no megabyte strings or buffers behind for the collector.
      const chunk = Buffer.allocUnsafe(REWRITE_CHUNK_BYTES);
      let used = 0;
      const write = async (data: Buffer): Promise<void> => {
        await writeAll(file, data);
        bytes += data.length;
      };
      for (const record of this.options.current()) {
        const line = `${JSON.stringify(record)}\n`;
        records += 1;
        // A UTF-16 unit is at most 3 bytes of UTF-8: a line that might not fit goes after a write.
        const most = line.length * 3;
        if (used + most > chunk.length && used > 0) {
          await write(chunk.subarray(0, used));
          used = 0;
        }
        if (most > chunk.length) await write(Buffer.from(line));
        else used += chunk.write(line, used);
      }
      if (used > 0) await write(chunk.subarray(0, used));
      if (this.options.fsync) await file.sync();
    } catch (error) {
      // A partial rewrite would only take space a full disk needs back.
      await file.close().catch(() => undefined);
      await fsp.rm(temp, { force: true });
      throw error;
    }
    await file.close();
    await fsp.rename(temp, this.options.path);
    // Counted from here: the journal is the rewrite now, even if the directory sync fails.
    this.bytes = this.rewrittenBytes = bytes;
    this.records = this.rewrittenRecords = records;
    if (this.options.fsync) await syncDirectory(this.options.dir);
  }
}

/** A batch's lines, encoded together for one write (however many writes that takes): never serialized again. */
function linesOf(batch: QueuedRecord[]): Buffer {
  let text = '';
  for (const queued of batch) text += queued.line;
  return Buffer.from(text);
}

/** Every waiter of `queued` told (a waiter the accepts share is told once). */
function settleAll(queued: QueuedRecord[], error: Error | undefined): void {
  let last: Waiter | undefined;
  for (const { waiter } of queued) {
    if (waiter === last) continue;
    last = waiter;
    if (error) waiter.reject(error);
    else waiter.resolve();
  }
}
