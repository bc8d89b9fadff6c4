/** The real `triggler` CLI as a child process (bin/triggler.js, the same entry `npx triggler` runs). */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const CLI = join(ROOT, 'bin', 'triggler.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `program args` (the clone's CLI unless `program` says otherwise) and resolves with how it ended; never rejects. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; program?: string[]; timeoutMs?: number } = {},
): Promise<CliResult> {
  const [command, ...prefix] = options.program ?? [process.execPath, CLI];
  return new Promise((resolve) => {
    const child = execFile(
      command!,
      [...prefix, ...args],
      { cwd: options.cwd ?? ROOT, env: options.env ?? { PATH: process.env.PATH }, timeout: options.timeoutMs ?? 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Starts a long-running command (`serve`) and resolves once `ready` matches its output (the test's timeout bounds the wait). */
export function startCli(
  args: string[],
  ready: RegExp,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; program?: string[] } = {},
): Promise<{ child: ChildProcess; output: () => string }> {
  const [command, ...prefix] = options.program ?? [process.execPath, CLI];
  const child = spawn(command!, [...prefix, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (ready.test(output)) resolve({ child, output: () => output });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited (${code}) before it was ready:\n${output}`)));
  });
}

/** SIGTERM, and wait for the exit. */
export async function stopCli(child: ChildProcess): Promise<void> {
  // Stopped already (a signal leaves exitCode null): its 'exit' will not come again.
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** A port nothing listens on right now, for a receiver a test starts and stops. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
