/**
 * A receiver that dies while its command runs: it starts the command through the runner's socket,
 * prints the command's process group id, and waits for the test's SIGKILL.
 * Run as `node --require tsx/cjs runner-client-crash.ts SOCKET WORKDIR`.
 */
import { spawnThroughRunner } from '../../../receiver/runs/command-runner-client';

async function main(): Promise<void> {
  const [socketPath, workDir] = process.argv.slice(2) as [string, string];
  const started = await spawnThroughRunner(socketPath)({
    program: '/bin/sh',
    // A background child too: the whole group must go, not only the leader.
    args: ['-c', 'sleep 600 & echo $$ > command.pid.tmp && mv command.pid.tmp command.pid; wait'],
    cwd: workDir,
    env: { PATH: process.env.PATH },
    runId: 'crash-run',
    killGraceMs: 1000,
  });
  if ('error' in started) throw started.error;
  process.stdout.write(`${started.command.group.pgid}\n`);
  setInterval(() => undefined, 60_000);
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
