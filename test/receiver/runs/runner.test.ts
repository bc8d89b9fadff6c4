/** The runner with real child processes and real files: how commands run, what they see, how they end. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Runner } from '../../../receiver/runs/runner';
import { RunnerClosedError } from '../../../receiver/runs/runner';
import {
  logText,
  makeDelivery,
  makeStateDir,
  makeTrigger,
  openRunner,
  processAlive,
  removeDir,
  waitFor,
} from '../../support/runner-harness';

let stateDir: string;
let workDir: string;
const openRunners: Runner[] = [];

beforeEach(() => {
  stateDir = makeStateDir();
  workDir = fs.mkdtempSync(path.join(stateDir, 'work-'));
});

afterEach(async () => {
  for (const runner of openRunners.splice(0)) await runner.close();
  removeDir(stateDir);
});

async function runnerFor(options: Omit<Parameters<typeof openRunner>[0], 'stateDir'>) {
  const opened = await openRunner({ stateDir: path.join(stateDir, 'state'), ...options });
  openRunners.push(opened.runner);
  return opened;
}

describe('spawning', () => {
  it('runs a command string through /bin/sh and records a succeeded run with its output', async () => {
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: 'echo "shell says $((6 * 7))"; echo to-stderr >&2', cwd: workDir })],
    });
    const delivery = makeDelivery();
    const result = await runner.accept(delivery);
    expect(result).toEqual({ status: 'accepted', runId: expect.stringMatching(/^r_[a-z0-9]+$/), coalesced: false });
    await runner.idle();
    const run = runner.history.run(result.runId);
    expect(run).toMatchObject({
      id: result.runId,
      repository: 'app',
      branch: 'main',
      status: 'succeeded',
      exitCode: 0,
      commit: delivery.commit,
      deliveryIds: [delivery.deliveryId],
      commits: [delivery.commit],
      logTruncated: false,
    });
    expect(Date.parse(run?.finishedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(run?.startedAt ?? ''));
    const log = await logText(runner, result.runId);
    expect(log).toContain('shell says 42');
    expect(log).toContain('to-stderr');
    expect(run?.logBytes).toBe(Buffer.byteLength(log));
    expect(fs.readFileSync(path.join(stateDir, 'state', 'runs', `${result.runId}.log`), 'utf8')).toBe(log);
  });

  it('runs an argv command without a shell: shell syntax reaches the program as text', async () => {
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: ['/bin/echo', '$HOME; echo injected', '$(id)'], cwd: workDir })],
    });
    const { runId } = await runner.accept(makeDelivery());
    await runner.idle();
    expect(runner.history.run(runId)?.status).toBe('succeeded');
    expect(await logText(runner, runId)).toBe('$HOME; echo injected $(id)\n');
  });

  it('runs in the trigger cwd with stdin from /dev/null, as the leader of its own process group', async () => {
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: 'pwd; cat; echo "stdin done"; ps -o pid=,pgid= -p $$', cwd: workDir })],
    });
    const { runId } = await runner.accept(makeDelivery());
    await runner.idle();
    const [cwd, stdinDone, ids] = (await logText(runner, runId)).trim().split('\n');
    expect(fs.realpathSync(cwd ?? '')).toBe(fs.realpathSync(workDir));
    expect(stdinDone).toBe('stdin done');
    const [pid, pgid] = (ids ?? '').trim().split(/\s+/);
    expect(pgid).toBe(pid);
  });

  it('records a missing cwd as a failed run with a clear error, and keeps running other runs', async () => {
    const missing = path.join(workDir, 'no-such-dir');
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: 'true', cwd: missing }), makeTrigger({ branch: 'other', command: 'echo fine', cwd: workDir })],
    });
    const broken = await runner.accept(makeDelivery());
    await runner.idle();
    expect(runner.history.run(broken.runId)).toMatchObject({ status: 'failed', error: `cwd ${missing} does not exist` });
    expect(await logText(runner, broken.runId)).toContain(`cwd ${missing} does not exist`);
    const fine = await runner.accept(makeDelivery({ branch: 'other' }));
    await runner.idle();
    expect(runner.history.run(fine.runId)?.status).toBe('succeeded');
  });

  it('records a program that cannot be started as failed, saying so', async () => {
    const { runner } = await runnerFor({ triggers: [makeTrigger({ command: [path.join(workDir, 'no-such-program')], cwd: workDir })] });
    const { runId } = await runner.accept(makeDelivery());
    await runner.idle();
    const run = runner.history.run(runId);
    expect(run?.status).toBe('failed');
    expect(run?.error).toMatch(/^could not start .*no-such-program: .*ENOENT/);
  });

  it('records a non-zero exit and a death by signal as failed, naming which', async () => {
    const { runner } = await runnerFor({
      triggers: [
        makeTrigger({ command: 'exit 3', cwd: workDir }),
        makeTrigger({ branch: 'killed', command: 'kill -KILL $$', cwd: workDir }),
      ],
    });
    const exited = await runner.accept(makeDelivery());
    const killed = await runner.accept(makeDelivery({ branch: 'killed' }));
    await runner.idle();
    expect(runner.history.run(exited.runId)).toMatchObject({ status: 'failed', exitCode: 3, error: 'exited with code 3' });
    expect(runner.history.run(killed.runId)).toMatchObject({
      status: 'failed',
      exitCode: null,
      signal: 'SIGKILL',
      error: 'killed by signal SIGKILL',
    });
  });

  it('logs run started and run finished as structured lines', async () => {
    const { runner, lines } = await runnerFor({ triggers: [makeTrigger({ command: 'exit 0', cwd: workDir })] });
    const delivery = makeDelivery();
    const { runId } = await runner.accept(delivery);
    await runner.idle();
    expect(lines.find((line) => line.msg === 'run started')).toMatchObject({
      run: runId,
      trigger: 'app@main',
      commit: delivery.commit,
      deliveries: 1,
    });
    const finished = lines.find((line) => line.msg === 'run finished');
    expect(finished).toMatchObject({ run: runId, status: 'succeeded', exitCode: 0 });
    expect(typeof finished?.ms).toBe('number');
  });
});

describe('environment', () => {
  const withheld = 'TRIGGLER_TEST_TOKEN_VARIABLE';
  const inherited = 'TRIGGLER_TEST_INHERITED';

  beforeEach(() => {
    process.env[withheld] = 'must-not-reach-the-command';
    process.env[inherited] = 'reaches-the-command';
    process.env.TRIGGLER_PUSHER = 'stale value from the receiver environment';
  });
  afterEach(() => {
    delete process.env[withheld];
    delete process.env[inherited];
    delete process.env.TRIGGLER_PUSHER;
  });

  function parseEnv(text: string): Map<string, string> {
    return new Map(
      text
        .split('\0')
        .filter(Boolean)
        .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    );
  }

  it('gives the command the receiver env minus withheld names, the trigger env and the run variables', async () => {
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: ['/usr/bin/env', '-0'], cwd: workDir, env: { DEPLOY_TARGET: 'staging' } })],
      withheldEnv: [withheld],
    });
    const delivery = makeDelivery({ scheme: 'github', pusher: 'octocat', event: 'push', previousCommit: 'p'.repeat(40) });
    const { runId } = await runner.accept(delivery);
    await runner.idle();
    const env = parseEnv(await logText(runner, runId));
    expect(env.has(withheld)).toBe(false);
    expect(env.get(inherited)).toBe('reaches-the-command');
    expect(env.get('DEPLOY_TARGET')).toBe('staging');
    expect(Object.fromEntries([...env].filter(([name]) => name.startsWith('TRIGGLER_') && !name.startsWith('TRIGGLER_TEST_')))).toEqual({
      TRIGGLER_REPOSITORY: 'app',
      TRIGGLER_BRANCH: 'main',
      TRIGGLER_COMMIT: delivery.commit,
      TRIGGLER_PREVIOUS_COMMIT: 'p'.repeat(40),
      TRIGGLER_RUN_ID: runId,
      TRIGGLER_DELIVERY_ID: delivery.deliveryId,
      TRIGGLER_SCHEME: 'github',
      TRIGGLER_PUSHER: 'octocat',
      TRIGGLER_EVENT: 'push',
      TRIGGLER_PROVIDER: 'github',
    });
  });

  it('sets unknown commits to empty and leaves out pusher, event and provider when not known', async () => {
    const { runner } = await runnerFor({ triggers: [makeTrigger({ command: ['/usr/bin/env', '-0'], cwd: workDir })] });
    const { runId } = await runner.accept(makeDelivery({ scheme: 'seed', commit: '' }));
    await runner.idle();
    const env = parseEnv(await logText(runner, runId));
    expect(env.get('TRIGGLER_COMMIT')).toBe('');
    expect(env.get('TRIGGLER_PREVIOUS_COMMIT')).toBe('');
    expect(env.get('TRIGGLER_SCHEME')).toBe('seed');
    // Not even the receiver's own stale TRIGGLER_PUSHER.
    expect(env.has('TRIGGLER_PUSHER')).toBe(false);
    expect(env.has('TRIGGLER_EVENT')).toBe(false);
    expect(env.has('TRIGGLER_PROVIDER')).toBe(false);
  });

  it('passes delivery values only as environment: shell syntax in a commit or branch runs nothing', async () => {
    const branch = 'main;touch branch-injected';
    const commit = '$(touch commit-injected)`touch backtick-injected`';
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ branch, command: 'printf "%s|%s\\n" "$TRIGGLER_COMMIT" "$TRIGGLER_BRANCH"; ls', cwd: workDir })],
    });
    const { runId } = await runner.accept(makeDelivery({ branch, commit }));
    await runner.idle();
    expect(runner.history.run(runId)?.status).toBe('succeeded');
    expect(await logText(runner, runId)).toBe(`${commit}|${branch}\n`);
    expect(fs.readdirSync(workDir)).toEqual([]);
  });
});

describe('scheduling', () => {
  it('coalesces a burst of 30 deliveries during a running command into one more run carrying the newest push', async () => {
    // The first run lasts until the burst is in (the test writes `release`): the test does not race the clock.
    const { runner } = await runnerFor({
      triggers: [
        makeTrigger({
          command: 'echo "commit=$TRIGGLER_COMMIT delivery=$TRIGGLER_DELIVERY_ID"; while [ ! -e release ]; do sleep 0.05; done',
          cwd: workDir,
        }),
      ],
    });
    const first = await runner.accept(makeDelivery());
    await waitFor('the first run to start', () => runner.history.run(first.runId)?.status === 'running');
    const burst = Array.from({ length: 30 }, (_, i) => makeDelivery({ pusher: `pusher-${i}` }));
    const results = [];
    for (const delivery of burst) {
      results.push(await runner.accept(delivery));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(runner.history.run(first.runId)?.status).toBe('running');
    fs.writeFileSync(path.join(workDir, 'release'), '');
    await runner.idle();
    const runs = runner.history.runs();
    expect(runs).toHaveLength(2);
    const [second, firstRun] = runs;
    expect(firstRun?.id).toBe(first.runId);
    expect(second?.deliveryIds).toEqual(burst.map((delivery) => delivery.deliveryId));
    expect(second?.commits).toEqual(burst.map((delivery) => delivery.commit));
    const newest = burst[29];
    expect(second?.commit).toBe(newest?.commit);
    expect(results.map((result) => result.runId)).toEqual(Array(30).fill(second?.id));
    expect(results.map((result) => result.coalesced)).toEqual([false, ...Array(29).fill(true)]);
    expect(await logText(runner, second?.id ?? '')).toBe(`commit=${newest?.commit} delivery=${newest?.deliveryId}\n`);
    // One at a time per trigger.
    expect(Date.parse(second?.startedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(firstRun?.finishedAt ?? ''));
  });

  it('runs deliveries accepted together (before the run starts) as one run', async () => {
    const { runner } = await runnerFor({ triggers: [makeTrigger({ command: 'echo "$TRIGGLER_COMMIT"', cwd: workDir })] });
    const deliveries = Array.from({ length: 5 }, () => makeDelivery());
    const results = await Promise.all(deliveries.map((delivery) => runner.accept(delivery)));
    await runner.idle();
    expect(new Set(results.map((result) => result.runId)).size).toBe(1);
    expect(runner.history.runs()).toHaveLength(1);
    expect(await logText(runner, results[0]?.runId ?? '')).toBe(`${deliveries[4]?.commit}\n`);
  });

  it('keeps to the global limit and starts waiting triggers first come, first served', async () => {
    // Every run lasts until the test writes `release`: a1 is still running when the others arrive.
    const triggers = ['a', 'b', 'c'].map((branch) =>
      makeTrigger({ branch, command: 'while [ ! -e release ]; do sleep 0.05; done', cwd: workDir }),
    );
    const { runner } = await runnerFor({ triggers, maxConcurrentRuns: 1 });
    const a1 = await runner.accept(makeDelivery({ branch: 'a' }));
    await waitFor('a to start', () => runner.history.run(a1.runId)?.status === 'running');
    const b = await runner.accept(makeDelivery({ branch: 'b' }));
    const c = await runner.accept(makeDelivery({ branch: 'c' }));
    const a2 = await runner.accept(makeDelivery({ branch: 'a' }));
    fs.writeFileSync(path.join(workDir, 'release'), '');
    await runner.idle();
    const started = [a1, b, c, a2].map((result) => ({ id: result.runId, run: runner.history.run(result.runId) }));
    const order = [...started]
      .sort((x, y) => Date.parse(x.run?.startedAt ?? '') - Date.parse(y.run?.startedAt ?? ''))
      .map((entry) => entry.id);
    expect(order).toEqual([a1.runId, b.runId, c.runId, a2.runId]);
    const intervals = started
      .map(({ run }) => [Date.parse(run?.startedAt ?? ''), Date.parse(run?.finishedAt ?? '')] as const)
      .sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < intervals.length; i++) expect(intervals[i]?.[0]).toBeGreaterThanOrEqual(intervals[i - 1]?.[1] ?? Infinity);
  });

  it('runs different triggers at the same time up to the limit', async () => {
    const triggers = ['a', 'b', 'c'].map((branch) =>
      makeTrigger({ branch, command: `touch started-${branch}; while [ ! -e release ]; do sleep 0.05; done`, cwd: workDir }),
    );
    const { runner } = await runnerFor({ triggers, maxConcurrentRuns: 2 });
    const results = await Promise.all(['a', 'b', 'c'].map((branch) => runner.accept(makeDelivery({ branch }))));
    await waitFor(
      'two runs to start',
      () => fs.existsSync(path.join(workDir, 'started-a')) && fs.existsSync(path.join(workDir, 'started-b')),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fs.existsSync(path.join(workDir, 'started-c'))).toBe(false);
    expect(results.map((result) => runner.history.run(result.runId)?.status)).toEqual(['running', 'running', 'pending']);
    fs.writeFileSync(path.join(workDir, 'release'), '');
    await runner.idle();
    expect(results.map((result) => runner.history.run(result.runId)?.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });
});

describe('dedupe', () => {
  it('answers a repeated key as a duplicate of the run that carried it and records nothing', async () => {
    const { runner } = await runnerFor({ triggers: [makeTrigger({ command: 'true', cwd: workDir })] });
    const delivery = makeDelivery();
    const first = await runner.accept(delivery);
    await runner.idle();
    expect(runner.seen(delivery.dedupeKey)).toEqual({ status: 'duplicate', runId: first.runId, coalesced: false });
    const again = await runner.accept({ ...delivery, deliveryId: 'retry' });
    expect(again).toEqual({ status: 'duplicate', runId: first.runId, coalesced: false });
    await runner.idle();
    expect(runner.history.runs()).toHaveLength(1);
    expect(runner.history.run(first.runId)?.deliveryIds).toEqual([delivery.deliveryId]);
    expect(runner.seen('standard:never-sent')).toBeUndefined();
  });

  it('accepts exactly one of two concurrent accepts with the same key', async () => {
    const { runner } = await runnerFor({ triggers: [makeTrigger({ command: 'true', cwd: workDir })] });
    const delivery = makeDelivery();
    const results = await Promise.all([runner.accept(delivery), runner.accept(delivery), runner.accept(delivery)]);
    expect(results.map((result) => result.status).sort()).toEqual(['accepted', 'duplicate', 'duplicate']);
    expect(new Set(results.map((result) => result.runId)).size).toBe(1);
    await runner.idle();
    expect(runner.history.run(results[0]?.runId ?? '')?.deliveryIds).toEqual([delivery.deliveryId]);
  });

  it('forgets a key once its dedupeUntil has passed', async () => {
    const { runner } = await runnerFor({ triggers: [makeTrigger({ command: 'true', cwd: workDir })] });
    const delivery = makeDelivery({ dedupeUntil: Date.now() + 1000 });
    const first = await runner.accept(delivery);
    expect(runner.seen(delivery.dedupeKey)?.runId).toBe(first.runId);
    await runner.idle();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, delivery.dedupeUntil - Date.now() + 20)));
    expect(runner.seen(delivery.dedupeKey)).toBeUndefined();
    const again = await runner.accept(delivery);
    expect(again.status).toBe('accepted');
    expect(again.runId).not.toBe(first.runId);
  });

  it('refuses a delivery for a trigger it does not know, naming it', async () => {
    const { runner } = await runnerFor({ triggers: [makeTrigger({ command: 'true', cwd: workDir })] });
    await expect(runner.accept(makeDelivery({ repository: 'other' }))).rejects.toThrow(
      'no trigger is configured for repository "other" branch "main"',
    );
  });
});

describe('timeouts', () => {
  it('sends SIGTERM to the whole process group on timeout: the shell and its sleep child are gone', async () => {
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: 'echo $$ > shell.pid; sleep 30 & echo $! > sleep.pid; wait', cwd: workDir, timeoutSeconds: 1 })],
    });
    const { runId } = await runner.accept(makeDelivery());
    await runner.idle();
    const run = runner.history.run(runId);
    expect(run).toMatchObject({ status: 'timed-out', signal: 'SIGTERM', error: 'timed out after 1s (SIGTERM to the process group)' });
    for (const file of ['shell.pid', 'sleep.pid']) {
      const pid = Number(fs.readFileSync(path.join(workDir, file), 'utf8'));
      expect(pid).toBeGreaterThan(0);
      expect(processAlive(pid)).toBe(false);
    }
    expect(await logText(runner, runId)).toContain('[triggler] timed out after 1s');
  });

  it('sends SIGKILL after the grace when the group ignores SIGTERM', async () => {
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: "trap '' TERM; sleep 30 & echo $! > sleep.pid; wait", cwd: workDir, timeoutSeconds: 1 })],
      killGraceSeconds: 1,
    });
    const { runId } = await runner.accept(makeDelivery());
    await runner.idle();
    expect(runner.history.run(runId)).toMatchObject({
      status: 'timed-out',
      error: 'timed out after 1s (SIGTERM, then SIGKILL to the process group)',
    });
    const sleepPid = Number(fs.readFileSync(path.join(workDir, 'sleep.pid'), 'utf8'));
    await waitFor('the sleep child to be reaped', () => !processAlive(sleepPid));
  });
});

describe('output', () => {
  it('bounds the log: keeps the first and last halves with a marker saying how much was left out', async () => {
    const { runner } = await runnerFor({
      // 20 lines of 102 bytes: 2040 bytes against a 600-byte bound.
      triggers: [makeTrigger({ command: 'for i in $(seq -w 1 20); do printf "line-%s-%093d\\n" "$i" 0; done', cwd: workDir })],
      runLogBytes: 600,
    });
    const { runId } = await runner.accept(makeDelivery());
    await runner.idle();
    const log = await logText(runner, runId);
    const run = runner.history.run(runId);
    expect(run?.logTruncated).toBe(true);
    expect(run?.logBytes).toBe(Buffer.byteLength(log));
    expect(Buffer.byteLength(log)).toBeLessThanOrEqual(600);
    expect(log.startsWith('line-01-')).toBe(true);
    expect(log.endsWith(`line-20-${'0'.repeat(93)}\n`)).toBe(true);
    const marker = /\n\[triggler: (\d+) bytes of output left out here\]\n/.exec(log);
    expect(marker).not.toBeNull();
    expect(Number(marker?.[1]) + Buffer.byteLength(log) - Buffer.byteLength(marker?.[0] ?? '')).toBe(2040);
  });

  it('serves the output of a running command', async () => {
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: 'echo early; while [ ! -e release ]; do sleep 0.05; done; echo late', cwd: workDir })],
    });
    const { runId } = await runner.accept(makeDelivery());
    await waitFor('early output', async () => (await runner.history.runLog(runId))?.toString().includes('early'));
    expect((await runner.history.runLog(runId))?.toString()).not.toContain('late');
    fs.writeFileSync(path.join(workDir, 'release'), '');
    await runner.idle();
    expect(await logText(runner, runId)).toBe('early\nlate\n');
  });
});

describe('close', () => {
  it('waits for running commands within the shutdown grace', async () => {
    // The command ends once the test writes `release`, after close() began: close() must wait for it.
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: 'while [ ! -e release ]; do sleep 0.05; done; echo finished', cwd: workDir })],
      shutdownGraceSeconds: 10,
    });
    const { runId } = await runner.accept(makeDelivery());
    await waitFor('the run to start', () => runner.history.run(runId)?.status === 'running');
    const closed = runner.close();
    fs.writeFileSync(path.join(workDir, 'release'), '');
    await closed;
    expect(runner.history.run(runId)?.status).toBe('succeeded');
  });

  it('kills what is still running after the grace, records it as interrupted, and keeps waiting runs for the next open', async () => {
    const { runner } = await runnerFor({
      triggers: [makeTrigger({ command: 'sleep 30 & echo $! > sleep.pid; wait', cwd: workDir })],
      shutdownGraceSeconds: 0,
    });
    const running = await runner.accept(makeDelivery());
    await waitFor(
      'the sleep child',
      () =>
        runner.history.run(running.runId)?.status === 'running' &&
        fs.existsSync(path.join(workDir, 'sleep.pid')) &&
        fs.readFileSync(path.join(workDir, 'sleep.pid'), 'utf8').trim() !== '',
    );
    const waiting = await runner.accept(makeDelivery());
    await runner.close();
    expect(runner.history.run(running.runId)).toMatchObject({
      status: 'interrupted',
      error: 'receiver stopped while it ran (SIGTERM to the process group)',
    });
    expect(runner.history.run(waiting.runId)?.status).toBe('pending');
    expect(processAlive(Number(fs.readFileSync(path.join(workDir, 'sleep.pid'), 'utf8')))).toBe(false);
    await expect(runner.accept(makeDelivery())).rejects.toBeInstanceOf(RunnerClosedError);

    const { runner: reopened } = await runnerFor({ triggers: [makeTrigger({ command: 'echo "$TRIGGLER_RUN_ID"', cwd: workDir })] });
    await reopened.idle();
    expect(reopened.history.run(waiting.runId)?.status).toBe('succeeded');
    expect(await logText(reopened, waiting.runId)).toBe(`${waiting.runId}\n`);
    expect(reopened.history.run(running.runId)?.status).toBe('interrupted');
  });
});
