/**
 * `triggler fleet-step <prepare|switch|rollback|converge>`: one step of a fleet's rollout, on the
 * host it runs on. Run Command starts it; it asks this host's own receiver (its admin listener,
 * with the admin credential from the state directory) for the step as a journaled run, waits for
 * the run and prints one JSON line (`status`, `runId`, `release`, `commit`, `host`), exiting
 * non-zero unless the step succeeded, which is what marks the invocation failed.
 *
 *   prepare   lay out and build the commit's release (reusing a good one), switch nothing
 *   switch    make the prepared release of the commit current: activate, health check, local rollback
 *   rollback  back to the release before current, or to the commit's release with --commit; a host
 *             whose current is the only good release it has (the first rollout switched it)
 *             stays on it and says so: status `nothing-to-roll-back`, exit 1
 *   converge  prepare and switch the commit, unless current already is it (a host joining the fleet)
 *
 * Every argument is checked against the pattern the Command document allows, so nothing a
 * delivery carries reaches the receiver unchecked, whoever starts this.
 */
import * as os from 'node:os';
import { Command, Option } from 'commander';
import { FLEET_STEP_NAMES, type FleetStepName, type HostStepResult } from '../protocol';
import { describeReleases, ReleaseLayout, type RunRecord } from '../receiver';
import { deployTrigger } from './deploy-commands';
import { locateReceiver, postAdminAction, waitForRun } from './runs-source';

/** The steps, as the rollout's contract names them (protocol/rollout.ts). */
export const FLEET_STEPS = FLEET_STEP_NAMES;
type FleetStep = FleetStepName;

/** What each argument may be: the Command document's `allowedPattern`s say the same. */
export const FLEET_STEP_PATTERNS = {
  repository: /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/,
  branch: /^(?!.*\.\.)(?!.*\/\/)[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/,
  commit: /^[0-9a-f]{7,64}$/,
  config: /^(?!.*\.\.)\/[A-Za-z0-9._/-]{1,4095}$/,
} as const;

const PATTERN_WORDS: Record<keyof typeof FLEET_STEP_PATTERNS, string> = {
  repository: 'a repository name: letters, digits, ".", "_" and "-", at most 100, starting with a letter or digit',
  branch: 'a branch name: letters, digits, ".", "_", "-" and "/", at most 255, starting with a letter or digit, without ".." or "//"',
  commit: 'a commit id: 7 to 64 lowercase hex digits',
  config: 'an absolute path: letters, digits, ".", "_", "-" and "/", without ".."',
};

export const DEFAULT_FLEET_CONFIG = '/etc/triggler/receiver.json';

interface FleetStepOptions {
  repository: string;
  branch: string;
  commit?: string;
  config: string;
}

/** The JSON line a step prints: what Run Command keeps of the invocation. */
export type StepResult = HostStepResult;

/**
 * A rollback's status when the host has no release to go back to: the rollout switched it to
 * the first release it ever had. Not a run's status: no run is asked for, the host stays as it is.
 */
export const NOTHING_TO_ROLL_BACK = 'nothing-to-roll-back';

/** Checks each option against its pattern; an error names the flag and says what it may be. */
export function fleetStepProblems(step: string, options: Partial<FleetStepOptions>): string[] {
  const problems: string[] = [];
  if (!(FLEET_STEPS as readonly string[]).includes(step)) problems.push(`<step> must be one of ${FLEET_STEPS.join(', ')}, not "${step}"`);
  for (const flag of ['repository', 'branch', 'commit', 'config'] as const) {
    const value = options[flag];
    if (value !== undefined && !FLEET_STEP_PATTERNS[flag].test(value)) problems.push(`--${flag} must be ${PATTERN_WORDS[flag]}`);
  }
  if (step !== 'rollback' && (FLEET_STEPS as readonly string[]).includes(step) && options.commit === undefined)
    problems.push(`--commit is required for ${step}`);
  if (options.commit !== undefined && /^0+$/.test(options.commit))
    problems.push('--commit must name a commit, not git\'s all-zero "no commit"');
  // A release records the commit it was built from whole; later steps may name a prefix of it.
  const builds = step === 'prepare' || step === 'converge';
  if (
    builds &&
    options.commit !== undefined &&
    FLEET_STEP_PATTERNS.commit.test(options.commit) &&
    !/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(options.commit)
  ) {
    problems.push(`--commit must be the whole commit id (40 or 64 hex digits) for ${step}`);
  }
  return problems;
}

export function fleetStepCommand(): Command {
  return new Command('fleet-step')
    .description("one step of a fleet's rollout on this host, as a run of its receiver; prints one JSON line")
    .argument('<step>', FLEET_STEPS.join(' | '))
    .requiredOption('--repository <name>', "the trigger's repository")
    .requiredOption('--branch <name>', "the trigger's branch")
    .option('--commit <id>', 'the commit (required but for rollback, where it names the release to return to)')
    .addOption(new Option('-c, --config <file>', 'the receiver config (its admin listener and stateDir)').default(DEFAULT_FLEET_CONFIG))
    .addHelpText(
      'after',
      `\nNeeds read access to the receiver's state directory (its admin credential): run it as the receiver's user or root.\n\nExample:\n  triggler fleet-step converge --repository my-app --branch main --commit 3f2c1e0 --config ${DEFAULT_FLEET_CONFIG}`,
    )
    .action(async (step: string, options: FleetStepOptions) => {
      const problems = fleetStepProblems(step, options);
      if (problems.length > 0) {
        process.stderr.write(`triggler fleet-step: ${problems.join('; ')}\n`);
        process.exitCode = 2;
        return;
      }
      const result = await runStep(step as FleetStep, options).catch((error: Error): StepResult => ({
        ...blank(options),
        status: 'error',
        error: error.message,
      }));
      process.stdout.write(`${JSON.stringify(result)}\n`);
      if (result.status !== 'succeeded') process.exitCode = 1;
    });
}

/**
 * The answer of a plain rollback on a host whose current release has none before it (the
 * receiver's own rollback would find no target and fail like any run); undefined when there is a
 * release to go back to, or none is current, which the receiver's rollback answers itself.
 */
async function withNothingBefore(deployPath: string): Promise<StepResult | undefined> {
  const releases = describeReleases(await new ReleaseLayout(deployPath).list());
  const current = releases.find((release) => release.current);
  if (!current || releases.some((release) => release.status === 'previous')) return undefined;
  return {
    status: NOTHING_TO_ROLL_BACK,
    runId: null,
    release: current.id,
    commit: current.commit,
    host: os.hostname(),
    error: `nothing to roll back to: no release older than current (${current.id}, commit ${current.commit.slice(0, 12)}) ever went live here with another commit, so the host stays on it`,
  };
}

function blank(options: FleetStepOptions): StepResult {
  return { status: 'error', runId: null, release: null, commit: options.commit ?? null, host: os.hostname() };
}

async function runStep(step: FleetStep, options: FleetStepOptions): Promise<StepResult> {
  const { repository, branch, commit } = options;
  const { trigger, config } = deployTrigger(options.config, repository, branch);
  const where = locateReceiver({ config: options.config }, config);
  if (!where.admin)
    throw new Error(`${options.config} turns the admin listener off: a fleet step is a run of the receiver, asked for there`);
  const admin = where.admin;
  const ask = async (path: string, body: Record<string, string>): Promise<RunRecord> =>
    waitForRun(admin, await postAdminAction(where, `a ${step}`, path, body));
  const target = { repository, branch, commit: commit! };
  let run: RunRecord;
  switch (step) {
    case 'rollback': {
      if (commit === undefined) {
        const stays = await withNothingBefore(trigger.deploy.path);
        if (stays) return stays;
      }
      run = await ask('/rollback', { repository, branch, ...(commit === undefined ? {} : { to: commit }) });
      break;
    }
    case 'converge': {
      const current = (await new ReleaseLayout(trigger.deploy.path).list()).find((release) => release.current);
      if (current?.commit.startsWith(commit!))
        return { status: 'succeeded', runId: null, release: current.id, commit: current.commit, host: os.hostname() };
      run = await ask('/prepare', target);
      if (run.status === 'succeeded') run = await ask('/switch', target);
      break;
    }
    default:
      run = await ask(`/${step}`, target);
  }
  return {
    status: run.status,
    runId: run.id,
    release: run.deploy?.release ?? null,
    commit: run.deploy?.commit ?? commit ?? null,
    host: os.hostname(),
    ...(run.error === undefined ? {} : { error: run.error }),
  };
}
