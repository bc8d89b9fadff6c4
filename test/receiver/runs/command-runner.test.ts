/**
 * Commands started through the command runner: a Unix socket whose every connection starts the
 * runner's real entry as a process of its own (as `triggler-command.socket` does on the host),
 * and real commands. The receiver's supervision holds as it does for its own children: output,
 * exit code, timeout, stop, the journal's process group; and a receiver that dies takes its
 * command with it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { encodeFrame, type Frame, FrameReader } from '../../../receiver/runs/command-frames';
import { spawnThroughRunner } from '../../../receiver/runs/command-runner-client';
import { groupHasLiveMember } from '../../../receiver/runs/process-group';
import { canMakePrivateTmp, type CommandRunnerSocket, listenCommandRunner } from '../../support/command-runner-socket';
import { logText, makeDelivery, makeStateDir, makeTrigger, openRunner, removeDir, waitFor } from '../../support/runner-harness';
import type { Runner } from '../../../receiver/runs/runner';

const LONG_WAIT_MS = 60_000;

let dir: string;
let workDir: string;
let runnerSocket: CommandRunnerSocket;
let runner: Runner | undefined;

beforeEach(async () => {
  dir = makeStateDir();
  workDir = path.join(dir, 'work');
  fs.mkdirSync(workDir);
  runnerSocket = await listenCommandRunner(path.join(dir, 'command.sock'));
});
afterEach(async () => {
  await runner?.close();
  runner = undefined;
  await runnerSocket.close();
  removeDir(dir);
});

async function openWith(command: string | string[], fields: { timeoutSeconds?: number; socket?: string } = {}) {
  const opened = await openRunner({
    stateDir: path.join(dir, 'state'),
    triggers: [makeTrigger({ command, cwd: workDir, ...(fields.timeoutSeconds ? { timeoutSeconds: fields.timeoutSeconds } : {}) })],
    commandRunner: fields.socket ?? runnerSocket.path,
    killGraceSeconds: 1,
  });
  runner = opened.runner;
  return opened;
}

async function finished(runId: string) {
  return waitFor(
    `run ${runId} to finish`,
    () => {
      const run = runner!.history.run(runId);
      return run && !['pending', 'running'].includes(run.status) ? run : undefined;
    },
    LONG_WAIT_MS,
  );
}

const pidIn = (file: string) => waitFor(`${file}`, () => fs.existsSync(file) && Number(fs.readFileSync(file, 'utf8')), LONG_WAIT_MS);

describe('the frames on the runner socket', () => {
  it('come out whole and in order however the bytes are cut', () => {
    const frames: Frame[] = [
      {
        kind: 'spec',
        spec: { program: '/bin/sh', args: ['-c', 'true'], cwd: '/', env: { A: 'b' }, runId: 'r1', killGraceMs: 1000 },
      },
      { kind: 'output', data: Buffer.from([0, 1, 2, 255]) },
      { kind: 'exit', code: null, signal: 'SIGTERM' },
      { kind: 'output-closed' },
    ];
    const bytes = Buffer.concat(frames.map(encodeFrame));
    const reader = new FrameReader();
    const read: Frame[] = [];
    for (let i = 0; i < bytes.length; i++) read.push(...reader.push(bytes.subarray(i, i + 1)));
    expect(read).toEqual(frames);
    expect(reader.pending).toBe(0);
  });

  it('refuse a frame of an unknown kind', () => {
    expect(() => new FrameReader().push(Buffer.from([0x7f, 0, 0, 0, 0]))).toThrow(/unknown frame kind 0x7f/);
  });
});

describe('a command started through the command runner', () => {
  it('runs in a process of the runner, with its environment, output and exit code in the run', async () => {
    await openWith('echo "run $TRIGGLER_RUN_ID in $(pwd)"; echo parent $PPID; echo to-stderr >&2; exit 3');
    const { runId } = await runner!.accept(makeDelivery());
    const run = await finished(runId);
    expect(run).toMatchObject({ status: 'failed', exitCode: 3, error: 'exited with code 3' });
    const log = await logText(runner!, run);
    expect(log).toContain(`run ${runId} in ${workDir}\n`);
    expect(log).toContain('to-stderr\n');
    // Its parent is the runner (one process per connection), not this receiver.
    const parent = Number(/parent (\d+)/.exec(log)?.[1]);
    expect(parent).not.toBe(process.pid);
    expect(runnerSocket.runners.map((child) => child.pid)).toContain(parent);
    // The journal keeps its process group, for the next start to stop after a crash.
    expect(run.processGroup?.pgid).toBeGreaterThan(0);
    expect(groupHasLiveMember(run.processGroup!.pgid)).toBe(false);
  });

  it('is timed out: SIGTERM to its whole group, SIGKILL after the grace, and the run ends once the group is gone', async () => {
    const pidFile = path.join(workDir, 'pid');
    await openWith(`trap '' TERM; sleep 600 & echo $$ > ${pidFile}.tmp && mv ${pidFile}.tmp ${pidFile}; while :; do wait; done`, {
      timeoutSeconds: 1,
    });
    const { runId } = await runner!.accept(makeDelivery());
    const pgid = await pidIn(pidFile);
    const run = await finished(runId);
    expect(run).toMatchObject({ status: 'timed-out', error: 'timed out after 1s (SIGTERM, then SIGKILL to the process group)' });
    expect(run.processGroup?.pgid).toBe(pgid);
    expect(groupHasLiveMember(pgid)).toBe(false);
  });

  it('is stopped with the receiver: the run ends interrupted and nothing of the command is left', async () => {
    const pidFile = path.join(workDir, 'pid');
    await openWith(`sleep 600 & echo $$ > ${pidFile}.tmp && mv ${pidFile}.tmp ${pidFile}; wait`);
    const { runId } = await runner!.accept(makeDelivery());
    const pgid = await pidIn(pidFile);
    const closing = runner!;
    runner = undefined;
    await closing.close();
    expect(groupHasLiveMember(pgid)).toBe(false);
    const { runner: reopened } = await openRunner({
      stateDir: path.join(dir, 'state'),
      triggers: [makeTrigger({ command: 'true', cwd: workDir, rerunInterrupted: false })],
    });
    runner = reopened;
    expect(reopened.history.run(runId)).toMatchObject({
      status: 'interrupted',
      error: 'receiver stopped while it ran (SIGTERM to the process group)',
    });
  });

  it('fails its run when the program cannot be started, saying why', async () => {
    await openWith([path.join(dir, 'no-such-program')]);
    const run = await finished((await runner!.accept(makeDelivery())).runId);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(new RegExp(`^could not start ${path.join(dir, 'no-such-program')}: spawn .* ENOENT$`));
  });

  it('fails its run, naming the socket, when no runner listens there', async () => {
    const missing = path.join(dir, 'missing.sock');
    await openWith('true', { socket: missing });
    const run = await finished((await runner!.accept(makeDelivery())).runId);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(new RegExp(`^could not start /bin/sh: cannot reach the command runner at ${missing}: connect ENOENT`));
  });
});

// The host's runner unit has PrivateTmp=yes: what the receiver made under /tmp is not in the runner's /tmp.
(canMakePrivateTmp ? describe : describe.skip)('a command runner with a /tmp of its own', () => {
  let tmpDir: string;
  let privateRunner: CommandRunnerSocket;
  beforeEach(async () => {
    tmpDir = fs.mkdtempSync('/tmp/triggler-private-tmp-');
    privateRunner = await listenCommandRunner(path.join(dir, 'private-tmp.sock'), { privateTmp: true });
  });
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
    await privateRunner.close();
    removeDir(tmpDir);
  });

  const because = (where: string) =>
    `${where} is under /tmp, which the command runner sees as its own private /tmp (its unit has PrivateTmp=yes), so no command can start there; choose a directory outside /tmp and /var/tmp`;

  it('fails a run whose cwd is under /tmp, naming the field, the path and why, not "spawn ENOENT"', async () => {
    const opened = await openRunner({
      stateDir: path.join(dir, 'state'),
      triggers: [makeTrigger({ command: 'true', cwd: tmpDir })],
      commandRunner: privateRunner.path,
      killGraceSeconds: 1,
    });
    runner = opened.runner;
    const run = await finished((await runner.accept(makeDelivery())).runId);
    const error = `cwd ${tmpDir}: cannot start /bin/sh there: ${because(tmpDir)}`;
    expect(run).toMatchObject({ status: 'failed', error });
    expect(await logText(runner, run)).toContain(`[triggler] ${error}\n`);
  });

  it('fails a deploy whose deploy.path is under /tmp at its first step, naming deploy.path', async () => {
    const deployPath = path.join(tmpDir, 'site');
    const opened = await openRunner({
      stateDir: path.join(dir, 'state'),
      triggers: [makeTrigger({ command: 'true', deploy: { path: deployPath, repositoryUrl: path.join(dir, 'no-repository.git') } })],
      commandRunner: privateRunner.path,
      killGraceSeconds: 1,
    });
    runner = opened.runner;
    const run = await finished((await runner.accept(makeDelivery())).runId);
    const error = `deploy.path ${deployPath}: cannot start git there: ${because(deployPath)}`;
    expect(run).toMatchObject({ status: 'failed', error });
    expect(await logText(runner, run)).toContain(`create mirror: ${error}`);
  });

  it('still runs a command whose cwd is outside /tmp', async () => {
    const opened = await openRunner({
      stateDir: path.join(dir, 'state'),
      triggers: [makeTrigger({ command: 'pwd; ls -A /tmp | wc -l', cwd: '/' })],
      commandRunner: privateRunner.path,
    });
    runner = opened.runner;
    const run = await finished((await runner.accept(makeDelivery())).runId);
    expect(run.status).toBe('succeeded');
    // In /, with a /tmp that holds none of this machine's files (the runner's own tsx cache at most).
    expect(await logText(runner, run)).toMatch(/^\/\n[01]\n$/);
  });
});

describe("the receiver's side of the runner socket", () => {
  it('keeps what arrived in the chunk that said the command started for the listeners that come after', async () => {
    // A runner whose command is over before the receiver has heard that it started: every frame in one write.
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.once('data', () =>
        socket.write(
          Buffer.concat(
            (
              [
                { kind: 'spawned', group: { pgid: 999_999 } },
                { kind: 'output', data: Buffer.from('all at once\n') },
                { kind: 'exit', code: 0, signal: null },
                { kind: 'output-closed' },
              ] as Frame[]
            ).map(encodeFrame),
          ),
        ),
      );
    });
    const socketPath = path.join(dir, 'quick.sock');
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const started = await spawnThroughRunner(socketPath)({
        program: '/bin/true',
        args: [],
        cwd: '/',
        env: {},
        runId: 'quick',
        killGraceMs: 1000,
      });
      if (!('command' in started)) throw started.error;
      const output: string[] = [];
      started.command.onOutput((chunk) => output.push(chunk.toString()));
      const exit = await new Promise((resolve) => started.command.onExit(resolve));
      await new Promise<void>((resolve) => started.command.onOutputClosed(resolve));
      expect(output).toEqual(['all at once\n']);
      expect(exit).toEqual({ code: 0, signal: null });
      started.command.release();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('a receiver that dies while its command runs through the runner', () => {
  it('takes the command with it: the runner stops the whole process group once the connection is gone', async () => {
    const fixture = path.join(__dirname, '..', '..', 'support', 'children', 'runner-client-crash.ts');
    const receiver = spawn(process.execPath, ['--require', 'tsx/cjs', fixture, runnerSocket.path, workDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    receiver.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    receiver.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    const pgid = await waitFor('the command to start', () => Number(/^(\d+)\n/.exec(output.join(''))?.[1]) || undefined, LONG_WAIT_MS);
    expect(await pidIn(path.join(workDir, 'command.pid'))).toBe(pgid);
    expect(groupHasLiveMember(pgid)).toBe(true);

    const exited = new Promise((resolve) => receiver.once('exit', resolve));
    receiver.kill('SIGKILL');
    await exited;
    await waitFor('the command group to be gone', () => !groupHasLiveMember(pgid), LONG_WAIT_MS);
    const [runnerProcess] = runnerSocket.runners;
    await waitFor('the runner to exit', () => runnerProcess!.exitCode !== null, LONG_WAIT_MS);
    expect(runnerProcess!.exitCode).toBe(0);
  });
});
