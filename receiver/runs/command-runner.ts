/**
 * The command runner's side of one connection: the receiver sends a command's spec, the runner
 * spawns it in its own process group, streams its output back, reports its exit, signals its group
 * when asked, and stops whatever is left of it once the connection ends, whether the receiver
 * finished with the run or died. On the AWS host each connection is its own instance of
 * `triggler-command@.service` (socket-activated with Accept=yes, the connection as its stdin), a
 * unit whose firewall denies the instance metadata service: everything the command starts lives
 * in that unit's cgroup, and systemd stops the cgroup when the runner exits.
 */
import type { Duplex } from 'node:stream';
import { type CommandSpec, encodeFrame, type Frame, FrameReader, type FromRunner } from './command-frames';
import { spawnDirect, type SpawnedCommand } from './command-spawn';
import { GROUP_POLL_MS } from './process-group';

export interface RunnerConnectionOptions {
  /** Where the runner says what went wrong (its unit's journal); never a token: it logs no environment. */
  log(line: string): void;
  /** Which command a connection may start: by default any (the socket's mode decides who connects). */
  spawn?: typeof spawnDirect;
}

/** Serves one connection from start to end; settles once the connection is closed and the command's group is gone. */
export function serveCommandConnection(socket: Duplex, options: RunnerConnectionOptions): Promise<void> {
  const { log } = options;
  const spawn = options.spawn ?? spawnDirect;
  const reader = new FrameReader();
  let spec: CommandSpec | undefined;
  let command: SpawnedCommand | undefined;
  let spawning = false;
  let connectionOver = false;
  const send = (frame: FromRunner): boolean => (socket.writable ? socket.write(encodeFrame(frame)) : false);

  return new Promise<void>((resolve) => {
    const received = (frame: Frame): void => {
      if (frame.kind === 'spec' && spec === undefined) {
        spec = frame.spec;
        void start(frame.spec);
      } else if (frame.kind === 'signal' && command) {
        const error = command.signalGroup(frame.signal);
        if (error) log(`run ${spec?.runId}: cannot send ${frame.signal} to process group ${command.group.pgid}: ${error.message}`);
      } else if (frame.kind !== 'signal') {
        log(`run ${spec?.runId ?? '(no spec yet)'}: unexpected ${frame.kind} frame; closing the connection`);
        socket.destroy();
      }
    };

    const start = async (request: CommandSpec): Promise<void> => {
      spawning = true;
      const result = await spawn(request);
      spawning = false;
      if ('error' in result) {
        const { code, message, syscall, path } = result.error;
        send({ kind: 'spawn-error', code, message, ...(syscall === 'chdir' ? { syscall, path } : {}) });
        socket.end();
      } else {
        command = result.command;
        if (!connectionOver) {
          send({ kind: 'spawned', group: command.group });
          command.onWarning((what, error) => log(`run ${request.runId}: ${what}: ${error.message}`));
          command.onOutput((data) => {
            // A slow receiver holds the command's output back instead of the runner buffering it.
            if (!send({ kind: 'output', data })) command?.pauseOutput();
          });
          command.onExit(({ code, signal }) => send({ kind: 'exit', code, signal }));
          command.onOutputClosed(() => send({ kind: 'output-closed' }));
        }
      }
      // The connection ended while the command was being started: nobody will hear of it.
      if (connectionOver) void stopWhatIsLeft();
    };

    /** The connection is over: SIGTERM to what is left of the group, SIGKILL after the grace. */
    const stopWhatIsLeft = async (): Promise<void> => {
      const running = command;
      if (running) {
        running.release();
        const grace = spec?.killGraceMs ?? 10_000;
        if (running.groupAlive()) {
          running.signalGroup('SIGTERM');
          if (!(await goneWithin(running, grace))) {
            running.signalGroup('SIGKILL');
            await goneWithin(running, grace);
          }
        }
      }
      resolve();
    };

    const connectionEnded = (): void => {
      if (connectionOver) return;
      connectionOver = true;
      if (!socket.destroyed) socket.end();
      // A command being started is stopped by start() once it exists.
      if (!spawning) void stopWhatIsLeft();
    };

    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch (error) {
        log(`a malformed frame: ${(error as Error).message}; closing the connection`);
        socket.destroy();
        return;
      }
      for (const frame of frames) received(frame);
    });
    socket.on('drain', () => command?.resumeOutput());
    socket.on('end', connectionEnded);
    socket.on('close', connectionEnded);
    socket.on('error', (error) => {
      log(`run ${spec?.runId ?? '(no spec yet)'}: the connection failed: ${error.message}`);
      connectionEnded();
    });
  });
}

async function goneWithin(command: SpawnedCommand, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    if (!command.groupAlive()) return true;
    await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
  }
  return !command.groupAlive();
}
