/**
 * The receiver's side of the command runner (command-runner.ts): a command started by asking the
 * runner's socket, one connection per command. The connection is the command's lifeline: the
 * runner stops what is left of it when the connection ends, so a receiver that dies takes its
 * commands with it, and systemd stops the runner's cgroup after them.
 */
import * as net from 'node:net';
import { privateTmpOf, privateTmpProblem } from '../config/startup-problems';
import { encodeFrame, type Frame, FrameReader } from './command-frames';
import type { CommandExit, CommandSpawner, SpawnedCommand, SpawnResult } from './command-spawn';
import { groupHasLiveMember } from './process-group';
import type { ProcessGroup } from './run-record';

/** A spawner that asks the command runner listening on `socketPath`. */
export function spawnThroughRunner(socketPath: string): CommandSpawner {
  return (request) => {
    if (request.account) {
      const error: NodeJS.ErrnoException = new Error("the command runner runs commands as its own unit's user, not as a trigger's user");
      error.code = 'EPERM';
      return Promise.resolve({ error });
    }
    const { account: _account, ...spec } = request;
    return new Promise<SpawnResult>((resolve) => {
      const socket = net.createConnection(socketPath);
      const reader = new FrameReader();
      let command: RunnerCommand | undefined;
      let settled = false;
      const settle = (result: SpawnResult): void => {
        if (settled) return;
        settled = true;
        resolve(result);
      };
      const failed = (message: string, code?: string, fields: Pick<NodeJS.ErrnoException, 'syscall' | 'path'> = {}): void => {
        const error: NodeJS.ErrnoException = Object.assign(new Error(message), fields);
        if (code !== undefined) error.code = code;
        socket.destroy();
        settle({ error });
      };
      socket.once('connect', () => socket.write(encodeFrame({ kind: 'spec', spec })));
      socket.on('data', (chunk: Buffer) => {
        let frames: Frame[];
        try {
          frames = reader.push(chunk);
        } catch (error) {
          const message = `the command runner sent a malformed frame: ${(error as Error).message}`;
          if (command) command.lose(message);
          else failed(message);
          socket.destroy();
          return;
        }
        for (const frame of frames) {
          if (frame.kind === 'spawned' && !command) {
            command = new RunnerCommand(socket, frame.group);
            settle({ command });
          } else if (frame.kind === 'spawn-error' && frame.syscall === 'chdir' && frame.path !== undefined) {
            // The receiver found the directory before it asked: the runner sees another file system.
            const tmp = privateTmpOf(frame.path);
            const why = tmp ? privateTmpProblem(frame.path, tmp) : `the command runner cannot see ${frame.path}, which the receiver can`;
            failed(why, frame.code, { syscall: frame.syscall, path: frame.path });
          } else if (frame.kind === 'spawn-error') failed(frame.message, frame.code);
          else command?.received(frame);
        }
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (command) command.lose(`the command runner's connection failed: ${error.message}`);
        // EAGAIN (a full backlog) is tried again like any shortage; a missing runner is not.
        else failed(`cannot reach the command runner at ${socketPath}: ${error.message}`, error.code);
      });
      socket.on('close', () => {
        if (command) command.lose("the command runner's connection closed before the command ended");
        else failed(`the command runner at ${socketPath} closed the connection before the command started`);
      });
    });
  };
}

/**
 * A command the runner started. Its frames may arrive in the very chunk that says it started,
 * before the receiver has listened for anything: what came before a listener is kept for it.
 */
class RunnerCommand implements SpawnedCommand {
  private readonly outputListeners: ((chunk: Buffer) => void)[] = [];
  private outputBeforeListener: Buffer[] | undefined = [];
  private exitedWith: CommandExit | undefined;
  private readonly exitListeners: ((exit: CommandExit) => void)[] = [];
  private readonly closedListeners: (() => void)[] = [];
  private readonly warningListeners: ((what: string, error: Error) => void)[] = [];
  private exited = false;
  private outputClosed = false;

  constructor(
    private readonly socket: net.Socket,
    readonly group: ProcessGroup,
  ) {}

  received(frame: Frame): void {
    if (frame.kind === 'output') {
      if (this.outputBeforeListener) this.outputBeforeListener.push(frame.data);
      for (const listener of this.outputListeners) listener(frame.data);
    } else if (frame.kind === 'exit') this.exit({ code: frame.code, signal: frame.signal });
    else if (frame.kind === 'output-closed') this.closeOutput();
  }

  /** The connection broke: how the command ended can no longer be known; the runner stops it. */
  lose(why: string): void {
    if (!this.exited && !this.socket.destroyed) {
      for (const listener of this.warningListeners) listener('command runner', new Error(why));
    }
    this.exit({ code: null, signal: null, lost: why });
    this.closeOutput();
  }

  private exit(exit: CommandExit): void {
    if (this.exited) return;
    this.exited = true;
    this.exitedWith = exit;
    for (const listener of this.exitListeners.splice(0)) listener(exit);
  }

  private closeOutput(): void {
    if (this.outputClosed || !this.exited) return;
    this.outputClosed = true;
    for (const listener of this.closedListeners.splice(0)) listener();
  }

  onOutput(listener: (chunk: Buffer) => void): void {
    for (const chunk of this.outputBeforeListener ?? []) listener(chunk);
    this.outputBeforeListener = undefined;
    this.outputListeners.push(listener);
  }
  onExit(listener: (exit: CommandExit) => void): void {
    if (this.exitedWith) listener(this.exitedWith);
    else this.exitListeners.push(listener);
  }
  onOutputClosed(listener: () => void): void {
    if (this.outputClosed) listener();
    else this.closedListeners.push(listener);
  }
  onWarning(listener: (what: string, error: Error) => void): void {
    this.warningListeners.push(listener);
  }
  pauseOutput(): void {
    this.socket.pause();
  }
  resumeOutput(): void {
    this.socket.resume();
  }

  signalGroup(signal: NodeJS.Signals): Error | undefined {
    if (!this.socket.writable) return new Error("the command runner's connection is closed");
    this.socket.write(encodeFrame({ kind: 'signal', signal }));
    return undefined;
  }

  /** The runner's processes are the receiver's user's, on this host: /proc says whether any is left. */
  groupAlive(): boolean {
    return groupHasLiveMember(this.group.pgid);
  }

  release(): void {
    this.outputListeners.length = 0;
    this.outputBeforeListener = undefined;
    this.socket.end();
  }
}
