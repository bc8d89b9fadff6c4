/**
 * After a crash: the command the dead receiver left running (its own process group) is stopped
 * before anything new runs, and its run is run again once.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeProcessGroup } from '../../../receiver/runs/process-group';
import { acceptRecord } from '../../support/journal-records';
import { logText, makeDelivery, makeTrigger, newRunId, processAlive, stateFolderEach, waitFor } from '../../support/runner-harness';

const folder = stateFolderEach();
/** Process groups a test started outside any runner: killed after it. */
const strays: number[] = [];

afterEach(() => {
  for (const pgid of strays.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
});

/** A receiver that accepts one delivery, starts its command and is killed with SIGKILL while it runs. */
async function crashWhileRunning(command: string): Promise<{ runId: string; pids: number[] }> {
  const delivery = makeDelivery();
  const plan = JSON.stringify({ stateDir: folder.stateDir, workDir: folder.workDir, deliveries: [delivery], command });
  const fixture = path.join(__dirname, '..', '..', 'support', 'children', 'runner-crash.ts');
  const receiver = spawn(process.execPath, ['--require', 'tsx/cjs', fixture, plan], {
    cwd: path.join(__dirname, '..', '..', '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  receiver.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise((resolve) => receiver.once('exit', resolve));
  try {
    await waitFor('the crashing receiver to start its command', () => stdout.includes('\n') || receiver.exitCode !== null, 20_000);
    // The 'spawned' record is written just after the spawn; give it its synced write.
    await waitFor('the process group in the journal', () =>
      fs.readFileSync(path.join(folder.stateDir, 'journal.jsonl'), 'utf8').includes('"spawned"'),
    );
  } finally {
    receiver.kill('SIGKILL');
    await exited;
  }
  const pids = fs.readFileSync(path.join(folder.workDir, 'command.pid'), 'utf8').trim().split(/\s+/).map(Number);
  strays.push(pids[0]!);
  return { runId: (JSON.parse(stdout) as { running: string }).running, pids };
}

/** The leader and a background child, both in the command's group, and a log of every start. */
const LONG_COMMAND = 'echo start >> starts.txt; sleep 60 & echo $$ $! > command.pid.tmp && mv command.pid.tmp command.pid; wait';

describe('restart after a crash while a command ran', () => {
  it('stops the process group left running before anything new runs, records it, and runs the run again once', async () => {
    const { runId, pids } = await crashWhileRunning(LONG_COMMAND);
    expect(pids.every(processAlive)).toBe(true);

    // The rerun records whether anything of the old command was alive when it started.
    const check = `alive=0; for p in ${pids.join(' ')}; do if [ -d /proc/$p ] && ! grep -q '^[0-9]* ([^)]*) Z' /proc/$p/stat; then alive=1; fi; done; echo "alive=$alive commit=$TRIGGLER_COMMIT"`;
    const { runner, lines } = await folder.openRunner({
      triggers: [makeTrigger({ command: check, cwd: folder.workDir })],
      killGraceSeconds: 2,
    });
    expect(pids.some(processAlive)).toBe(false);
    const interrupted = runner.history.run(runId);
    expect(interrupted).toMatchObject({ status: 'interrupted', processGroup: { pgid: pids[0] } });
    expect(interrupted?.error).toBe(
      `receiver stopped while it ran; at the next start its process group ${pids[0]} (2 processes) was still running and was stopped with SIGTERM`,
    );
    expect(lines.some((line) => line.msg.includes('stopped the command of an interrupted run') && line.pgid === pids[0])).toBe(true);

    await runner.idle();
    const rerun = runner.history.runs().find((run) => run.rerunOf === runId);
    expect(rerun).toMatchObject({ status: 'succeeded', commit: interrupted?.commit, deliveryIds: interrupted?.deliveryIds });
    expect(await logText(runner, rerun!.id)).toBe(`alive=0 commit=${interrupted?.commit}\n`);
    expect(fs.readFileSync(path.join(folder.workDir, 'starts.txt'), 'utf8')).toBe('start\n');
  });

  it('does not run it again when the trigger sets rerunInterrupted: false', async () => {
    const { runId } = await crashWhileRunning(LONG_COMMAND);
    const { runner } = await folder.openRunner({
      triggers: [makeTrigger({ command: 'true', cwd: folder.workDir, rerunInterrupted: false })],
      killGraceSeconds: 2,
    });
    await runner.idle();
    expect(runner.history.runs().map((run) => [run.id, run.status])).toEqual([[runId, 'interrupted']]);
  });

  it('runs a rerun interrupted by a second crash no third time', async () => {
    const { store } = await folder.openStore({ keepRuns: 10 });
    const [first, rerun] = [newRunId(), newRunId()];
    const at = new Date().toISOString();
    await store.record(acceptRecord(first, makeDelivery()));
    await store.record({ type: 'start', at, runId: first });
    await store.record({ type: 'finish', at, runId: first, status: 'interrupted', error: 'receiver stopped while it ran' });
    await store.record({ type: 'rerun', at, runId: rerun, of: first });
    await store.record({ type: 'start', at, runId: rerun });
    await store.close();

    const { runner } = await folder.openRunner({ triggers: [makeTrigger({ command: 'true', cwd: folder.workDir })] });
    await runner.idle();
    expect(runner.history.runs().map((run) => [run.id, run.status, run.rerunOf])).toEqual([
      [rerun, 'interrupted', first],
      [first, 'interrupted', undefined],
    ]);
  });
});

describe('a process group id the journal names', () => {
  it('is not signalled once it belongs to another process (its id was reused)', async () => {
    // A live process group that is not the run's: its leader started at another time than the journal says.
    const other = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    strays.push(other.pid!);
    const group = describeProcessGroup(other.pid!);
    const { store } = await folder.openStore({ keepRuns: 10 });
    const runId = newRunId();
    await store.record(acceptRecord(runId, makeDelivery()));
    await store.record({ type: 'start', at: new Date().toISOString(), runId });
    await store.record({
      type: 'spawned',
      at: new Date().toISOString(),
      runId,
      processGroup: { ...group, startTime: String(BigInt(group.startTime ?? '0') - 1n) },
    });
    await store.close();

    const { runner, lines } = await folder.openRunner({
      triggers: [makeTrigger({ command: 'true', cwd: folder.workDir })],
      killGraceSeconds: 1,
    });
    expect(processAlive(other.pid!)).toBe(true);
    expect(runner.history.run(runId)).toMatchObject({ status: 'interrupted', error: 'receiver stopped while it ran' });
    expect(lines.find((line) => line.msg.includes('nothing of its command to stop'))?.why).toBe(
      `process group ${other.pid} now belongs to other processes (its id was reused)`,
    );
    other.kill('SIGKILL');
  });
});
