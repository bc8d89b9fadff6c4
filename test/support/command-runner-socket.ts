/**
 * What `triggler-command.socket` (Accept=yes) does on the host, for tests: a Unix socket whose
 * every connection starts the command runner's real entry as a process of its own, with the
 * connection as its stdin and stdout.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

const RUNNER_ENTRY = path.join(__dirname, '..', '..', 'receiver', 'command-runner-main.ts');

/** `unshare` arguments that run the rest with fresh tmpfs mounts on /tmp and /var/tmp, seen by nobody else. */
const PRIVATE_TMP_PREFIX = [
  '--user',
  '--map-root-user',
  '--mount',
  'sh',
  '-c',
  'mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp && exec "$@"',
  'private-tmp',
];

export interface CommandRunnerSocket {
  path: string;
  /** Every runner process started so far, one per connection. */
  runners: ChildProcess[];
  /** What the runners wrote to stderr (their journal on the host). */
  log(): string;
  /** Stops listening and waits for every runner to exit. */
  close(): Promise<void>;
}

/**
 * Whether this machine lets a process have a /tmp of its own (a user and mount namespace), as a
 * unit with PrivateTmp=yes does.
 */
export const canMakePrivateTmp: boolean = spawnSync('unshare', [...PRIVATE_TMP_PREFIX, 'true'], { stdio: 'ignore' }).status === 0;

export interface CommandRunnerOptions {
  /** Each runner gets an empty /tmp and /var/tmp of its own, as the host's runner unit does (PrivateTmp=yes). */
  privateTmp?: boolean;
}

export async function listenCommandRunner(socketPath: string, options: CommandRunnerOptions = {}): Promise<CommandRunnerSocket> {
  const runners: ChildProcess[] = [];
  const stderr: string[] = [];
  const [program, ...args] = [
    ...(options.privateTmp ? ['unshare', ...PRIVATE_TMP_PREFIX] : []),
    process.execPath,
    '--require',
    'tsx/cjs',
    RUNNER_ENTRY,
  ];
  // Paused: the connection's bytes are the runner's to read, not this process's.
  const server = net.createServer({ pauseOnConnect: true }, (connection) => {
    const runner = spawn(program!, args, { stdio: [connection, connection, 'pipe'] });
    runner.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    runners.push(runner);
    // The runner holds its own copy of the connection; this one is no longer needed.
    connection.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return {
    path: socketPath,
    runners,
    log: () => stderr.join(''),
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(
        runners.map((runner) =>
          runner.exitCode !== null || runner.signalCode !== null ? undefined : new Promise((resolve) => runner.once('exit', resolve)),
        ),
      );
    },
  };
}
