/**
 * One run, from its start record to its finish record: what it does is decided by its kind (a
 * push, or an action of the receiver's own), its output goes to its bounded log, and how it ended
 * goes to the journal before anyone hears of it.
 */
import type { Logger } from 'pino';
import type { TriggerConfig } from '../config/schema';
import { type CommandRequest, type RunningCommand, runCommand } from './command';
import type { CommandSpawner } from './command-spawn';
import { type DeployOutcome, runDeploy } from './deploy/deployment';
import type { SecretLookup } from './deploy/ssh-access';
import type { DeployingTrigger } from '../config/deploy-paths';
import type { FinishRecord } from './journal-record';
import type { ProcessGroup, RunAction, StoredRun } from './run-record';
import { BoundedRunLog } from './run-log';
import type { RunStore } from './run-store';

/** What a run does: a push's deploy or command, or the action of a run of the receiver's own. */
export type RunKind = 'push' | RunAction['type'];

export function kindOf(run: StoredRun): RunKind {
  return run.action?.type ?? 'push';
}

interface StartContext {
  request: CommandRequest;
  stateDir: string;
  secretNamed: SecretLookup;
  /** Every configured trigger now: a deploy checks that no other one's path resolves into its own. */
  triggers: readonly DeployingTrigger[];
}

/**
 * How each kind of run starts. A kind added to RunAction (each its own journaled run) gets its
 * line here. A push (and its rebuild) deploys when the trigger has a deploy section and runs its
 * command otherwise; the receiver's own deploy steps (the deployment reads the run's action) are
 * asked for on deploy triggers alone.
 */
const START: Record<RunKind, (context: StartContext) => RunningCommand> = {
  push: startDeployOrCommand,
  rebuild: startDeployOrCommand,
  rollback: startDeployOrCommand,
  recover: startDeployOrCommand,
  prepare: startDeployOrCommand,
  switch: startDeployOrCommand,
};

function startDeployOrCommand({ request, stateDir, secretNamed, triggers }: StartContext): RunningCommand {
  const deploy = request.config.deploy;
  return deploy ? runDeploy({ ...request, deploy, stateDir, secretNamed, triggers }) : runCommand(request);
}

export interface ExecutionOptions {
  store: RunStore;
  logger: Logger;
  stateDir: string;
  runLogBytes: number;
  killGraceMs: number;
  withheldEnv: ReadonlySet<string>;
  /** How commands are started: directly, or through the command runner. */
  spawn: CommandSpawner;
  secretNamed: SecretLookup;
  /** The triggers configured now (they change on reload). */
  triggers(): readonly DeployingTrigger[];
  /** Called with the run's record once its finish is in the journal. */
  finished(run: StoredRun): void;
}

/** A run under way: its log (while output comes) and its command (to stop it). */
export interface ActiveRun {
  runId: string;
  config: TriggerConfig;
  label: string;
  log: BoundedRunLog | undefined;
  command: RunningCommand | undefined;
  /** Set when the receiver is stopping: the run ends as interrupted. */
  stopRequested: boolean;
}

/** A run under way, and the promise that settles once it is over (recorded or not). */
export type RunUnderWay = ActiveRun & { done: Promise<void> };

/**
 * The receiver is stopping: waits up to `graceSeconds` for the runs under way, then stops what
 * still runs (their process groups are killed and they end interrupted) and waits for them.
 */
export async function stopRunning(underWay: () => RunUnderWay[], graceSeconds: number, logger: Logger): Promise<void> {
  const running = underWay();
  if (running.length === 0) return;
  logger.info({ running: running.map((run) => run.runId), graceSeconds }, 'waiting for running commands before stopping');
  let graceTimer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<void>((resolve) => {
    graceTimer = setTimeout(resolve, graceSeconds * 1000);
  });
  await Promise.race([Promise.all(running.map((run) => run.done)), graceOver]);
  clearTimeout(graceTimer);
  for (const run of underWay()) {
    run.stopRequested = true;
    run.command?.stop();
  }
  await Promise.all(underWay().map((run) => run.done));
}

/** Runs it: start record, command, finish record. */
export async function executeRun(active: ActiveRun, options: ExecutionOptions): Promise<void> {
  const { runId, config, label } = active;
  const { store, logger } = options;
  const startedAt = Date.now();
  await store.record({ type: 'start', at: new Date(startedAt).toISOString(), runId });
  const run = store.run(runId);
  if (!run) throw new Error(`run ${runId} is not in the store`);
  logger.info(
    { run: runId, trigger: label, repository: run.repository, branch: run.branch, commit: run.commit, deliveries: run.deliveries },
    'run started',
  );
  const log = new BoundedRunLog(store.logPath(runId), options.runLogBytes, logger);
  active.log = log;
  const request: CommandRequest = {
    config,
    run,
    log,
    logger,
    killGraceMs: options.killGraceMs,
    withheldEnv: options.withheldEnv,
    spawn: options.spawn,
    // So that the next start can stop it if this receiver dies while it runs.
    onSpawn: (processGroup: ProcessGroup) => {
      store.record({ type: 'spawned', at: new Date().toISOString(), runId, processGroup }).catch((error: Error) => {
        logger.error({ run: runId, pgid: processGroup.pgid, err: error.message }, "cannot record the command's process group");
      });
    },
  };
  const command = START[kindOf(run)]({
    request,
    stateDir: options.stateDir,
    secretNamed: options.secretNamed,
    triggers: options.triggers(),
  });
  active.command = command;
  if (active.stopRequested) command.stop();
  const outcome: DeployOutcome = await command.outcome;
  if (outcome.error !== undefined && outcome.status !== 'succeeded') log.write(Buffer.from(`\n[triggler] ${outcome.error}\n`));
  const summary = await log.finish();
  const finish: FinishRecord = {
    type: 'finish',
    at: new Date().toISOString(),
    runId,
    status: outcome.status,
    exitCode: outcome.exitCode,
    signal: outcome.signal,
    error: outcome.error,
    logBytes: summary.storedBytes,
    logTruncated: summary.truncated,
    ...(outcome.deploy ? { deploy: outcome.deploy } : {}),
  };
  await store.record(finish);
  const finished = store.run(runId);
  if (finished) options.finished(finished);
  logger.info(
    {
      run: runId,
      trigger: label,
      status: outcome.status,
      exitCode: outcome.exitCode ?? null,
      signal: outcome.signal ?? null,
      ms: Date.now() - startedAt,
      ...(outcome.error ? { error: outcome.error } : {}),
    },
    'run finished',
  );
}
