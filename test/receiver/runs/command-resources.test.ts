/**
 * A command that cannot start because the host is short of file descriptors is not the command's
 * failure: its start is tried again until it starts (or the receiver stops). Real descriptors run
 * out in this process, and a real command then runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCommand } from '../../../receiver/runs/command';
import { BoundedRunLog } from '../../../receiver/runs/run-log';
import type { StoredRun } from '../../../receiver/runs/run-record';
import { makeStateDir, makeTrigger, newRunId, recordingLogger, removeDir, waitFor } from '../../support/runner-harness';

/** Opens /dev/null until the process has no descriptor left; the result gives them all back. */
function useUpDescriptors(): () => void {
  const held: number[] = [];
  try {
    for (;;) held.push(fs.openSync('/dev/null', 'r'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EMFILE') {
      for (const fd of held) fs.closeSync(fd);
      throw error;
    }
  }
  return () => {
    for (const fd of held.splice(0)) fs.closeSync(fd);
  };
}

let dir: string;
let giveBack: (() => void) | undefined;
beforeEach(() => {
  dir = makeStateDir();
});
afterEach(() => {
  giveBack?.();
  giveBack = undefined;
  removeDir(dir);
});

async function openLog(logger: ReturnType<typeof recordingLogger>['logger']): Promise<BoundedRunLog> {
  const log = new BoundedRunLog(path.join(dir, 'run.log'), 64 * 1024, logger);
  // Its file is open before the descriptors run out.
  log.write(Buffer.alloc(0));
  await waitFor('the log file open', () => fs.existsSync(path.join(dir, 'run.log')));
  return log;
}

function startCommand(log: BoundedRunLog, logger: ReturnType<typeof recordingLogger>['logger']): ReturnType<typeof runCommand> {
  const run = {
    id: newRunId(),
    repository: 'app',
    branch: 'main',
    commit: 'c'.repeat(40),
    deliveryIds: ['d1'],
    scheme: 'standard',
  } as StoredRun;
  return runCommand({ config: makeTrigger({ command: 'echo started' }), run, log, logger, killGraceMs: 1000, withheldEnv: new Set() });
}

const RETRYING = 'cannot start the command for lack of a resource; trying again';

/** A command started once every descriptor is in use, once it has been told to wait and try again. */
async function commandWaitingToStart(): Promise<{
  log: BoundedRunLog;
  lines: ReturnType<typeof recordingLogger>['lines'];
  command: ReturnType<typeof runCommand>;
}> {
  const { logger, lines } = recordingLogger();
  const log = await openLog(logger);
  giveBack = useUpDescriptors();
  const command = startCommand(log, logger);
  await waitFor('a retry', () => lines.find((line) => line.msg === RETRYING));
  return { log, lines, command };
}

describe('a command started while the host is short of file descriptors', () => {
  it('is tried again until it starts, and ends as the command ends', async () => {
    const { log, lines, command } = await commandWaitingToStart();
    giveBack!();
    const outcome = await command.outcome;
    expect(outcome).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(lines.find((line) => line.msg === RETRYING)).toMatchObject({ err: expect.stringContaining('EMFILE') });
    await log.finish();
    expect(fs.readFileSync(path.join(dir, 'run.log'), 'utf8')).toBe('started\n');
  });

  it('ends interrupted, not failed, when the receiver stops while it waits to start', async () => {
    const { log, command } = await commandWaitingToStart();
    command.stop();
    const outcome = await command.outcome;
    giveBack!();
    expect(outcome).toMatchObject({ status: 'interrupted', error: expect.stringContaining('EMFILE') });
    await log.finish();
  });
});
