/**
 * One run of a trigger with `deploy`, in two halves. Prepare: fetch the pushed commit into the
 * mirror, lay it out as a new release, link the shared paths, run the command there (or reuse the
 * commit's good release). Switch: `current` to it, activate, check health; on a failed activate or
 * health check switch back and activate the release before (`rolled-back`). A push runs both; a
 * `prepare` or `switch` run (asked for through the admin listener, one step of a fleet's rollout)
 * runs one; a rollback run switches to an older release.
 *
 * Every step is a command like the trigger's own, run by DeploySteps (`deploy-steps.ts`: one
 * deadline, the release variables, a log line per step); the fetch is in `fetch.ts`. This module
 * decides the order and what a step's result means.
 */
import { deployPathConflict } from '../../config/deploy-paths';
import type { DeployConfig } from '../../config/deploy-schema';
import { type Outcome, runAsOf } from '../command';
import type { RunDeploy } from '../run-record';
import { type DeployOutcome, type DeployRequest, DeploySteps, OK, failed, secondsUntil } from './deploy-steps';
import { fetchRunCommit, withCommitText } from './fetch';
import { gitIn, requestedCommit } from './git';
import { cannotBecomeCurrent, goodReleaseOf, mayBecomeCurrent, ReleaseLayout, releaseId, rollbackTarget } from './release-layout';
import { linkSharedPaths } from './shared-paths';

/** A release of the run's commit whose command succeeded, ready to become current. */
interface Prepared {
  id: string;
  record: RunDeploy;
}

export type { DeployOutcome, DeployRequest };

export interface RunningDeploy {
  stop(): void;
  readonly outcome: Promise<DeployOutcome>;
}

/** Starts a deploy run (or a rollback run, when the run's action says so). */
export function runDeploy(request: DeployRequest): RunningDeploy {
  const deployment = new Deployment(request);
  return {
    stop: () => deployment.stop(),
    outcome: deployment.execute().catch((error: Error): DeployOutcome => ({ status: 'failed', error: `deploy error: ${error.message}` })),
  };
}

class Deployment {
  private readonly layout: ReleaseLayout;
  private readonly deploy: DeployConfig;
  private readonly steps: DeploySteps;

  constructor(private readonly request: DeployRequest) {
    this.deploy = request.deploy;
    this.layout = new ReleaseLayout(request.deploy.path);
    this.steps = new DeploySteps(request, this.layout);
  }

  stop(): void {
    this.steps.stop();
  }

  async execute(): Promise<DeployOutcome> {
    return withCommitText(await this.perform(), this.layout, this.steps);
  }

  private async perform(): Promise<DeployOutcome> {
    // The config was checked when it loaded; a symlink made since can still join two triggers' paths.
    const conflict = deployPathConflict({ ...this.request.config, deploy: this.deploy }, this.request.triggers);
    if (conflict) return failed(conflict);
    const runAs = await runAsOf(this.request.config);
    if (runAs && 'error' in runAs) return failed(runAs.error);
    this.steps.runAs = runAs;
    await this.layout.prepare(runAs?.account);
    await this.recover();
    const action = this.request.run.action;
    switch (action?.type) {
      case 'recover':
        return OK;
      case 'rollback':
        return this.rollback(action.to);
      case 'switch':
        return this.switchCommit();
      case 'prepare': {
        const prepared = await this.prepare(false);
        return 'id' in prepared ? { ...OK, deploy: prepared.record } : prepared;
      }
      default: {
        const prepared = await this.prepare(action?.type === 'rebuild');
        return 'id' in prepared ? this.switchTo(prepared.id, prepared.record.previousRelease, prepared.record) : prepared;
      }
    }
  }

  /**
   * The first half of a deploy: the run's exact commit as a release whose command succeeded. A
   * commit that has such a release already reuses it (nothing fetched or built when the run names
   * the whole commit), so a re-run, a redelivery or a retried prepare never builds a copy;
   * `rebuild` builds a new one all the same.
   */
  private async prepare(rebuild: boolean): Promise<Prepared | DeployOutcome> {
    const previous = await this.layout.current();
    const reuse = async (commit: string): Promise<Prepared | undefined> => {
      const good = rebuild ? undefined : goodReleaseOf(await this.layout.list(), commit);
      if (!good) return undefined;
      this.steps.commit = good.commit;
      this.steps.note(
        `release ${good.id} of commit ${good.commit.slice(0, 12)} is ${good.current ? 'current' : 'built'} already: reused, nothing built (triggler rerun --rebuild builds it again)`,
      );
      const before = good.current ? undefined : previous;
      this.steps.useRelease(good.id, before);
      return { id: good.id, record: { release: good.id, commit: good.commit, ...(before ? { previousRelease: before } : {}) } };
    };
    const wanted = requestedCommit(this.request.run.commit);
    const known = wanted === undefined || wanted.length < 40 ? undefined : await reuse(wanted);
    if (known) return known;
    const fetched = await fetchRunCommit(this.request, this.layout, this.steps);
    if (typeof fetched !== 'string') return fetched;
    this.steps.commit = fetched;
    const reused = await reuse(fetched);
    if (reused) return reused;
    const id = releaseId(new Date(), fetched);
    const record: RunDeploy = { release: id, commit: fetched, ...(previous ? { previousRelease: previous } : {}) };
    const releaseDir = this.layout.releaseDir(id);
    await this.layout.update((manifest) =>
      manifest.releases.push({ id, commit: fetched, runId: this.request.run.id, createdAt: new Date().toISOString(), state: 'building' }),
    );
    this.steps.useRelease(id, previous);
    const laidOut = await this.steps.run(
      'lay out release',
      gitIn(this.layout.mirror, 'worktree', 'add', '--detach', '--quiet', releaseDir, fetched),
      this.deploy.path,
    );
    if (laidOut.status !== 'succeeded') return this.buildFailed(id, laidOut, record);
    const linked = await this.linkShared(releaseDir);
    if (linked) return this.buildFailed(id, linked, record);
    const built = await this.steps.run('command', this.request.config.command, releaseDir);
    if (built.status !== 'succeeded') return this.buildFailed(id, built, record);
    await this.layout.setState(id, 'built');
    return { id, record };
  }

  /** The second half on its own: the newest good release of the run's commit becomes current. */
  private async switchCommit(): Promise<DeployOutcome> {
    const wanted = requestedCommit(this.request.run.commit);
    if (wanted === undefined) return failed('a switch needs the commit whose release it makes current');
    const releases = await this.layout.list();
    const ofCommit = releases.filter((release) => release.commit.startsWith(wanted));
    const good = ofCommit.filter(mayBecomeCurrent).at(-1);
    if (!good)
      return failed(
        ofCommit.length > 0 ? cannotBecomeCurrent(ofCommit.at(-1)!) : `no release of commit ${wanted} to switch to: prepare it first`,
      );
    this.steps.commit = good.commit;
    const current = releases.find((release) => release.current)?.id;
    const from = current === good.id ? undefined : current;
    this.steps.useRelease(good.id, from);
    return this.switchTo(good.id, from, { release: good.id, commit: good.commit, ...(from ? { previousRelease: from } : {}) });
  }

  private async rollback(to: string | undefined): Promise<DeployOutcome> {
    const releases = await this.layout.list();
    const target = rollbackTarget(releases, to);
    if ('error' in target) return failed(target.error);
    const current = releases.find((release) => release.current)?.id;
    if (target.id === current) return failed(`release ${target.id} is current already`);
    const commit = releases.find((release) => release.id === target.id)?.commit ?? '';
    this.steps.commit = commit;
    this.steps.note(`rollback: from ${current ?? 'no release'} to ${target.id}`);
    this.steps.useRelease(target.id, current);
    return this.switchTo(target.id, current, { release: target.id, commit, ...(current ? { previousRelease: current } : {}) });
  }

  /** current -> the release, then activate and the health check; on failure, back to `from`. */
  private async switchTo(id: string, from: string | undefined, record: RunDeploy): Promise<DeployOutcome> {
    const release = (await this.layout.list()).find((listed) => listed.id === id);
    if (!release || !mayBecomeCurrent(release)) return failed(release ? cannotBecomeCurrent(release) : `release ${id} is not on disk`);
    if (release.current) {
      // A commit deployed again (a re-run, a retried switch): it is live, and switching to itself changes nothing.
      this.steps.note(`current is releases/${id} already: nothing to switch`);
      return { ...OK, deploy: record };
    }
    await this.layout.update((manifest) => (manifest.switching = { to: id, ...(from ? { from } : {}) }));
    await this.layout.switchCurrent(id);
    this.steps.note(`current -> releases/${id}`);
    const releaseDir = this.layout.releaseDir(id);
    const activated = this.deploy.activate === undefined ? OK : await this.steps.run('activate', this.deploy.activate, releaseDir);
    const checked = activated.status === 'succeeded' ? await this.healthCheck(releaseDir) : activated;
    // A stopping receiver runs nothing more: the next run of this trigger finishes the switch back.
    if (checked.status === 'interrupted') return { ...checked, deploy: record };
    if (checked.status === 'succeeded') {
      await this.layout.update((manifest) => {
        const entry = manifest.releases.find((release) => release.id === id);
        if (entry) entry.state = 'live';
        delete manifest.switching;
      });
      const rollbackTo = rollbackTarget(await this.layout.list(), undefined);
      const removed = await this.layout.prune(this.deploy.keepReleases, [id, from, 'id' in rollbackTo ? rollbackTo.id : undefined]);
      if (removed.length > 0) {
        this.steps.note(`removed ${removed.length} old release${removed.length === 1 ? '' : 's'}: ${removed.join(', ')}`);
        await this.steps.run('forget removed releases', gitIn(this.layout.mirror, 'worktree', 'prune'), this.deploy.path, {
          timeoutSeconds: this.request.config.timeoutSeconds,
        });
      }
      return { ...OK, deploy: record };
    }
    const failedStep = activated.status === 'succeeded' ? 'health check' : 'activate';
    const back = await this.switchBack(id, from);
    return {
      status: 'rolled-back',
      exitCode: checked.exitCode ?? null,
      signal: checked.signal ?? null,
      error: `${failedStep} failed (${checked.error ?? checked.status}); ${back}`,
      deploy: record,
    };
  }

  /** Points current back at `from` (or at nothing, after a first deploy) and activates it. */
  private async switchBack(id: string, from: string | undefined): Promise<string> {
    await this.layout.switchCurrent(from);
    this.steps.note(from ? `current -> releases/${from} (back)` : 'current removed (there was no release before)');
    let result = from ? `current is back at ${from}` : 'current is removed (no release before this one)';
    if (from && this.deploy.activate !== undefined) {
      this.steps.useRelease(from, id);
      const again = await this.steps.run('activate the release before', this.deploy.activate, this.layout.releaseDir(from), {
        timeoutSeconds: this.request.config.timeoutSeconds,
      });
      if (again.status !== 'succeeded') result += `, but activating it failed too (${again.error ?? again.status})`;
    }
    await this.layout.update((manifest) => {
      const entry = manifest.releases.find((release) => release.id === id);
      if (entry && entry.state !== 'live') entry.state = 'rolled-back';
      delete manifest.switching;
    });
    return result;
  }

  private async healthCheck(releaseDir: string): Promise<Outcome> {
    const check = this.deploy.healthCheck;
    if (!check) return OK;
    const ownDeadline = Date.now() + check.timeoutSeconds * 1000;
    const deadline = Math.min(ownDeadline, this.steps.deadline);
    const limit =
      deadline === ownDeadline
        ? `it did not pass within ${check.timeoutSeconds}s`
        : `it did not pass before the deploy's timeoutSeconds (${this.request.config.timeoutSeconds}s) ran out`;
    for (let attempt = 1; ; attempt += 1) {
      // Against its own timeout an attempt gets at least a second; against the deploy's, what is left.
      const timeoutSeconds = deadline === ownDeadline ? Math.max(1, Math.ceil((deadline - Date.now()) / 1000)) : secondsUntil(deadline);
      const outcome = await this.steps.run(`health check ${attempt}`, check.command, releaseDir, { timeoutSeconds });
      if (outcome.status === 'succeeded' || outcome.status === 'interrupted') return outcome;
      if (Date.now() + check.intervalSeconds * 1000 >= deadline) {
        return {
          ...outcome,
          status: 'failed',
          error: `${limit} (${attempt} attempt${attempt === 1 ? '' : 's'}; the last: ${outcome.error ?? outcome.status})`,
        };
      }
      await this.steps.pause(check.intervalSeconds * 1000);
      if (this.steps.stopped) return { status: 'interrupted', error: 'receiver stopped during the health check' };
    }
  }

  /**
   * What an earlier run left when the receiver died under it: a release still `building` never
   * finished; a switch not through activate and its health check is undone, so an interrupted
   * release never stays current.
   */
  private async recover(): Promise<void> {
    const manifest = await this.layout.manifest();
    const unfinished = manifest.releases.filter((release) => release.state === 'building').map((release) => release.id);
    const switching = manifest.switching;
    if (unfinished.length === 0 && !switching) return;
    if (unfinished.length > 0) {
      this.steps.note(
        `release${unfinished.length === 1 ? '' : 's'} ${unfinished.join(', ')} never finished (the receiver stopped): marked interrupted`,
      );
      await this.layout.update((m) => {
        for (const release of m.releases) if (release.state === 'building') release.state = 'interrupted';
      });
    }
    if (switching && (await this.layout.current()) === switching.to) {
      this.steps.note(`an earlier run switched to ${switching.to} but never finished its checks: switching back`);
      await this.switchBack(switching.to, switching.from);
    } else if (switching) {
      await this.layout.update((m) => delete m.switching);
    }
  }

  private async buildFailed(id: string, outcome: Outcome, record: RunDeploy): Promise<DeployOutcome> {
    if (outcome.status !== 'interrupted') await this.layout.setState(id, 'failed');
    this.steps.note('current is unchanged');
    return { ...outcome, deploy: record };
  }

  /** Links the trigger's shared paths into a new release; an outcome only when that failed. */
  private async linkShared(releaseDir: string): Promise<Outcome | undefined> {
    const shared = this.deploy.shared ?? [];
    if (shared.length === 0) return undefined;
    try {
      await linkSharedPaths(this.deploy.path, releaseDir, shared, {
        owner: this.steps.runAs && 'account' in this.steps.runAs ? this.steps.runAs.account : undefined,
        note: (text) => this.steps.note(text),
      });
      return undefined;
    } catch (error) {
      return failed(`shared paths: ${(error as Error).message}`);
    }
  }
}
