/**
 * What has run and what is running, for people: public run records and their logs, read from the
 * store (what the admin listener and `triggler runs` show), and where each deploy trigger stands
 * (its current release and the one a rollback would return to, read from its deploy path).
 */
import type { DeployingTrigger } from '../config/deploy-paths';
import { type DescribedRelease, describeReleases, ReleaseLayout } from './deploy/release-layout';
import type { BoundedRunLog, LiveRunLog } from './run-log';
import { publicRecord, type RunRecord } from './run-record';
import type { RunStore } from './run-store';

export class RunReader {
  constructor(
    private readonly store: RunStore,
    /** The log of a run that is running now, while its output is still coming. */
    private readonly liveLogOf: (runId: string) => BoundedRunLog | undefined,
    /** The triggers configured now. @default none: a reader of a state directory alone knows no deploy path */
    private readonly configuredTriggers: () => readonly DeployingTrigger[] = () => [],
  ) {}

  /**
   * Each deploy trigger's current release and `previous` (where a plain rollback goes), as
   * `triggler releases` reads them from disk; a deploy path that cannot be read is left out.
   */
  async releases(): Promise<TriggerReleases[]> {
    const deploying = this.configuredTriggers().filter((trigger) => trigger.deploy);
    const read = await Promise.all(
      deploying.map(async ({ repository, branch, deploy }) => {
        try {
          const described = describeReleases(await new ReleaseLayout(deploy!.path).list());
          const current = described.find((release) => release.status === 'current');
          const previous = described.find((release) => release.status === 'previous');
          return [{ repository, branch, ...(current ? { current } : {}), ...(previous ? { previous } : {}) }];
        } catch {
          return [];
        }
      }),
    );
    return read.flat();
  }

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

/** Where a deploy trigger stands: the release `current` points at, and the one a plain rollback returns to. */
export interface TriggerReleases {
  repository: string;
  branch: string;
  current?: DescribedRelease;
  previous?: DescribedRelease;
}
