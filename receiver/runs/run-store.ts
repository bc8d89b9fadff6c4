/**
 * The durable record of deliveries and runs. The in-memory state (./run-state) is only ever what
 * the journal (./journal) says: a record is applied after it is on disk, by the same function that
 * replays the journal at start-up. The store owns the state directory's lock, the runs' log files
 * and the minting of run ids.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { Journal } from './journal';
import type { AcceptRecord, FinishRecord, JournalRecord } from './journal-record';
import { JournalWriteError } from './run-errors';
import { isRunId, RunIds } from './run-ids';
import { type FinalStatus, RUN_LISTS_LIMIT, type StoredRun } from './run-record';
import { applyRecord, type DedupeEntry, emptyRunState, type RunState, runsNewestFirst, stateRecords, unfinishedRuns } from './run-state';
import { StateLock } from './state-lock';

export type { AcceptRecord, DedupeEntry, FinalStatus, FinishRecord, JournalRecord, StoredRun };
export { JournalWriteError, RUN_LISTS_LIMIT };

export const JOURNAL_FILE = 'journal.jsonl';
const LOG_DIR = 'runs';

export interface RunStoreOptions {
  stateDir: string;
  /** Finished runs kept (in memory and in the journal); older ones and their logs are deleted. */
  keepRuns: number;
  logger: Logger;
  /** Each group write synced to the disk before it counts (O_DSYNC). Off trades crash safety for speed. @default true */
  fsync?: boolean;
  /** Compact while running once the journal passes this size. @default 8 MiB */
  compactAfterBytes?: number;
  /** ...or this many records. @default 50,000 */
  compactAfterRecords?: number;
  /**
   * A compaction that is due waits until no accept has arrived for this long (a rewrite holds the
   * accepts behind it), or until the journal has grown half as much again. @default 1000
   */
  compactQuietMs?: number;
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

/** `since`: when the first write that failed was made (ISO-8601). */
export type JournalHealth = ReturnType<Journal['health']>;

export class RunStore {
  readonly journalPath: string;
  readonly logDir: string;
  /** Run ids, in the order this store makes them. */
  readonly ids = new RunIds();
  private readonly state: RunState;
  private readonly journal: Journal;
  private lastDedupeSweep = Date.now();
  private lock: StateLock | undefined;

  private constructor(
    private readonly options: RunStoreOptions,
    mode: 'append' | 'read-only',
  ) {
    this.journalPath = path.join(options.stateDir, JOURNAL_FILE);
    this.logDir = path.join(options.stateDir, LOG_DIR);
    this.state = emptyRunState(options.keepRuns, options.maxRememberedIds ?? 100_000);
    this.journal = new Journal(
      {
        path: this.journalPath,
        dir: options.stateDir,
        logger: options.logger,
        fsync: options.fsync ?? true,
        maxRecordBytes: options.maxRecordBytes ?? 64 * 1024 * 1024,
        compactAfterBytes: options.compactAfterBytes ?? 8 * 1024 * 1024,
        compactAfterRecords: options.compactAfterRecords ?? 50_000,
        compactQuietMs: options.compactQuietMs ?? 1000,
        retryWriteAfterMs: options.retryWriteAfterMs ?? 1000,
        written: (records) => this.written(records),
        current: () => stateRecords(this.state),
      },
      mode,
    );
  }

  /**
   * Replays the journal, records runs that were running as interrupted, and compacts. A truncated
   * last line (a crash mid-write) is skipped with a warning; unreadable lines elsewhere are skipped
   * and counted in an error, and everything else is kept. The state directory stays locked until
   * close(): while another live process holds it, this throws StateDirLockedError naming that
   * process, before anything is read or written.
   */
  static async open(options: RunStoreOptions): Promise<OpenedStore> {
    const store = new RunStore(options, 'append');
    await fsp.mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    store.lock = StateLock.acquire(options.stateDir);
    try {
      return await store.load();
    } catch (error) {
      await store.journal.close();
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
    const store = new RunStore({ stateDir, keepRuns: Number.MAX_SAFE_INTEGER, logger, fsync: false }, 'read-only');
    await store.journal.replay((record) => store.apply(record));
    return store;
  }

  /** Bytes in the journal file now (it grows between compactions). */
  get journalSize(): number {
    return this.journal.size;
  }

  private async load(): Promise<OpenedStore> {
    await fsp.mkdir(this.logDir, { recursive: true, mode: 0o700 });
    const intact = await this.replay();
    this.logForgottenEarly();
    const now = new Date().toISOString();
    const interrupted: StoredRun[] = [];
    for (const run of [...this.state.runs.values()]) {
      if (run.status !== 'running') continue;
      const logBytes = await fileSize(this.logPath(run.id));
      this.apply({
        type: 'finish',
        at: now,
        runId: run.id,
        status: 'interrupted',
        error: 'receiver stopped while it ran',
        ...(logBytes === undefined ? {} : { logBytes }),
      });
      interrupted.push(run);
    }
    await this.journal.open();
    // Logs of runs the journal no longer names (dropped before a crash could delete them). When lines
    // were skipped, a log's run may have been on one of them: keep the logs for whoever looks into it.
    if (intact) await this.deleteOrphanLogs();
    return { store: this, interrupted };
  }

  logPath(runId: string): string {
    if (!isRunId(runId)) throw new Error(`run id "${runId}" is not a run id`);
    return path.join(this.logDir, `${runId}.log`);
  }

  run(id: string): StoredRun | undefined {
    return this.state.runs.get(id);
  }

  /** Newest first (run ids sort by creation). */
  allRuns(): StoredRun[] {
    return runsNewestFirst(this.state);
  }

  /** Pending and running runs, oldest first. */
  unfinishedRuns(): StoredRun[] {
    return unfinishedRuns(this.state);
  }

  dedupeEntry(key: string, now = Date.now()): DedupeEntry | undefined {
    return this.state.dedupe.get(key, now);
  }

  async readLog(runId: string): Promise<Buffer | undefined> {
    if (!this.state.runs.has(runId)) return undefined;
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
    return this.journal.append(record);
  }

  /** Whether the journal takes writes: what a health check reports. */
  health(): JournalHealth {
    return this.journal.health();
  }

  /**
   * From now on, records the journal cannot take are refused at once instead of waiting for it
   * (the receiver is stopping and must not wait for a full disk); those waiting are refused now.
   */
  refuseWhileUnwritable(): void {
    this.journal.stopping();
  }

  /** Writes what is queued and closes the journal; later records are refused. */
  async close(): Promise<void> {
    await this.journal.close();
    this.lock?.release();
  }

  /** Records the journal has written: applied, the logs of runs dropped past keepRuns deleted, expired keys swept now and then. */
  private written(records: JournalRecord[]): void {
    const dropped: string[] = [];
    for (const record of records) dropped.push(...this.apply(record));
    if (dropped.length > 0) void this.deleteLogs(dropped);
    const now = Date.now();
    if (now - this.lastDedupeSweep > 60_000) {
      this.lastDedupeSweep = now;
      this.state.dedupe.forgetExpired(now);
      this.logForgottenEarly();
    }
  }

  /** Applies one record to the state; returns the ids of runs dropped past keepRuns. */
  private apply(record: JournalRecord): string[] {
    const applied = applyRecord(this.state, record);
    if (applied.unknownRun !== undefined) {
      if (record.type === 'rerun')
        this.options.logger.warn({ run: record.runId, of: record.of }, 'run journal reruns an unknown run; record ignored');
      else this.options.logger.warn({ run: applied.unknownRun, record: record.type }, 'run journal names an unknown run; record ignored');
    }
    return applied.dropped;
  }

  private logForgottenEarly(): void {
    const forgotten = this.state.dedupe.takeForgottenEarly();
    if (forgotten === 0) return;
    this.options.logger.warn(
      { forgotten, maxRememberedIds: this.state.dedupe.limit },
      'more delivery ids than the store remembers: the ones expiring soonest were forgotten early, and a repeat of one of them would run again',
    );
  }

  /**
   * Replays the journal through apply(). Returns false when something was skipped: the journal as
   * it was is then set aside for whoever looks into it.
   */
  private async replay(): Promise<boolean> {
    const dropped: string[] = [];
    const skipped = await this.journal.replay((record) => dropped.push(...this.apply(record)));
    if (!skipped) return true;
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

  private async deleteOrphanLogs(): Promise<void> {
    const names = await fsp.readdir(this.logDir);
    const orphans = names.filter((name) => name.endsWith('.log') && !this.state.runs.has(name.slice(0, -'.log'.length)));
    await this.deleteLogs(orphans.map((name) => name.slice(0, -'.log'.length)));
  }

  private async deleteLogs(runIds: string[]): Promise<void> {
    for (const runId of runIds) {
      if (!isRunId(runId)) continue;
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

async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return undefined;
  }
}
