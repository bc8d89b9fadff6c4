/**
 * How a command's process comes to be: one interface, two ways. Directly, as a child of the
 * receiver in its own process group (a self-hosted receiver, the lab); or through the command
 * runner (command-runner-client.ts), a socket-activated unit of its own that the receiver asks to
 * spawn it, so the command lives in a cgroup whose firewall the receiver's does not share. The
 * supervision (timeout, kill, output, the journal's process group) is command.ts's, the same for
 * both.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import type { CommandSpec } from './command-frames';
import { describeProcessGroup, groupHasLiveMember } from './process-group';
import type { ProcessGroup } from './run-record';

/** How the leader of a command's process group ended; `lost` when nobody can say any more. */
export interface CommandExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why how it ended is not known (the runner's connection broke first). */
  lost?: string;
}

/** A command that has started: its process group, its output and its end. */
export interface SpawnedCommand {
  /** Its process group, as the run's record keeps it (the group's id is the leader's pid). */
  readonly group: ProcessGroup;
  /** Each chunk of its stdout and stderr, as it comes. */
  onOutput(listener: (chunk: Buffer) => void): void;
  /** Its leader exited (once). */
  onExit(listener: (exit: CommandExit) => void): void;
  /** Everything holding its output has closed it (once, after the exit). */
  onOutputClosed(listener: () => void): void;
  /** Stops reading its output for now (a relay whose reader is slow), and reads on. */
  pauseOutput(): void;
  resumeOutput(): void;
  /** Something went wrong besides the command itself (reading its output): for the receiver's log. */
  onWarning(listener: (what: string, error: Error) => void): void;
  /** Signals its whole process group; a group that is gone is no error. Returns an error worth logging. */
  signalGroup(signal: NodeJS.Signals): Error | undefined;
  /** Whether a member of its process group still lives (zombies do not). */
  groupAlive(): boolean;
  /** The run is done with it: its output is no longer read (through the runner, what is left of it is stopped). */
  release(): void;
}

export interface SpawnRequest extends CommandSpec {
  /** Another account to run as (a root receiver's trigger `user`); only a direct spawn can. */
  account?: { uid: number; gid: number };
}

export type SpawnResult = { command: SpawnedCommand } | { error: NodeJS.ErrnoException };

/** Starts a command's process group; settles once it exists or could not be made. */
export type CommandSpawner = (request: SpawnRequest) => Promise<SpawnResult>;

/** Signals a process group; a group that is gone (ESRCH) is no error. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals): Error | undefined {
  try {
    process.kill(-pgid, signal);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? undefined : (error as Error);
  }
}

/** A child of this process, in its own process group, so a timeout or a stop reaches everything it started. */
export const spawnDirect: CommandSpawner = async (request) => {
  let child: ChildProcess;
  try {
    child = spawn(request.program, request.args, {
      cwd: request.cwd,
      env: request.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(request.account ? { uid: request.account.uid, gid: request.account.gid } : {}),
    });
  } catch (error) {
    return { error: await whyNotStarted(error as NodeJS.ErrnoException, request.cwd) };
  }
  // Node says whether the child exists only on a later tick.
  const started = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      child.off('spawn', onSpawn);
      resolve(error);
    };
    const onSpawn = (): void => {
      child.off('error', onError);
      resolve(undefined);
    };
    child.once('error', onError);
    child.once('spawn', onSpawn);
  });
  if (started) return { error: await whyNotStarted(started, request.cwd) };
  return { command: directCommand(child, child.pid!) };
};

/**
 * Node reports a working directory that does not exist as `spawn <program> ENOENT`, as if the
 * program were missing: said instead as the directory (`syscall` chdir, its `path`), which a
 * command runner that sees another file system than the receiver's meets.
 */
async function whyNotStarted(error: NodeJS.ErrnoException, cwd: string): Promise<NodeJS.ErrnoException> {
  if (error.code !== 'ENOENT') return error;
  try {
    await fsp.stat(cwd);
    return error;
  } catch (statError) {
    if ((statError as NodeJS.ErrnoException).code !== 'ENOENT') return error;
  }
  return Object.assign(new Error(`${cwd} does not exist`), { code: 'ENOENT', syscall: 'chdir', path: cwd });
}

function directCommand(child: ChildProcess, pgid: number): SpawnedCommand {
  const warningListeners: ((what: string, error: Error) => void)[] = [];
  const warn = (what: string, error: Error): void => {
    for (const listener of warningListeners) listener(what, error);
  };
  child.on('error', (error) => warn('command process error', error));
  for (const output of [child.stdout, child.stderr]) output?.on('error', (error) => warn('cannot read command output', error));
  return {
    group: describeProcessGroup(pgid),
    onOutput(listener) {
      for (const output of [child.stdout, child.stderr]) output?.on('data', listener);
    },
    onExit(listener) {
      child.once('exit', (code, signal) => listener({ code, signal }));
    },
    onOutputClosed(listener) {
      child.once('close', () => listener());
    },
    onWarning(listener) {
      warningListeners.push(listener);
    },
    pauseOutput() {
      child.stdout?.pause();
      child.stderr?.pause();
    },
    resumeOutput() {
      child.stdout?.resume();
      child.stderr?.resume();
    },
    signalGroup: (signal) => signalProcessGroup(pgid, signal),
    groupAlive: () => groupHasLiveMember(pgid),
    release() {
      child.stdout?.destroy();
      child.stderr?.destroy();
    },
  };
}
