/**
 * How a deploy runs its steps: each one a command like the trigger's own, started by runCommand
 * (its process group, timeout, stop, output into the run's log), within one deadline for the whole
 * deploy, with the release variables the steps see, each logged with its time and result.
 */
import type { DeployingTrigger } from '../../config/deploy-paths';
import type { DeployConfig } from '../../config/deploy-schema';
import type { TriggerConfig } from '../../config/schema';
import { type CommandRequest, type Outcome, type RunAs, type RunningCommand, runCommand } from '../command';
import type { RunDeploy } from '../run-record';
import { commandForLog } from './git';
import type { ReleaseLayout } from './release-layout';
import type { SecretLookup } from './ssh-access';

export interface DeployOutcome extends Outcome {
  deploy?: RunDeploy;
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

type Command = TriggerConfig['command'];

export const OK: Outcome = { status: 'succeeded', exitCode: 0, signal: null };

export class DeploySteps {
  private stopping = false;
  private step: RunningCommand | undefined;
  private wake: (() => void) | undefined;
  /** What the steps see besides the run's variables. */
  private releaseEnv: Record<string, string>;
  /** The account the steps run as, resolved once for them all. */
  runAs: RunAs;
  /** The commit the steps are told (TRIGGLER_COMMIT): the one deployed, once known. */
  commit: string;
  /**
   * When the trigger's timeoutSeconds, counted from the start of the run, runs out: one deadline
   * for every step of the deploy together, so a remote that never answers costs the run its
   * timeout once, however many fetches it takes. Switching back after a failed check is repair,
   * and each of its steps has the trigger's timeout of its own.
   */
  readonly deadline: number;

  constructor(
    private readonly request: DeployRequest,
    private readonly layout: ReleaseLayout,
  ) {
    this.commit = request.run.commit;
    this.deadline = Date.now() + request.config.timeoutSeconds * 1000;
    this.releaseEnv = { TRIGGLER_DEPLOY_PATH: request.deploy.path, TRIGGLER_RELEASE_DIR: '', TRIGGLER_PREVIOUS_RELEASE_DIR: '' };
  }

  get stopped(): boolean {
    return this.stopping;
  }

  stop(): void {
    this.stopping = true;
    this.step?.stop();
    this.wake?.();
  }

  /** The release the next steps run in, and the one before it, as the commands' variables. */
  useRelease(id: string, previous: string | undefined): void {
    this.releaseEnv = {
      TRIGGLER_DEPLOY_PATH: this.request.deploy.path,
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
  async run(
    name: string,
    command: Command,
    cwd: string,
    step: { timeoutSeconds?: number; env?: Record<string, string> } = {},
  ): Promise<Outcome> {
    const timeoutSeconds = step.timeoutSeconds ?? secondsUntil(this.deadline);
    if (this.stopping) return { status: 'interrupted', error: `receiver stopped before ${name}` };
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

  note(text: string): void {
    this.request.log.write(Buffer.from(`[triggler ${new Date().toISOString()}] ${text}\n`));
  }

  pause(ms: number): Promise<void> {
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
export function endsTheRun(outcome: Outcome): boolean {
  return outcome.status === 'interrupted' || outcome.status === 'timed-out';
}

/** Seconds left until `deadline`, in tenths rounded up (0 once it has passed). */
export function secondsUntil(deadline: number): number {
  return Math.max(0, Math.ceil((deadline - Date.now()) / 100) / 10);
}

/** A failed run, with what the step that failed it ended with. */
export function failed(error: string, outcome?: Outcome): DeployOutcome {
  return { status: 'failed', exitCode: outcome?.exitCode ?? null, signal: outcome?.signal ?? null, error };
}
