/**
 * One command of one run, from start to end: its environment, its own process group, its output
 * into the run's log, its timeout, and stopping it — SIGTERM to the whole group, SIGKILL after the
 * grace — when the timeout passes or the receiver stops. The runner decides when a command runs;
 * this module decides nothing else. Whether the process is the receiver's own child or the command
 * runner's (command-spawn.ts), it is supervised here the same way.
 */
import * as fsp from 'node:fs/promises';
import type { Logger } from 'pino';
import { isProvider } from '../../protocol';
import type { TriggerConfig } from '../config/schema';
import { type CommandExit, type CommandSpawner, type SpawnedCommand, spawnDirect } from './command-spawn';
import { GROUP_POLL_MS } from './process-group';
import { type PasswdEntry, lookupPasswdUser } from './run-as-user';
import type { BoundedRunLog } from './run-log';
import type { FinalStatus, ProcessGroup, StoredRun } from './run-record';

/** How a command ended, as its run's finish record says it. */
export interface Outcome {
  status: FinalStatus;
  exitCode?: number | null;
  signal?: string | null;
  error?: string;
}

export interface CommandRequest {
  config: TriggerConfig;
  /** The run whose push the command gets in its environment. */
  run: StoredRun;
  log: BoundedRunLog;
  logger: Logger;
  /** SIGTERM -> SIGKILL delay, in ms. */
  killGraceMs: number;
  /** Receiver environment variables never passed to commands (token variables). */
  withheldEnv: ReadonlySet<string>;
  /** The account runAsOf(config) resolved already (a deploy's steps share one); else runCommand looks it up. */
  runAs?: RunAs;
  /** The command's process group exists (its id is the leader's pid): the journal records it. */
  onSpawn?(group: ProcessGroup): void;
  /**
   * How its process comes to be: as the receiver's child (the default), or through the command
   * runner's socket (receiver config `commandRunner`).
   */
  spawn?: CommandSpawner;
}

export interface RunningCommand {
  /** The receiver is stopping: end the command now (SIGTERM, then SIGKILL); it ends `interrupted`. */
  stop(): void;
  /** Resolves once the command and its whole process group are gone; never rejects. */
  readonly outcome: Promise<Outcome>;
}

/** After the command exits, how long to wait for its output pipes, which a background child may hold open. */
const OUTPUT_DRAIN_MS = 2000;

/** Variables the receiver sets; inherited values are removed so a command never sees a stale one. */
const RUN_VARIABLES = [
  'TRIGGLER_REPOSITORY',
  'TRIGGLER_BRANCH',
  'TRIGGLER_COMMIT',
  'TRIGGLER_PREVIOUS_COMMIT',
  'TRIGGLER_RUN_ID',
  'TRIGGLER_DELIVERY_ID',
  'TRIGGLER_SCHEME',
  'TRIGGLER_PUSHER',
  'TRIGGLER_EVENT',
  'TRIGGLER_PROVIDER',
  'TRIGGLER_DEPLOY_PATH',
  'TRIGGLER_RELEASE_DIR',
  'TRIGGLER_PREVIOUS_RELEASE_DIR',
];

export type RunAs = { account: PasswdEntry } | { error: string } | undefined;

/** Starts the trigger's command for a run. The only way a command is started. */
export function runCommand(request: CommandRequest): RunningCommand {
  let stopRequested = false;
  let stopSpawned: (() => void) | undefined;
  let wakeRetry: (() => void) | undefined;
  const outcome = (async (): Promise<Outcome> => {
    const { config } = request;
    const cwd = config.cwd ?? process.cwd();
    const cwdProblem = await directoryProblem(cwd);
    if (cwdProblem) return { status: 'failed', error: `cwd ${cwd} ${cwdProblem}` };
    const runAs = request.runAs ?? (await runAsOf(config));
    if (runAs && 'error' in runAs) return { status: 'failed', error: runAs.error };
    if (stopRequested) return { status: 'interrupted', error: 'receiver stopped before the command started' };
    const [program, args] =
      typeof config.command === 'string' ? ['/bin/sh', ['-c', config.command]] : [config.command[0] as string, config.command.slice(1)];
    const spawnCommand = request.spawn ?? spawnDirect;
    const env = commandEnvironment(config, request.run, runAs?.account, request.withheldEnv);
    let command: SpawnedCommand | undefined;
    for (let delay = SPAWN_RETRY_FIRST_MS; ; delay = Math.min(delay * 2, SPAWN_RETRY_MAX_MS)) {
      const started = await spawnCommand({
        program,
        args,
        cwd,
        env,
        runId: request.run.id,
        killGraceMs: request.killGraceMs,
        ...(runAs ? { account: runAs.account } : {}),
      });
      if ('command' in started) {
        command = started.command;
        break;
      }
      // Short of descriptors or memory, the host failed, not the command: its accepted push still runs.
      if (!SHORT_OF_RESOURCES.has(started.error.code ?? ''))
        return { status: 'failed', error: startFailure(config, cwd, program, started.error) };
      request.logger.warn(
        { run: request.run.id, err: started.error.message, retryInMs: delay },
        'cannot start the command for lack of a resource; trying again',
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeRetry = undefined;
      if (stopRequested)
        return { status: 'interrupted', error: `receiver stopped before the command could start (${started.error.message})` };
    }
    request.onSpawn?.(command.group);
    return supervise(
      request,
      command,
      () => stopRequested,
      (stop) => (stopSpawned = stop),
    );
  })().catch((error: Error): Outcome => ({ status: 'failed', error: `runner error: ${error.message}` }));
  return {
    stop() {
      stopRequested = true;
      stopSpawned?.();
      wakeRetry?.();
    },
    outcome,
  };
}

/**
 * Why the command could not start, naming the trigger's field when its directory is why: the
 * receiver saw it a moment ago, so the one who spawns sees another file system (the command
 * runner's private /tmp), or it was removed since.
 */
function startFailure(config: TriggerConfig, cwd: string, program: string, error: NodeJS.ErrnoException): string {
  if (error.syscall !== 'chdir') return `could not start ${program}: ${error.message}`;
  const deployPath = config.deploy?.path;
  const field =
    deployPath !== undefined && (cwd === deployPath || cwd.startsWith(`${deployPath}/`))
      ? `deploy.path ${deployPath}${cwd === deployPath ? '' : ` (the step's directory ${cwd})`}`
      : config.cwd === undefined
        ? `the receiver's own directory ${cwd} (no cwd set)`
        : `cwd ${cwd}`;
  return `${field}: cannot start ${program} there: ${error.message}`;
}

/** Why a command cannot start that is the host's, for now: its start is tried again. */
const SHORT_OF_RESOURCES = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM']);
const SPAWN_RETRY_FIRST_MS = 250;
const SPAWN_RETRY_MAX_MS = 10_000;

/** Waits for the command, enforcing its timeout and the receiver's stop; resolves with how it ended. */
function supervise(
  request: CommandRequest,
  command: SpawnedCommand,
  stopRequested: () => boolean,
  onStop: (stop: (() => void) | undefined) => void,
): Promise<Outcome> {
  const { log, logger, killGraceMs } = request;
  const runId = request.run.id;
  const timeoutSeconds = request.config.timeoutSeconds;
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    let timedOut = false;
    let killSent = false;
    let killTimer: NodeJS.Timeout | undefined;
    let exit: CommandExit | undefined;
    const pid = command.group.pgid;

    const signalGroup = (signal: NodeJS.Signals): void => {
      const error = command.signalGroup(signal);
      if (error) logger.warn({ run: runId, pid, signal, err: error.message }, 'cannot signal the command');
    };
    const terminate = (): void => {
      if (killTimer) return;
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => {
        killSent = true;
        signalGroup('SIGKILL');
      }, killGraceMs);
    };
    const timeoutTimer = setTimeout(() => {
      // Said once, at the end, with whether SIGKILL was needed (the run's error line).
      timedOut = true;
      terminate();
    }, timeoutSeconds * 1000);
    onStop(() => {
      log.write(Buffer.from('\n[triggler] receiver stopping: SIGTERM to the process group\n'));
      terminate();
    });

    const finish = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      onStop(undefined);
      command.release();
      resolve(outcome);
    };
    const outcomeOfExit = (): Outcome => {
      const code = exit?.code ?? null;
      const signal = exit?.signal ?? null;
      const signalled = killSent ? 'SIGTERM, then SIGKILL' : 'SIGTERM';
      if (stopRequested())
        return {
          status: 'interrupted',
          exitCode: code,
          signal,
          error: `receiver stopped while it ran (${signalled} to the process group)`,
        };
      if (timedOut)
        return {
          status: 'timed-out',
          exitCode: code,
          signal,
          error: `timed out after ${timeoutSeconds}s (${signalled} to the process group)`,
        };
      if (exit?.lost !== undefined) return { status: 'failed', exitCode: null, signal: null, error: exit.lost };
      if (code === 0) return { status: 'succeeded', exitCode: 0, signal: null };
      if (code !== null) return { status: 'failed', exitCode: code, signal: null, error: `exited with code ${code}` };
      return { status: 'failed', exitCode: null, signal, error: `killed by signal ${signal ?? 'unknown'}` };
    };
    /**
     * After a signal, the run ends once the whole group is gone (or SIGKILL went out), so a
     * finished record never leaves part of the command behind.
     */
    const finishWhenGroupGone = (): void => {
      if (settled) return;
      if (!killTimer || killSent || exit?.lost !== undefined || !command.groupAlive()) {
        finish(outcomeOfExit());
        return;
      }
      setTimeout(finishWhenGroupGone, GROUP_POLL_MS);
    };

    command.onOutput((chunk) => log.write(chunk));
    command.onWarning((what, error) => logger.warn({ run: runId, err: error.message }, what));
    command.onExit((ended) => {
      exit = ended;
      // A background child may hold the output pipes open; the run ends without waiting for it.
      const drainTimer = setTimeout(finishWhenGroupGone, OUTPUT_DRAIN_MS);
      command.onOutputClosed(() => {
        clearTimeout(drainTimer);
        finishWhenGroupGone();
      });
    });
  });
}

/** The account a trigger's commands run as: only with `user` and a root receiver (else undefined). */
export async function runAsOf(config: TriggerConfig): Promise<RunAs> {
  if (config.user === undefined || process.getuid?.() !== 0) return undefined;
  let account: PasswdEntry | undefined;
  try {
    account = await lookupPasswdUser(config.user);
  } catch (error) {
    return { error: `cannot look up user "${config.user}": ${(error as Error).message}` };
  }
  return account ? { account } : { error: `user "${config.user}" is not in /etc/passwd` };
}

/** The receiver's environment minus withheld names, the trigger's env, then the run's variables. */
function commandEnvironment(
  config: TriggerConfig,
  run: StoredRun,
  account: PasswdEntry | undefined,
  withheldEnv: ReadonlySet<string>,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!withheldEnv.has(name) && !RUN_VARIABLES.includes(name)) env[name] = value;
  }
  if (account) {
    env.HOME = account.home;
    env.USER = account.name;
    env.LOGNAME = account.name;
  }
  Object.assign(env, config.env);
  env.TRIGGLER_REPOSITORY = run.repository;
  env.TRIGGLER_BRANCH = run.branch;
  env.TRIGGLER_COMMIT = run.commit;
  env.TRIGGLER_PREVIOUS_COMMIT = run.previousCommit ?? '';
  env.TRIGGLER_RUN_ID = run.id;
  env.TRIGGLER_DELIVERY_ID = run.deliveryIds.at(-1) ?? '';
  env.TRIGGLER_SCHEME = run.scheme;
  if (run.pusher !== undefined) env.TRIGGLER_PUSHER = run.pusher;
  if (run.event !== undefined) env.TRIGGLER_EVENT = run.event;
  if (isProvider(run.scheme)) env.TRIGGLER_PROVIDER = run.scheme;
  return env;
}

async function directoryProblem(dir: string): Promise<string | undefined> {
  try {
    const stats = await fsp.stat(dir);
    return stats.isDirectory() ? undefined : 'is not a directory';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be used: ${(error as Error).message}`;
  }
}
