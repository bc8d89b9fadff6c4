/** One receiver per state directory: run stores in real child processes on one directory. */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDelivery, makeStateDir, newRunId, processAlive, recordingLogger, removeDir, waitFor } from '../../support/runner-harness';
import { RunStore } from '../../../receiver/runs/run-store';
import { acceptRecord } from '../../support/journal-records';

let dir: string;
let stateDir: string;
const children: ChildProcessWithoutNullStreams[] = [];

beforeEach(() => {
  dir = makeStateDir();
  stateDir = path.join(dir, 'state');
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }
  removeDir(dir);
});

interface HolderAnswer {
  opened?: number;
  error?: string;
}

/** Starts a store in a child process and waits for its first line. */
async function startHolder(): Promise<{ child: ChildProcessWithoutNullStreams; answer: HolderAnswer }> {
  const fixture = path.join(__dirname, '..', '..', 'support', 'children', 'store-holder.ts');
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', fixture, stateDir], { cwd: path.join(__dirname, '..', '..', '..') });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(`the store holder to answer (stderr: ${stderr})`, () => stdout.includes('\n') || child.exitCode !== null, 20_000);
  return { child, answer: JSON.parse(stdout.split('\n')[0] || '{}') as HolderAnswer };
}

describe('the state directory lock', () => {
  it("refuses a second store naming the first one's pid, and is taken over once the first is killed", async () => {
    const first = await startHolder();
    expect(first.answer).toEqual({ opened: first.child.pid });

    const second = await startHolder();
    expect(second.answer.error).toContain(`in use by another receiver (pid ${first.child.pid},`);
    await waitFor('the second holder to exit', () => second.child.exitCode !== null);
    expect(second.child.exitCode).toBe(1);

    const killed = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGKILL');
    await killed;
    expect(processAlive(first.child.pid ?? 0)).toBe(false);
    const third = await startHolder();
    expect(third.answer).toEqual({ opened: third.child.pid });
  });

  it('leaves the journal alone when it refuses', async () => {
    const first = await startHolder();
    expect(first.answer.opened).toBe(first.child.pid);
    const journal = path.join(stateDir, 'journal.jsonl');
    const before = fs.statSync(journal);
    const { logger } = recordingLogger();
    await expect(RunStore.open({ stateDir, keepRuns: 10, logger })).rejects.toThrow(`pid ${first.child.pid}`);
    const after = fs.statSync(journal);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('is released by close(): the next store in the same process opens', async () => {
    const { logger } = recordingLogger();
    const { store } = await RunStore.open({ stateDir, keepRuns: 10, logger });
    await expect(RunStore.open({ stateDir, keepRuns: 10, logger })).rejects.toThrow(`pid ${process.pid}`);
    const runId = newRunId();
    await store.record(acceptRecord(runId, makeDelivery()));
    await store.close();
    expect(fs.existsSync(path.join(stateDir, 'receiver.lock'))).toBe(false);
    const reopened = await RunStore.open({ stateDir, keepRuns: 10, logger });
    expect(reopened.store.run(runId)?.status).toBe('pending');
    await reopened.store.close();
  });
});
