/**
 * What has run and what is running, for people: public run records and their logs, read from the
 * store (what the admin listener and `triggler runs` show).
 */
import type { BoundedRunLog, LiveRunLog } from './run-log';
import { publicRecord, type RunRecord } from './run-record';
import type { RunStore } from './run-store';

export class RunReader {
  constructor(
    private readonly store: RunStore,
    /** The log of a run that is running now, while its output is still coming. */
    private readonly liveLogOf: (runId: string) => BoundedRunLog | undefined,
  ) {}

  /** Newest first. */
  runs(limit?: number): RunRecord[] {
    const all = this.store.allRuns();
    return (limit === undefined ? all : all.slice(0, Math.max(0, limit))).map(publicRecord);
  }

  run(id: string): RunRecord | undefined {
    const run = this.store.run(id);
    return run ? publicRecord(run) : undefined;
  }

  /** The log of a run whose output is still coming; undefined before it starts and once it has ended. */
  liveLog(id: string): LiveRunLog | undefined {
    return this.liveLogOf(id);
  }

  /** The run's output; for a running run, what it has written so far. */
  async runLog(id: string): Promise<Buffer | undefined> {
    const log = this.liveLogOf(id);
    if (log) return log.snapshot();
    return this.store.readLog(id);
  }
}
