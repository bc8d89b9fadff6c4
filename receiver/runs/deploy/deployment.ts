/**
 * One run of a trigger with `deploy`, in two halves. Prepare: fetch the pushed commit into the
 * mirror, lay it out as a new release, link the shared paths, run the command there (or reuse the
 * commit's good release). Switch: `current` to it, activate, check health; on a failed activate or
 * health check switch back and activate the release before (`rolled-back`). A push runs both; a
 * `prepare` or `switch` run (asked for through the admin listener, one step of a fleet's rollout)
 * runs one; a rollback run switches to an older release.
 *
 * Every step is a command like the trigger's own, started by runCommand (its process group,
 * timeout, stop, output into the run's log); this module decides the order and what a step's
 * result means. The log shows each step with its time and result.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { type DeployingTrigger, deployPathConflict } from '../../config/deploy-paths';
import type { DeployConfig } from '../../config/deploy-schema';
import type { TriggerConfig } from '../../config/schema';
import { type CommandRequest, type Outcome, type RunAs, type RunningCommand, runAsOf, runCommand } from '../command';
import type { RunDeploy } from '../run-record';
import { commandForLog, fetchHeadCommit, gitIn, requestedCommit } from './git';
import { cannotBecomeCurrent, goodReleaseOf, mayBecomeCurrent, ReleaseLayout, releaseId, rollbackTarget } from './release-layout';
import { linkSharedPaths } from './shared-paths';
import { type SecretLookup, type SshAccess, prepareSshAccess } from './ssh-access';

export interface DeployOutcome extends Outcome {
  deploy?: RunDeploy;
}

/** A release of the run's commit whose command succeeded, ready to become current. */
interface Prepared {
  id: string;
  record: RunDeploy;
}

export interface DeployRequest extends CommandRequest {
  deploy: DeployConfig;
  /** Where a fetch's deploy key and known_hosts are written, for that fetch only. */
  stateDir: string;
  /** The deploy key stored under `deploy.sshKey` (the token file, then SSM). */
  secretNamed: SecretLookup;
  /** Every trigger of the config in use: none may deploy into this one's directory. */
  triggers: readonly DeployingTrigger[];
}

export interface RunningDeploy {
  stop(): void;
  readonly outcome: Promise<DeployOutcome>;
}

type Command = TriggerConfig['command'];

const OK: Outcome = { status: 'succeeded', exitCode: 0, signal: null };

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
  private stopped = false;
  private step: RunningCommand | undefined;
  private wake: (() => void) | undefined;
  /** What the steps see besides the run's variables. */
  private releaseEnv: Record<string, string>;
  /** The account the steps run as, resolved once for them all. */
  private runAs: RunAs;
  /** The commit the steps are told (TRIGGLER_COMMIT): the one deployed, once known. */
  private commit: string;
  /**
   * When the trigger's timeoutSeconds, counted from the start of the run, runs out: one deadline
   * for every step of the deploy together, so a remote that never answers costs the run its
   * timeout once, however many fetches it takes. Switching back after a failed check is repair,
   * and each of its steps has the trigger's timeout of its own.
   */
  private readonly deadline: number;

  constructor(private readonly request: DeployRequest) {
    this.deploy = request.deploy;
    this.layout = new ReleaseLayout(request.deploy.path);
    this.commit = request.run.commit;
    this.deadline = Date.now() + request.config.timeoutSeconds * 1000;
    this.releaseEnv = { TRIGGLER_DEPLOY_PATH: request.deploy.path, TRIGGLER_RELEASE_DIR: '', TRIGGLER_PREVIOUS_RELEASE_DIR: '' };
  }

  stop(): void {
    this.stopped = true;
    this.step?.stop();
    this.wake?.();
  }

  async execute(): Promise<DeployOutcome> {
    // The config was checked when it loaded; a symlink made since can still join two triggers' paths.
    const conflict = deployPathConflict({ ...this.request.config, deploy: this.deploy }, this.request.triggers);
    if (conflict) return this.failed(conflict);
    const runAs = await runAsOf(this.request.config);
    if (runAs && 'error' in runAs) return this.failed(runAs.error);
    this.runAs = runAs;
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
      this.commit = good.commit;
      this.note(
        `release ${good.id} of commit ${good.commit.slice(0, 12)} is ${good.current ? 'current' : 'built'} already: reused, nothing built (triggler rerun --rebuild builds it again)`,
      );
      const before = good.current ? undefined : previous;
      this.useRelease(good.id, before);
      return { id: good.id, record: { release: good.id, commit: good.commit, ...(before ? { previousRelease: before } : {}) } };
    };
    const wanted = requestedCommit(this.request.run.commit);
    const known = wanted === undefined || wanted.length < 40 ? undefined : await reuse(wanted);
    if (known) return known;
    const fetched = await this.fetch();
    if (typeof fetched !== 'string') return fetched;
    this.commit = fetched;
    const reused = await reuse(fetched);
    if (reused) return reused;
    const id = releaseId(new Date(), fetched);
    const record: RunDeploy = { release: id, commit: fetched, ...(previous ? { previousRelease: previous } : {}) };
    const releaseDir = this.layout.releaseDir(id);
    await this.layout.update((manifest) =>
      manifest.releases.push({ id, commit: fetched, runId: this.request.run.id, createdAt: new Date().toISOString(), state: 'building' }),
    );
    this.useRelease(id, previous);
    const laidOut = await this.runStep(
      'lay out release',
      gitIn(this.layout.mirror, 'worktree', 'add', '--detach', '--quiet', releaseDir, fetched),
      this.deploy.path,
    );
    if (laidOut.status !== 'succeeded') return this.buildFailed(id, laidOut, record);
    const linked = await this.linkShared(releaseDir);
    if (linked) return this.buildFailed(id, linked, record);
    const built = await this.runStep('command', this.request.config.command, releaseDir);
    if (built.status !== 'succeeded') return this.buildFailed(id, built, record);
    await this.layout.setState(id, 'built');
    return { id, record };
  }

  /** The second half on its own: the newest good release of the run's commit becomes current. */
  private async switchCommit(): Promise<DeployOutcome> {
    const wanted = requestedCommit(this.request.run.commit);
    if (wanted === undefined) return this.failed('a switch needs the commit whose release it makes current');
    const releases = await this.layout.list();
    const ofCommit = releases.filter((release) => release.commit.startsWith(wanted));
    const good = ofCommit.filter(mayBecomeCurrent).at(-1);
    if (!good)
      return this.failed(
        ofCommit.length > 0 ? cannotBecomeCurrent(ofCommit.at(-1)!) : `no release of commit ${wanted} to switch to: prepare it first`,
      );
    this.commit = good.commit;
    const current = releases.find((release) => release.current)?.id;
    const from = current === good.id ? undefined : current;
    this.useRelease(good.id, from);
    return this.switchTo(good.id, from, { release: good.id, commit: good.commit, ...(from ? { previousRelease: from } : {}) });
  }

  private async rollback(to: string | undefined): Promise<DeployOutcome> {
    const releases = await this.layout.list();
    const target = rollbackTarget(releases, to);
    if ('error' in target) return this.failed(target.error);
    const current = releases.find((release) => release.current)?.id;
    if (target.id === current) return this.failed(`release ${target.id} is current already`);
    const commit = releases.find((release) => release.id === target.id)?.commit ?? '';
    this.commit = commit;
    this.note(`rollback: from ${current ?? 'no release'} to ${target.id}`);
    this.useRelease(target.id, current);
    return this.switchTo(target.id, current, { release: target.id, commit, ...(current ? { previousRelease: current } : {}) });
  }

  /**
   * Fetches the branch into the mirror, then makes sure the wanted commit is there (fetching it by
   * id if the branch has moved past it). Resolves with the commit to deploy.
   */
  private async fetch(): Promise<string | DeployOutcome> {
    const { mirror } = this.layout;
    if (!(await this.layout.mirrorExists())) {
      const created = await this.runStep('create mirror', ['git', 'init', '--bare', '--quiet', mirror], this.deploy.path);
      if (created.status !== 'succeeded') return created;
    }
    if (this.deploy.sshKey !== undefined && this.request.config.user !== undefined && process.getuid?.() === 0) {
      return this.failed(
        `deploy.sshKey cannot be used with user "${this.request.config.user}": the key file is readable by the receiver alone, and git would run as that user`,
      );
    }
    const ssh = await prepareSshAccess(this.deploy, {
      stateDir: this.request.stateDir,
      runId: this.request.run.id,
      secretNamed: this.request.secretNamed,
    });
    if (ssh && 'error' in ssh) return this.failed(ssh.error);
    if (ssh) this.note(ssh.description);
    try {
      return await this.fetchCommit(ssh);
    } finally {
      await ssh?.dispose();
    }
  }

  /** A fetch that did not reach the remote: the run fails, and over ssh the log says how to read why. */
  private cannotFetch(error: string, outcome: Outcome, ssh: SshAccess | undefined): DeployOutcome {
    if (ssh) this.note(ssh.unreachable);
    return this.failed(error, outcome);
  }

  private async fetchCommit(ssh: SshAccess | undefined): Promise<string | DeployOutcome> {
    const fetchEnv = ssh?.env ?? {};
    const { mirror } = this.layout;
    const url = this.deploy.repositoryUrl;
    const branch = this.request.run.branch;
    const fetchArgs = ['fetch', '--no-tags', '--no-recurse-submodules', '--quiet', '--', url];
    const fetched = await this.runStep(
      `fetch ${branch}`,
      gitIn(mirror, ...fetchArgs, `+refs/heads/${branch}:refs/heads/${branch}`),
      this.deploy.path,
      { env: fetchEnv },
    );
    if (endsTheRun(fetched)) return fetched;
    const wanted = requestedCommit(this.request.run.commit);
    if (wanted === undefined) {
      if (fetched.status !== 'succeeded') return this.cannotFetch(`cannot fetch branch ${branch} from ${url}`, fetched, ssh);
      const tip = fetchHeadCommit(await fsp.readFile(path.join(mirror, 'FETCH_HEAD'), 'utf8').catch(() => ''));
      if (!tip) return this.failed(`the fetch of ${branch} from ${url} named no commit`);
      this.note(`no commit in the push: deploying the tip of ${branch}, ${tip}`);
      return tip;
    }
    const has = (): Promise<Outcome> =>
      this.runStep('look for the commit', gitIn(mirror, 'cat-file', '-e', `${wanted}^{commit}`), this.deploy.path);
    let present = await has();
    if (endsTheRun(present)) return present;
    if (present.status !== 'succeeded') {
      const byId = await this.runStep(`fetch ${wanted}`, gitIn(mirror, ...fetchArgs, wanted), this.deploy.path, { env: fetchEnv });
      if (endsTheRun(byId)) return byId;
      present = await has();
      if (endsTheRun(present)) return present;
      // Only a remote that could be read can be said to lack the commit: when neither fetch got
      // through (no access, no such repository, a refused host key), that is what the run says.
      if (present.status !== 'succeeded' && fetched.status !== 'succeeded') {
        return this.cannotFetch(`cannot fetch from ${url} (the log has git's reason); nothing was switched`, byId, ssh);
      }
    }
    if (present.status !== 'succeeded') return this.failed(`the remote ${url} does not have commit ${wanted}; nothing was switched`);
    return wanted;
  }

  /** current -> the release, then activate and the health check; on failure, back to `from`. */
  private async switchTo(id: string, from: string | undefined, record: RunDeploy): Promise<DeployOutcome> {
    const release = (await this.layout.list()).find((listed) => listed.id === id);
    if (!release || !mayBecomeCurrent(release)) return this.failed(release ? cannotBecomeCurrent(release) : `release ${id} is not on disk`);
    if (release.current) {
      // A commit deployed again (a re-run, a retried switch): it is live, and switching to itself changes nothing.
      this.note(`current is releases/${id} already: nothing to switch`);
      return { ...OK, deploy: record };
    }
    await this.layout.update((manifest) => (manifest.switching = { to: id, ...(from ? { from } : {}) }));
    await this.layout.switchCurrent(id);
    this.note(`current -> releases/${id}`);
    const releaseDir = this.layout.releaseDir(id);
    const activated = this.deploy.activate === undefined ? OK : await this.runStep('activate', this.deploy.activate, releaseDir);
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
        this.note(`removed ${removed.length} old release${removed.length === 1 ? '' : 's'}: ${removed.join(', ')}`);
        await this.runStep('forget removed releases', gitIn(this.layout.mirror, 'worktree', 'prune'), this.deploy.path, {
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
    this.note(from ? `current -> releases/${from} (back)` : 'current removed (there was no release before)');
    let result = from ? `current is back at ${from}` : 'current is removed (no release before this one)';
    if (from && this.deploy.activate !== undefined) {
      this.useRelease(from, id);
      const again = await this.runStep('activate the release before', this.deploy.activate, this.layout.releaseDir(from), {
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
    const deadline = Math.min(ownDeadline, this.deadline);
    const limit =
      deadline === ownDeadline
        ? `it did not pass within ${check.timeoutSeconds}s`
        : `it did not pass before the deploy's timeoutSeconds (${this.request.config.timeoutSeconds}s) ran out`;
    for (let attempt = 1; ; attempt += 1) {
      // Against its own timeout an attempt gets at least a second; against the deploy's, what is left.
      const timeoutSeconds = deadline === ownDeadline ? Math.max(1, Math.ceil((deadline - Date.now()) / 1000)) : secondsUntil(deadline);
      const outcome = await this.runStep(`health check ${attempt}`, check.command, releaseDir, { timeoutSeconds });
      if (outcome.status === 'succeeded' || outcome.status === 'interrupted') return outcome;
      if (Date.now() + check.intervalSeconds * 1000 >= deadline) {
        return {
          ...outcome,
          status: 'failed',
          error: `${limit} (${attempt} attempt${attempt === 1 ? '' : 's'}; the last: ${outcome.error ?? outcome.status})`,
        };
      }
      await this.pause(check.intervalSeconds * 1000);
      if (this.stopped) return { status: 'interrupted', error: 'receiver stopped during the health check' };
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
      this.note(
        `release${unfinished.length === 1 ? '' : 's'} ${unfinished.join(', ')} never finished (the receiver stopped): marked interrupted`,
      );
      await this.layout.update((m) => {
        for (const release of m.releases) if (release.state === 'building') release.state = 'interrupted';
      });
    }
    if (switching && (await this.layout.current()) === switching.to) {
      this.note(`an earlier run switched to ${switching.to} but never finished its checks: switching back`);
      await this.switchBack(switching.to, switching.from);
    } else if (switching) {
      await this.layout.update((m) => delete m.switching);
    }
  }

  private async buildFailed(id: string, outcome: Outcome, record: RunDeploy): Promise<DeployOutcome> {
    if (outcome.status !== 'interrupted') await this.layout.setState(id, 'failed');
    this.note('current is unchanged');
    return { ...outcome, deploy: record };
  }

  private failed(error: string, outcome?: Outcome): DeployOutcome {
    return { status: 'failed', exitCode: outcome?.exitCode ?? null, signal: outcome?.signal ?? null, error };
  }

  /** Links the trigger's shared paths into a new release; an outcome only when that failed. */
  private async linkShared(releaseDir: string): Promise<Outcome | undefined> {
    const shared = this.deploy.shared ?? [];
    if (shared.length === 0) return undefined;
    try {
      await linkSharedPaths(this.deploy.path, releaseDir, shared, {
        owner: this.runAs && 'account' in this.runAs ? this.runAs.account : undefined,
        note: (text) => this.note(text),
      });
      return undefined;
    } catch (error) {
      return this.failed(`shared paths: ${(error as Error).message}`);
    }
  }

  /** The release the next steps run in, and the one before it, as the commands' variables. */
  private useRelease(id: string, previous: string | undefined): void {
    this.releaseEnv = {
      TRIGGLER_DEPLOY_PATH: this.deploy.path,
      TRIGGLER_RELEASE_DIR: this.layout.releaseDir(id),
      TRIGGLER_PREVIOUS_RELEASE_DIR: previous ? this.layout.releaseDir(previous) : '',
    };
  }

  /**
   * Runs one step as a command of the trigger, logging when it started, how long it took and how
   * it ended. `step.timeoutSeconds`: a timeout of its own; by default the step has what is left
   * before the deploy's deadline, and a step stopped by it ends the run `timed-out`.
   * `step.env`: variables for this step alone (a fetch's GIT_SSH_COMMAND).
   */
  private async runStep(
    name: string,
    command: Command,
    cwd: string,
    step: { timeoutSeconds?: number; env?: Record<string, string> } = {},
  ): Promise<Outcome> {
    const timeoutSeconds = step.timeoutSeconds ?? secondsUntil(this.deadline);
    if (this.stopped) return { status: 'interrupted', error: `receiver stopped before ${name}` };
    const budget = `the deploy's timeoutSeconds (${this.request.config.timeoutSeconds}s)`;
    if (timeoutSeconds <= 0) {
      this.note(`${name}: not started, ${budget} ran out`);
      return { status: 'timed-out', exitCode: null, signal: null, error: `timed out: ${budget} ran out before ${name}` };
    }
    const started = Date.now();
    this.note(`${name}: ${commandForLog(command)}`);
    const env: Record<string, string> = {
      ...this.request.config.env,
      ...this.releaseEnv,
      // A fetch that needs a password fails instead of waiting for one.
      GIT_TERMINAL_PROMPT: '0',
      ...step.env,
    };
    this.step = runCommand({
      ...this.request,
      config: { ...this.request.config, command, cwd, env, timeoutSeconds },
      run: { ...this.request.run, commit: this.commit },
      runAs: this.runAs,
    });
    let outcome = await this.step.outcome;
    this.step = undefined;
    if (outcome.status === 'timed-out' && step.timeoutSeconds === undefined)
      outcome = { ...outcome, error: `timed out: ${budget} ran out during ${name}` };
    const took = `${((Date.now() - started) / 1000).toFixed(1)}s`;
    this.note(`${name}: ${outcome.status === 'succeeded' ? 'ok' : (outcome.error ?? outcome.status)} (${took})`);
    return outcome;
  }

  private note(text: string): void {
    this.request.log.write(Buffer.from(`[triggler ${new Date().toISOString()}] ${text}\n`));
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** A step stopped by the deploy's deadline, or by the receiver stopping: nothing more runs. */
function endsTheRun(outcome: Outcome): boolean {
  return outcome.status === 'interrupted' || outcome.status === 'timed-out';
}

/** Seconds left until `deadline`, in tenths rounded up (0 once it has passed). */
function secondsUntil(deadline: number): number {
  return Math.max(0, Math.ceil((deadline - Date.now()) / 100) / 10);
}
